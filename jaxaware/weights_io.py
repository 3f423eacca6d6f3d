"""Reading and writing a model's weights directory.

A converted or trained model lives in a directory holding two files:

``params.npz``
    The parameters, flattened: each key is the ``/``-joined path of an array in the nested
    parameter dict (``block0/bn0/scale/kernel``). Written without pickles and read with
    ``allow_pickle=False``, so loading a weights directory never runs code.
``config.json``
    ``{"format": "jaxaware-weights", "version": 1, "model_id": ..., "family": ...,
    "config": {...}, "params_sha256": ..., "extra": {...}}``. ``family`` names the model
    family (absent in directories written before there were two: those hold BigGAN-deep),
    ``config`` is the model's architecture (whatever JSON the model needs to rebuild itself),
    ``params_sha256`` the SHA-256 of
    ``params.npz`` (checked before the archive is parsed, so a truncated or corrupted copy
    is reported as such), ``config_sha256`` the SHA-256 of the canonical JSON of
    ``model_id``, ``family`` and ``config`` (:func:`config_digest`; so an edited
    configuration is an error, not a silently different model; directories written before
    it existed have none and are read with their parameters checked only), and ``extra``
    free-form provenance (not covered by either checksum).

:func:`save_weights` writes the whole directory next to its destination and moves it into
place with renames, so a reader sees the old model or the new one, never half of either,
and a failed save leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from jaxaware.checks import check_fits_in_memory, format_bytes
from jaxaware.atomic import atomic_directory, check_directory_destination, check_output_path
from jaxaware.errors import JaxawareError

__all__ = [
    "WEIGHTS_FORMAT",
    "WEIGHTS_VERSION",
    "flatten_params",
    "unflatten_params",
    "save_weights",
    "load_weights",
    "config_digest",
    "check_weights_destination",
]

WEIGHTS_FORMAT = "jaxaware-weights"
"""The ``format`` field of a weights directory's config.json."""
WEIGHTS_VERSION = 1
"""The ``version`` of the weights directory layout this module writes and reads."""

PARAMS_FILE = "params.npz"
CONFIG_FILE = "config.json"

_SEP = "/"
_DTYPE_KINDS = "biufc"  # bool, int, uint, float, complex: what .npy stores without pickles
_CONTAINS = f"a jaxaware weights directory holds {CONFIG_FILE} and {PARAMS_FILE}"
_CHUNK = 1 << 20


# --------------------------------------------------------------------------------------------
# Flattening
# --------------------------------------------------------------------------------------------


def _as_array(leaf: object, key: str) -> np.ndarray:
    """A parameter leaf as a NumPy array of a dtype params.npz can hold (dtype kept)."""
    if not isinstance(leaf, (np.ndarray, np.generic)) and not hasattr(leaf, "__array__"):
        raise JaxawareError(f"parameter {key!r} is a {type(leaf).__name__}; parameters must be "
                            "NumPy or JAX arrays")
    array = np.asarray(leaf)
    if array.dtype.kind not in _DTYPE_KINDS:
        raise JaxawareError(f"parameter {key!r} has dtype {array.dtype}, which {PARAMS_FILE} "
                            "cannot store; use a bool, integer, float or complex NumPy dtype "
                            "(e.g. cast bfloat16 to float32)")
    return array


def flatten_params(params: Mapping) -> dict[str, np.ndarray]:
    """Flatten a nested dict of arrays into ``{'a/b/c': array}``.

    Args:
      params: nested mappings (dicts, Flax ``FrozenDict``) whose keys are non-empty strings
        without ``/`` and whose leaves are NumPy or JAX arrays. Empty sub-dicts hold no
        arrays and are dropped.

    Returns:
      A flat dict of NumPy arrays, in depth-first insertion order, with dtypes unchanged
      (JAX arrays are copied to the host).
    """
    if not isinstance(params, Mapping):
        raise JaxawareError(f"params must be a nested dict of arrays; got "
                            f"{type(params).__name__}")
    flat: dict[str, np.ndarray] = {}

    def visit(node: Mapping, prefix: str) -> None:
        for name, value in node.items():
            if not isinstance(name, str) or not name or _SEP in name:
                raise JaxawareError(f"parameter name {name!r} under {prefix or '/'!r} is not "
                                    f"allowed; names must be non-empty strings without '{_SEP}'")
            key = f"{prefix}{_SEP}{name}" if prefix else name
            if isinstance(value, Mapping):
                visit(value, key)
            else:
                flat[key] = _as_array(value, key)

    visit(params, "")
    return flat


