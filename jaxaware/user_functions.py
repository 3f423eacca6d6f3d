"""Functions a user hands to a command as ``FILE.py:NAME``.

``jaxaware evaluate --features FILE.py:NAME`` (a feature extractor) and similar options
name a function in a Python file instead of a module on the import path, so a user can
bring a VGG-16 or Inception-v3 port, a torch model behind a numpy wrapper, or a two-line
lambda without packaging anything. :func:`load_function` imports the file and returns the
function; every way that can fail is one :class:`~jaxaware.errors.JaxawareError` line that
says what was wrong and what is accepted.

The file is imported as a fresh module (its top level runs once per call: that is where a
port loads its weights), under a private name derived from its absolute path, so two files
called ``features.py`` in different folders do not collide. While it is imported, its own
folder is first on ``sys.path``, so it may import helper modules lying beside it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys

from jaxaware.atomic import Terminated
from jaxaware.errors import JaxawareError

__all__ = ["load_function", "parse_spec"]


def _one_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    text = lines[0].strip() if lines else ""
    return text[:200]


def parse_spec(spec, what: str = "function") -> tuple[str, str]:
    """``(path, name)`` from ``"FILE.py:NAME"``; splits at the *last* colon (a Windows drive
    letter stays in the path). ``NAME`` may be dotted (``model.features``: an attribute of
    an object defined in the file)."""
    example = "FILE.py:NAME, e.g. vgg16.py:features"
    if not isinstance(spec, str) or ":" not in spec:
        raise JaxawareError(f"{what} must be {example}; got {spec!r}")
    path, name = spec.rsplit(":", 1)
    if not path or not name:
        raise JaxawareError(f"{what} must be {example}; got {spec!r}")
    if not all(part.isidentifier() for part in name.split(".")):
        raise JaxawareError(f"{what}: {name!r} is not a Python name; give {example} (NAME may "
                            "be dotted, e.g. model.features)")
    return path, name


def load_function(spec, what: str = "function"):
    """The callable ``NAME`` of the Python file ``FILE.py`` given as ``"FILE.py:NAME"``.

    Args:
        spec: ``"path/to/file.py:name"``; ``name`` may be dotted (``extractor.features``).
        what: how messages name the option, e.g. ``"--features"`` or ``"--classifier"``.

    Returns:
        The object, checked to be callable (a function, a bound method, a class instance
        with ``__call__``, a jitted function ...). What it takes and returns is the
        caller's business: check it on a first batch.

    Raises:
        JaxawareError (one line): a spec not of the form ``FILE.py:NAME``; a file that does
        not exist, is a directory or does not end in ``.py``; a file that fails to import
        (the exception's type and first line are named); no such name in the file (the
        public callables it defines are listed); a name that is not callable.
    """
    path, name = parse_spec(spec, what)
    if not os.path.exists(path):
        raise JaxawareError(f"{what}: {path} does not exist; give FILE.py:NAME with an "
                            "existing Python file")
    if os.path.isdir(path):
        raise JaxawareError(f"{what}: {path} is a directory; give FILE.py:NAME with a Python "
                            "file")
    if not path.endswith(".py"):
        raise JaxawareError(f"{what}: {path} is not a .py file; give FILE.py:NAME with a "
                            "Python source file")
    module = _import_file(path, what)
    obj = module
    for i, part in enumerate(name.split(".")):
        if not hasattr(obj, part):
            if i == 0:
                listed = ", ".join(_public_callables(module)) or "no public callables"
                raise JaxawareError(f"{what}: {path} has no {part!r}; it defines: {listed}")
            owner = ".".join(name.split(".")[:i])
            raise JaxawareError(f"{what}: {owner} in {path} has no attribute {part!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        kind = type(obj).__name__
        article = "an" if kind[:1].lower() in "aeiou" else "a"
        raise JaxawareError(f"{what}: {name} in {path} is not callable ({article} {kind}); "
                            "give the name of a function")
    return obj


def _import_file(path: str, what: str):
    absolute = os.path.abspath(path)
    digest = hashlib.sha256(absolute.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    stem = "".join(c if c.isalnum() else "_" for c in os.path.basename(path)[:-3])
    module_name = f"jaxaware_user_{stem}_{digest}"
    folder = os.path.dirname(absolute)
    sys.path.insert(0, folder)
    try:
        spec = importlib.util.spec_from_file_location(module_name, absolute)
        if spec is None or spec.loader is None:  # pragma: no cover - .py is checked above
            raise JaxawareError(f"{what}: cannot import {path}; give a Python source file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # dataclasses and pickling look modules up here
        try:
            spec.loader.exec_module(module)
        except BaseException as e:
            sys.modules.pop(module_name, None)
            # Ctrl-C and SIGTERM (the CLI's Terminated) go on; anything else the file raises
            # at import, sys.exit() included, becomes one line.
            if isinstance(e, (KeyboardInterrupt, Terminated)):
                raise
            detail = f"{type(e).__name__}: {_one_line(e)}" if _one_line(e) else type(e).__name__
            raise JaxawareError(f"{what}: importing {path} failed ({detail})") from None
    finally:
        try:
            sys.path.remove(folder)
        except ValueError:  # the file removed it itself
            pass
    return module


def _public_callables(module) -> list[str]:
    return sorted(k for k, v in vars(module).items()
                  if callable(v) and not k.startswith("_")
                  and getattr(v, "__module__", None) == module.__name__)
