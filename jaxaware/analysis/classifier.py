"""The classifier the analyses ask: any function ``images [B, H, W, 3] in [-1, 1] -> logits
[B, K]``, wrapped once so that it can run inside the generator's ``jit``/``vmap``.

The paper (Sec. 3.1) scores generated images with an ImageNet Inception-v3; on the toy
world the shipped reference classifier plays that part (:func:`world_classifier`). A user
brings their own with :func:`as_classifier` (a Python function) or, on the command line,
``--classifier FILE.py:NAME`` (:func:`load_classifier_spec`).

A function that JAX can trace (``jax.numpy`` inside) is fused with the generator: the
ablation sweep never leaves the device. A function that JAX cannot trace (NumPy, PyTorch)
still works for the exact sweep, called through ``jax.pure_callback`` one batch at a time;
the first-order estimate needs gradients through it and refuses such a function.

The *score* of an image for class ``k`` is the classifier's softmax probability of ``k``
(``score='prob'``, our default: the paper's "classification score") or its raw logit
(``score='logit'``).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import weakref
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxaware.errors import JaxawareError

__all__ = ["Classifier", "as_classifier", "world_classifier", "load_classifier_spec",
           "target_scores", "SCORES"]

#: What a score can be: the target class's softmax probability or its logit.
SCORES = ("prob", "logit")


@dataclasses.dataclass(frozen=True, eq=False)
class Classifier:
    """A classifier the analyses can call: ``fn(images) -> logits`` and what it accepts.

    ``traceable``: JAX can trace ``fn`` (it runs inside jit, vmap and grad); otherwise it
    is called on the host through ``jax.pure_callback``. ``name`` is for messages. Compared
    by identity, so one wrapper compiles once per generator.
    """

    fn: Callable
    name: str
    num_classes: int
    traceable: bool = True

    def logits(self, images):
        """Logits ``[B, K]`` of images ``[B, H, W, 3]``; usable inside ``jit``/``vmap``."""
        if self.traceable:
            return self.fn(images)
        shape = jax.ShapeDtypeStruct((images.shape[0], self.num_classes), jnp.float32)
        host = lambda x: np.asarray(self.fn(np.asarray(x)), np.float32)  # noqa: E731
        return jax.pure_callback(host, shape, images, vmap_method="sequential")


def target_scores(logits, labels, score: str = "prob"):
    """Per image the score of its target class: softmax probability or logit ``[B]``."""
    if score == "prob":
        values = jax.nn.softmax(logits, axis=-1)
    elif score == "logit":
        values = logits
    else:
        raise JaxawareError(f"score must be one of {', '.join(SCORES)}; got {score!r}")
    return jnp.take_along_axis(values, jnp.asarray(labels)[:, None], axis=-1)[:, 0]


def check_score(score: str) -> str:
    if score not in SCORES:
        raise JaxawareError(f"score must be one of {', '.join(SCORES)}; got {score!r}")
    return score


_WORLD: dict = {}


def world_classifier() -> Classifier:
    """The toy world's reference classifier as a pure JAX function (cached)."""
    if "clf" not in _WORLD:
        from jaxaware.toyworld import load_classifier

        _WORLD["clf"] = _from_reference(load_classifier(), "the toy world's classifier")
    return _WORLD["clf"]


def _from_reference(ref, name: str = "reference classifier") -> Classifier:
    """A toy-world ``ReferenceClassifier`` as a pure function: 32x32 inputs, 64x64 averaged
    over 2x2 blocks first, as :meth:`ReferenceClassifier.logits` does."""
    params, module, res = ref.params, ref.model, int(ref.config["resolution"])

    def logits(images):
        x = jnp.asarray(images, jnp.float32)
        if x.shape[1] == 2 * res:
            n = x.shape[0]
            x = x.reshape(n, res, 2, res, 2, 3).mean(axis=(2, 4))
        return module.apply({"params": params}, x)[1]

    return Classifier(logits, name, int(ref.config["num_classes"]))


def is_world_model(model) -> bool:
    """Whether ``model`` generates the toy world's 16 classes (by name) at 32 or 64 px."""
    from jaxaware.toyworld import WORLD

    names = model.class_names
    if names is None or len(names) != WORLD.num_classes:
        return False
    flat = tuple(n if isinstance(n, str) else n[0] for n in names)
    return flat == tuple(WORLD.class_names) and model.config.resolution in (32, 64)