def unflatten_params(flat: Mapping[str, object]) -> dict:
    """Rebuild the nested dict from ``{'a/b/c': array}`` (the inverse of
    :func:`flatten_params`). Leaves are returned as given."""
    tree: dict = {}
    for key, value in flat.items():
        parts = key.split(_SEP) if isinstance(key, str) else [""]
        if not all(parts):
            raise JaxawareError(f"parameter key {key!r} is not allowed; keys are '{_SEP}'-joined "
                                "non-empty names")
        node = tree
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise JaxawareError(f"parameter key {key!r} conflicts with array "
                                    f"{_SEP.join(parts[:depth + 1])!r}; an array cannot also "
                                    "hold parameters")
            node = child
        if parts[-1] in node:
            raise JaxawareError(f"parameter key {key!r} conflicts with other keys under it; a "
                                "path is either an array or a group of parameters")
        node[parts[-1]] = value
    return tree


# --------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write an uncompressed, pickle-free .npz (what ``np.savez`` writes), then fsync it.

    Written member by member instead of through ``np.savez(file, **arrays)`` so parameter
    names can't collide with ``savez``'s own keyword arguments (``file``, ``allow_pickle``).
    """
    with open(path, "wb") as f:
        with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for key, array in arrays.items():
                with zf.open(key + ".npy", mode="w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())


def config_digest(model_id: str, family: str | None, config: dict) -> str:
    """SHA-256 of the canonical JSON (sorted keys, no spaces) of ``model_id``, ``family``
    (None when absent) and ``config``: config.json's ``config_sha256``."""
    value = json.loads(json.dumps({"model_id": model_id, "family": family, "config": config},
                                  allow_nan=False))
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _read_marker(path: Path) -> dict | None:
    """config.json of ``path`` if it parses as a jaxaware weights config, else None."""
    try:
        with open(path / CONFIG_FILE, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == WEIGHTS_FORMAT else None


def _foreign_target(path: Path) -> JaxawareError:
    """The error for a save target that is a file, a symlink or somebody else's directory."""
    return JaxawareError(f"{path} exists and is not a jaxaware weights directory; refusing to "
                         "overwrite it; remove it or choose another path")


def _check_json(value: object, what: str) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        # json's wording for NaN/infinity differs between Python versions; say it plainly.
        detail = "it contains NaN or infinity" if "compliant" in str(exc) else _one_line(exc)
        raise JaxawareError(f"{what} must be JSON-serializable (dicts, lists, strings, finite "
                            f"numbers, booleans, null); {detail}") from None


def save_weights(
    path: str | os.PathLike,
    params: Mapping,
    config: dict,
    model_id: str,
    extra: dict | None = None,
    family: str | None = None,
    force: bool = False,
) -> Path:
    """Write a weights directory (``params.npz`` + ``config.json``) at ``path``, atomically.

    The directory is built in a temporary directory beside ``path`` (same parent, so the
    final move is a rename on one filesystem), flushed to disk, then moved into place:
    renamed to ``path`` if nothing (or an empty directory) is there, or swapped with an
    existing weights directory (the old one is renamed aside, the new one renamed in, the
    old one removed; anything else the old directory held goes with it). Missing parent
    directories are created. If anything fails, the temporary directory is removed and
    ``path`` is left as it was.

    Args:
      path: the weights directory to create or replace.
      params: nested dict of NumPy or JAX arrays (see :func:`flatten_params`); dtypes are kept.
      config: the model's architecture, as a JSON-serializable dict.
      model_id: short identifier of the model (e.g. ``'biggan-deep-128'``).
      extra: optional JSON-serializable provenance (source checkpoint, training step, ...).
      family: the model family (``biggan``, ``biggan-deep``), recorded as ``family``.

    Returns:
      ``path`` as a :class:`pathlib.Path`.

    Raises:
      JaxawareError: bad arguments, or ``path`` is a file, a symlink, or a non-empty
        directory that is not a jaxaware weights directory (it is left untouched).
    """
    if isinstance(path, str) and not path:
        raise JaxawareError("the output path is empty; give a directory path")
    path = Path(path)
    if not isinstance(model_id, str) or not model_id.strip():
        raise JaxawareError(f"model_id must be a non-empty string; got {model_id!r}")
    if not isinstance(config, dict):
        raise JaxawareError(f"config must be a dict; got {type(config).__name__}")
    if extra is None:
        extra = {}
    if not isinstance(extra, dict):
        raise JaxawareError(f"extra must be a dict or None; got {type(extra).__name__}")
    if family is not None and (not isinstance(family, str) or not family):
        raise JaxawareError(f"family must be a non-empty string; got {family!r}")
    _check_json(config, "config")
    _check_json(extra, "extra")
    flat = flatten_params(params)
    if not flat:
        raise JaxawareError("params holds no arrays; give a nested dict with at least one array")

    with atomic_directory(
        path, replaceable=lambda p: _read_marker(p) is not None, refusal=_foreign_target,
        expected_names=(PARAMS_FILE, CONFIG_FILE), force=force,
    ) as tmp:
        _write_npz(tmp / PARAMS_FILE, flat)
        meta = {
            "format": WEIGHTS_FORMAT,
            "version": WEIGHTS_VERSION,
            "model_id": model_id,
            **({"family": family} if family is not None else {}),
            "config": config,
            "params_sha256": _sha256(tmp / PARAMS_FILE),
            "config_sha256": config_digest(model_id, family, config),
            "extra": extra,
        }
        with open(tmp / CONFIG_FILE, "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=2, allow_nan=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
    return path


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def _read_config(config_path: Path) -> dict:
    """Parse and validate config.json; returns it as a dict."""
    try:
        with open(config_path, encoding="utf-8") as f:
            meta = json.load(f)
    except json.JSONDecodeError as exc:
        raise JaxawareError(f"{config_path} is not valid JSON ({exc.msg} at line {exc.lineno} "
                            f"column {exc.colno}); re-create the weights directory") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise JaxawareError(f"cannot read {config_path} ({exc}); re-create the weights "
                            "directory") from None
    if not isinstance(meta, dict) or meta.get("format") != WEIGHTS_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise JaxawareError(f"{config_path} is not a jaxaware weights config: format is "
                            f"{found!r}, expected {WEIGHTS_FORMAT!r}")
    version = meta.get("version")
    if version != WEIGHTS_VERSION or isinstance(version, bool):
        raise JaxawareError(f"{config_path} has weights format version {version!r}; this "
                            f"jaxaware reads version {WEIGHTS_VERSION}")
    expected = {"model_id": str, "config": dict, "params_sha256": str, "extra": dict}
    for field, kind in expected.items():
        if not isinstance(meta.get(field), kind):
            raise JaxawareError(f"{config_path} field {field!r} must be a {kind.__name__}; got "
                                f"{meta.get(field)!r}; re-create the weights directory")
    for field in ("family", "config_sha256"):
        if field in meta and not isinstance(meta[field], str):
            raise JaxawareError(f"{config_path} field {field!r} must be a str; got "
                                f"{meta[field]!r}; re-create the weights directory")
    if "config_sha256" in meta:
        try:
            digest = config_digest(meta["model_id"], meta.get("family"), meta["config"])
        except ValueError:  # NaN or infinity in the config
            digest = None
        if digest != meta["config_sha256"].lower():
            raise JaxawareError(f"{config_path} was edited after it was written: its model_id, "
                                "family and config do not match its config_sha256; restore it "
                                "or re-create the weights directory")
    return meta


def check_weights_destination(path, force: bool = False, reads=()) -> None:
    """Raises the error :func:`save_weights` would raise for ``path`` as a destination (a
    file, a symlink, somebody else's directory, files a user keeps there without ``force``,
    a folder that cannot be written, a name too long) and for a path equal to or inside one
    of ``reads``; writes nothing. For commands that check their output before any work."""
    check_directory_destination(
        path, lambda p: _read_marker(p) is not None, _foreign_target,
        expected_names=(PARAMS_FILE, CONFIG_FILE), force=force,
    )
    check_output_path(path, directory=True, reads=reads)


def _check_members(npz_path: Path, unreadable: str) -> None:
    """Reads every member's .npy header (not its data) and refuses, before anything is
    allocated, an array whose declared size exceeds what the member holds, an object
    array, or arrays that together would not fit in memory."""
    if not zipfile.is_zipfile(npz_path):
        return  # np.load says what it is instead
    total = 0
    with zipfile.ZipFile(npz_path) as zf:
        for info in zf.infolist():
            key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            with zf.open(info) as f:
                try:
                    version = np.lib.format.read_magic(f)
                except ValueError:
                    continue  # not a .npy member: reported when it is read
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                else:
                    raise JaxawareError(f"{unreadable} (member {key!r} has .npy format version "
                                        f"{version[0]}.{version[1]}; jaxaware reads 1.0 and "
                                        "2.0); re-create it")
                if dtype.hasobject:
                    continue  # pickled: np.load(allow_pickle=False) refuses it
                count = 1
                for n in shape:
                    count *= int(n)
                nbytes = count * dtype.itemsize
                held = info.file_size - f.tell()
                if nbytes > held:
                    raise JaxawareError(
                        f"{unreadable} (member {key!r} declares shape {list(shape)} of "
                        f"{dtype}, {format_bytes(nbytes)}, but holds {format_bytes(held)}); "
                        "re-create it")
                total += nbytes
    check_fits_in_memory(total, f"loading {npz_path}")


def load_weights(path: str | os.PathLike) -> tuple[dict, dict]:
    """Load a weights directory written by :func:`save_weights`.

    The checksum of ``params.npz`` is verified against ``config.json`` before the archive
    is parsed, and the archive is read with ``allow_pickle=False``.

    Args:
      path: the weights directory.

    Returns:
      ``(params, meta)``: the nested dict of NumPy arrays (dtypes as saved), and the parsed
      config.json (``format``, ``version``, ``model_id``, ``config``, ``params_sha256``,
      ``extra``).

    Raises:
      JaxawareError: the directory is missing or incomplete, config.json is invalid or of
        another format or version, params.npz fails its checksum or can't be read.
    """
    path = Path(path)
    if not os.path.exists(path):
        raise JaxawareError(f"weights directory {path} does not exist; {_CONTAINS}")
    if not path.is_dir():
        raise JaxawareError(f"{path} is not a directory; {_CONTAINS}")
    for name in (CONFIG_FILE, PARAMS_FILE):
        if not (path / name).is_file():
            raise JaxawareError(f"{path} has no {name}; {_CONTAINS}")
    meta = _read_config(path / CONFIG_FILE)

    npz_path = path / PARAMS_FILE
    try:
        actual = _sha256(npz_path)
    except OSError as exc:
        raise JaxawareError(f"cannot read {npz_path} ({exc.strerror}); make it readable or "
                            "re-create the weights directory") from None
    if actual != meta["params_sha256"].lower():
        raise JaxawareError(f"{npz_path} is corrupted or truncated: sha256 {actual} does not "
                            f"match config.json ({meta['params_sha256']}); re-create it")
    unreadable = f"{npz_path} cannot be read as a NumPy .npz archive"
    flat: dict[str, np.ndarray] = {}
    try:
        _check_members(npz_path, unreadable)
        archive = np.load(npz_path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise JaxawareError(f"{unreadable} (it holds a single array); re-create it")
        with archive:
            for key in archive.files:
                flat[key] = archive[key]
                if not isinstance(flat[key], np.ndarray):
                    raise JaxawareError(f"{unreadable} (member {key!r} is not a .npy array); "
                                        "re-create it")
    except JaxawareError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise JaxawareError(f"{unreadable} ({type(exc).__name__}: {_one_line(exc)}); "
                            "re-create it") from None
    return unflatten_params(flat), meta


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line, for embedding in an error message."""
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:197] + "..."

