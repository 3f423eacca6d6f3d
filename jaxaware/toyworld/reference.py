"""Plumbing shared by the toy world's reference networks (classifier and part segmenter).

Both networks ship the same way: the Flax params as an npz (one ``.npy`` per array, named
by its ``/``-joined path, written with fixed zip timestamps so the same weights always
give the same bytes) next to a JSON sidecar with the format tag, the npz's sha256 and
size, the model config and the training record. :func:`save_reference` writes both
atomically; :func:`load_reference` checks the checksum before reading anything and checks
that the arrays fit the config, so a truncated, corrupt or mismatched file is a one-line
:class:`~jaxaware.errors.JaxawareError` and loading never trains.

Both also take the same inputs (:func:`check_images`) and evaluate a jitted function in
fixed-size padded batches (:func:`run_batched`), so any N compiles once per resolution.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxaware.atomic import atomic_write
from jaxaware.errors import JaxawareError
from jaxaware.toyworld.metadata import RESOLUTIONS


@dataclass(frozen=True)
class ReferenceKind:
    """What differs between the reference networks' files.

    Attributes:
        what: the word used in error messages (``"classifier"``, ``"segmenter"``).
        format: the sidecar's format tag, e.g. ``"jaxaware.toyworld_classifier/1"``.
        train_command: the command that (re)creates the weights, quoted when they are
            missing.
        build: config dict -> the Flax module it describes (may raise KeyError, TypeError,
            ValueError for a bad config).
        init_shape: config dict -> the input shape whose ``init`` creates every param.
    """

    what: str
    format: str
    train_command: str
    build: Callable[[dict], Any]
    init_shape: Callable[[dict], tuple[int, ...]]


def data_path(name: str) -> Path:
    """The path of a shipped file in ``jaxaware/data``."""
    return Path(__file__).resolve().parent.parent / "data" / name


def sidecar_path(path) -> Path:
    """The JSON sidecar that belongs to a weights file (same name, ``.json``)."""
    return Path(path).with_suffix(".json")


# --------------------------------------------------------------------------- params


def flatten_params(params, prefix: str = "") -> dict[str, np.ndarray]:
    """Nested params -> ``{"a/b/kernel": float32 array}``."""
    out = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) or hasattr(value, "items"):
            out.update(flatten_params(value, name + "/"))
        else:
            out[name] = np.asarray(value, dtype=np.float32)
    return out


def unflatten_params(flat: dict[str, np.ndarray]) -> dict:
    """The inverse of :func:`flatten_params` (leaves become jax arrays)."""
    out: dict = {}
    for name, value in flat.items():
        node = out
        *parents, leaf = name.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = jnp.asarray(value)
    return out


def _shapes(tree, prefix: str = "") -> dict[str, tuple[int, ...]]:
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if hasattr(value, "items"):
            out.update(_shapes(value, name + "/"))
        else:
            out[name] = tuple(value.shape)
    return out


# --------------------------------------------------------------------------- files


def _atomic_write(path: Path, data: bytes) -> None:
    with atomic_write(path) as fh:
        fh.write(data)


def npz_bytes(flat: dict[str, np.ndarray]) -> bytes:
    """The npz archive of ``flat``, byte-identical for identical arrays (sorted names,
    fixed zip timestamps), so the checksum is a function of the weights alone."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(flat):
            arr_buf = io.BytesIO()
            np.lib.format.write_array(arr_buf, flat[name], allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0)),
                        arr_buf.getvalue(), compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def save_reference(kind: ReferenceKind, params, config: dict, path,
                   info: dict | None = None) -> Path:
    """Write ``params`` to ``path`` (npz) and its sidecar (format, sha256, bytes, config,
    info), each atomically (a temp file in the same folder, then ``os.replace``).
    Returns ``path``."""
    path = Path(path)
    data = npz_bytes(flatten_params(params))
    sidecar = {"format": kind.format, "sha256": hashlib.sha256(data).hexdigest(),
               "bytes": len(data), "config": dict(config), "info": dict(info or {})}
    _atomic_write(path, data)
    _atomic_write(sidecar_path(path),
                  (json.dumps(sidecar, indent=2, sort_keys=True) + "\n").encode())
    return path