def as_classifier(classifier, model, name: str | None = None) -> Classifier:
    """A :class:`Classifier` for ``model`` from ``classifier``.

    ``classifier``: a :class:`Classifier`; a function ``images [B, H, W, 3] -> logits
    [B, K]`` (checked on two blank images: it must return ``[2, num_classes]``); the toy
    world's ``ReferenceClassifier``; or None, which means the toy world's classifier and is
    accepted only for a model of the toy world (its 16 classes, 32 or 64 px).
    """
    if isinstance(classifier, Classifier):
        return _checked(classifier, model)
    if classifier is None:
        if not is_world_model(model):
            raise JaxawareError(
                "give a classifier (a function images [B, H, W, 3] in [-1, 1] -> logits "
                "[B, K]; on the command line --classifier FILE.py:NAME); the toy world's "
                "classifier fits only models of the toy world's 16 classes")
        return world_classifier()
    from jaxaware.toyworld import ReferenceClassifier

    reference = isinstance(classifier, ReferenceClassifier)
    if not reference and not callable(classifier):
        raise JaxawareError(f"classifier must be a function images -> logits; got "
                            f"{type(classifier).__name__}")
    key = (model.config.resolution, model.config.num_classes, name)
    try:
        cached = _WRAPPED.get(classifier, {}).get(key)
    except TypeError:  # not weakly referenceable: wrap it every time
        cached = None
    if cached is not None:
        return cached
    if reference:
        clf = _checked(_from_reference(classifier), model)
    else:
        label = name or getattr(classifier, "__name__", type(classifier).__name__)
        clf = _checked(Classifier(classifier, label, model.config.num_classes,
                                  _traceable(classifier, model.config.resolution)), model)
    try:
        _WRAPPED.setdefault(classifier, {})[key] = clf
    except TypeError:
        pass
    return clf


#: One wrapper per user function or reference classifier (and image size): the compiled
#: sweeps are keyed by the wrapper, so passing the same function again reuses them.
_WRAPPED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _traceable(fn, resolution: int) -> bool:
    spec = jax.ShapeDtypeStruct((2, resolution, resolution, 3), jnp.float32)
    try:
        jax.eval_shape(fn, spec)
    except JaxawareError:
        raise
    except Exception:  # NumPy or PyTorch inside: call it on the host
        return False
    return True


_CHECKED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _checked(clf: Classifier, model) -> Classifier:
    """``clf`` itself (so compiled sweeps are reused), or a one-line error unless it maps
    two blank images to ``[2, K]``; checked once per classifier and image size."""
    r, k = model.config.resolution, model.config.num_classes
    if (r, k) in _CHECKED.get(clf, ()):
        return clf
    blank = np.zeros((2, r, r, 3), np.float32)
    try:
        out = clf.fn(jnp.asarray(blank)) if clf.traceable else clf.fn(blank)
        shape = list(np.shape(out))
    except JaxawareError:
        raise
    except Exception as e:
        raise JaxawareError(f"classifier {clf.name} failed on images [2, {r}, {r}, 3] "
                            f"({type(e).__name__}: {_one_line(e)})") from None
    if shape != [2, k] or clf.num_classes != k:
        raise JaxawareError(f"classifier {clf.name} returned shape {shape} for images "
                            f"[2, {r}, {r}, 3]; it must return logits [2, {k}] (one per class "
                            "of the model)")
    _CHECKED.setdefault(clf, set()).add((r, k))
    return clf


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else ""


_MODULES: dict = {}


def _import_file(path: str):
    """The module of a Python file, imported once per content (path, size, mtime), so the
    same file gives the same functions and compiled sweeps are reused."""
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if key not in _MODULES:
        module_name = "jaxaware_user_classifier_" + str(abs(hash(key)))
        try:
            loader = importlib.util.spec_from_file_location(module_name, path)
            if loader is None or loader.loader is None:
                raise ImportError("not a Python file")
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)
        except Exception as e:
            raise JaxawareError(f"cannot import classifier file {path} ({type(e).__name__}: "
                                f"{_one_line(e)})") from None
        _MODULES[key] = (module, module_name)
    return _MODULES[key]


def load_classifier_spec(spec: str, model) -> Classifier:
    """The function ``NAME`` of the Python file ``FILE.py`` given as ``FILE.py:NAME``.

    The file is imported as a module (it may import jax, numpy, torch ...); ``NAME`` must
    be a function ``images [B, H, W, 3] in [-1, 1] -> logits [B, num_classes]``.
    """
    if not isinstance(spec, str) or ":" not in spec:
        raise JaxawareError(f"--classifier must be FILE.py:NAME, e.g. inception.py:logits; "
                            f"got {spec!r}")
    path, name = spec.rsplit(":", 1)
    if not path or not name:
        raise JaxawareError(f"--classifier must be FILE.py:NAME, e.g. inception.py:logits; "
                            f"got {spec!r}")
    if not os.path.isfile(path):
        raise JaxawareError(f"classifier file {path} does not exist; give FILE.py:NAME with an "
                            "existing Python file")
    module, module_name = _import_file(path)
    if not hasattr(module, name):
        defined = sorted(k for k, v in vars(module).items()
                         if callable(v) and not k.startswith("_")
                         and getattr(v, "__module__", None) == module_name)
        listed = ", ".join(defined) if defined else "no public functions"
        raise JaxawareError(f"classifier file {path} has no function {name!r}; it defines: "
                            f"{listed}")
    fn = getattr(module, name)
    if not callable(fn):
        raise JaxawareError(f"{name!r} in classifier file {path} is not a function "
                            f"(it is a {type(fn).__name__})")
    return as_classifier(fn, model, name=f"{path}:{name}")