def _read_sidecar(kind: ReferenceKind, path: Path) -> dict:
    side = sidecar_path(path)
    if not side.is_file():
        raise JaxawareError(f"{kind.what} sidecar not found: {side}")
    try:
        meta = json.loads(side.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise JaxawareError(f"{kind.what} sidecar {side} is not valid JSON: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != kind.format or not isinstance(
            meta.get("sha256"), str) or not isinstance(meta.get("config"), dict):
        raise JaxawareError(f"{kind.what} sidecar {side} is not a {kind.format} sidecar")
    return meta


def load_reference(kind: ReferenceKind, path) -> tuple[dict, dict]:
    """Read weights written by :func:`save_reference` after verifying the sha256 in their
    sidecar and that the arrays are exactly those the sidecar's config needs.

    Returns:
        ``(params, meta)``: nested params (jax arrays) and the parsed sidecar.

    Raises:
        JaxawareError: (one line) for a missing file or sidecar, a sidecar of another
            format, a checksum mismatch (truncated or corrupt file), an unreadable archive,
            a bad config, or arrays that do not fit the config.
    """
    path = Path(path)
    if not path.is_file():
        raise JaxawareError(f"{kind.what} weights not found: {path}; "
                            f"train them with: {kind.train_command}")
    meta = _read_sidecar(kind, path)
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != meta["sha256"]:
        raise JaxawareError(
            f"checksum mismatch for {path}: sha256 is {digest[:16]}..., the sidecar expects "
            f"{meta['sha256'][:16]}...; the file is truncated or corrupt")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            flat = {k: npz[k] for k in npz.files}
    except Exception as e:  # noqa: BLE001 - any unreadable archive is the same user error
        raise JaxawareError(f"cannot read {kind.what} weights {path}: {e}") from None
    config = meta["config"]
    try:
        model = kind.build(config)
        shape = tuple(int(s) for s in kind.init_shape(config))
    except (KeyError, TypeError, ValueError) as e:
        raise JaxawareError(f"{kind.what} sidecar {sidecar_path(path)} has a bad config: "
                            f"{e}") from None
    expected = jax.eval_shape(model.init, jax.random.PRNGKey(0),
                              jax.ShapeDtypeStruct(shape, jnp.float32))["params"]
    want = _shapes(expected)
    got = {k: tuple(v.shape) for k, v in flat.items()}
    if want != got:
        raise JaxawareError(f"{kind.what} weights {path} do not match the config in "
                            f"{sidecar_path(path)}: expected {len(want)} arrays {want}")
    return unflatten_params(flat), meta


# --------------------------------------------------------------------------- inputs


def check_images(images, resolutions=RESOLUTIONS) -> np.ndarray:
    """``images`` as float32 ``[N, R, R, 3]`` with R in ``resolutions``; anything else
    raises :class:`JaxawareError` naming the accepted shapes and the shape it got."""
    arr = np.asarray(images)
    ok = (arr.ndim == 4 and arr.shape[1] == arr.shape[2] and arr.shape[-1] == 3
          and arr.shape[1] in resolutions and arr.dtype.kind in "fiub")
    if not ok:
        accepted = " or ".join(f"[N, {r}, {r}, 3]" for r in resolutions)
        dtype = "" if arr.dtype.kind in "fiub" else f" of dtype {arr.dtype}"
        raise JaxawareError(f"images must be {accepted} floats in [-1, 1], "
                            f"got shape {tuple(arr.shape)}{dtype}")
    return arr.astype(np.float32, copy=False)


def run_batched(fn: Callable, params, x: np.ndarray, batch_size: int,
                out_shapes: tuple[tuple[tuple[int, ...], Any], ...]) -> tuple[np.ndarray, ...]:
    """Evaluate ``fn(params, chunk) -> tuple of arrays`` over ``x`` in chunks of exactly
    ``batch_size`` (the last one zero-padded), so a jitted ``fn`` compiles once per input
    shape whatever N is; padding rows are dropped. ``out_shapes`` gives each output's
    per-image shape and dtype, used for N = 0."""
    n = x.shape[0]
    parts: list[list[np.ndarray]] = [[] for _ in out_shapes]
    for lo in range(0, n, batch_size):
        chunk = x[lo:lo + batch_size]
        m = chunk.shape[0]
        if m < batch_size:
            chunk = np.concatenate([chunk, np.zeros((batch_size - m,) + chunk.shape[1:],
                                                    chunk.dtype)])
        for acc, out in zip(parts, fn(params, chunk)):
            acc.append(np.asarray(out)[:m])
    return tuple(np.concatenate(acc) if acc else np.zeros((0,) + tuple(shape), dtype)
                 for acc, (shape, dtype) in zip(parts, out_shapes))


def load_network(network_class, kind: ReferenceKind, path, default_path, batch_size: int):
    """A reference network (``network_class(params, config, batch_size=, info=)``) from
    ``path``, or from the shipped ``default_path`` when ``path`` is None (loaded once per
    batch size and kept), after :func:`load_reference`'s checks."""
    if path is None:
        return _load_network_cached(network_class, kind, Path(default_path), int(batch_size))
    return _load_network(network_class, kind, Path(path), batch_size)


@functools.lru_cache(maxsize=8)
def _load_network_cached(network_class, kind, path: Path, batch_size: int):
    return _load_network(network_class, kind, path, batch_size)


def _load_network(network_class, kind, path: Path, batch_size: int):
    params, meta = load_reference(kind, path)
    return network_class(params, meta["config"], batch_size=batch_size, info=meta.get("info", {}))
