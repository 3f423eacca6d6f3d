"""The toy world's reference classifier: a small Flax CNN and its shipped weights.

The network sees 32x32 images in [-1, 1]; 64x64 images are first averaged over 2x2 blocks
(the renderer draws the same scene at both sizes, so this matches the 32x32 image except
along part edges, which are not anti-aliased). Three conv/ReLU/avg-pool stages (32, 64,
128 channels) are followed by a global
average and a 128-unit ReLU layer: that layer's output is the world's feature extractor
(:meth:`ReferenceClassifier.features`), used for per-class precision/recall and Frechet
distances. A last dense layer gives the 16 class logits.

The trained weights ship as ``jaxaware/data/toyworld_classifier.npz`` with a JSON sidecar
holding the config, the training record and the sha256 of the npz; :func:`load_classifier`
checks the checksum before reading anything, so loading never needs (or silently
substitutes) training.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import zipfile
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxaware.atomic import atomic_write
from jaxaware.errors import JaxawareError
from jaxaware.toyworld.metadata import WORLD

#: Where the shipped weights live; the sidecar is the same path with ``.json``.
DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "data" / "toyworld_classifier.npz"
FORMAT = "jaxaware.toyworld_classifier/1"
DEFAULT_CONFIG = {"widths": [32, 64, 128], "feature_dim": 128,
                  "num_classes": WORLD.num_classes, "resolution": 32}


class ToyCNN(nn.Module):
    """Conv stages of ``widths`` channels (3x3 conv, ReLU, 2x2 average pool), global
    average, a ``feature_dim`` ReLU layer (the features) and a linear classifier."""

    widths: tuple[int, ...] = (32, 64, 128)
    feature_dim: int = 128
    num_classes: int = 16

    @nn.compact
    def __call__(self, x):
        """``x``: float [N, 32, 32, 3] in [-1, 1] -> ``(features [N, D], logits [N, K])``."""
        for i, w in enumerate(self.widths):
            x = nn.relu(nn.Conv(w, (3, 3), name=f"conv{i}")(x))
            x = nn.avg_pool(x, (2, 2), strides=(2, 2))
        x = jnp.mean(x, axis=(1, 2))
        feats = nn.relu(nn.Dense(self.feature_dim, name="features")(x))
        logits = nn.Dense(self.num_classes, name="logits")(feats)
        return feats, logits


def model_from_config(config: dict) -> ToyCNN:
    """The :class:`ToyCNN` a config dict (as stored in the sidecar) describes."""
    return ToyCNN(widths=tuple(int(w) for w in config["widths"]),
                  feature_dim=int(config["feature_dim"]), num_classes=int(config["num_classes"]))


@functools.lru_cache(maxsize=16)
def jitted_apply(model: ToyCNN):
    """``jax.jit(model.apply)``, shared by every classifier of the same architecture so
    loading or building one again does not compile again."""
    return jax.jit(model.apply)


def to_input_resolution(images: np.ndarray, resolution: int = 32) -> np.ndarray:
    """Check ``images`` ([N, R, R, 3], R = 32 or 64) and bring them to ``resolution``
    by 2x2 average pooling; raises :class:`JaxawareError` for any other shape."""
    images = np.asarray(images)
    ok = (images.ndim == 4 and images.shape[1] == images.shape[2]
          and images.shape[-1] == 3 and images.shape[1] in (resolution, 2 * resolution))
    if not ok:
        raise JaxawareError(
            f"images must be [N, {resolution}, {resolution}, 3] or "
            f"[N, {2 * resolution}, {2 * resolution}, 3] floats in [-1, 1], "
            f"got shape {tuple(images.shape)}")
    images = images.astype(np.float32, copy=False)
    if images.shape[1] == 2 * resolution:
        n = images.shape[0]
        images = images.reshape(n, resolution, 2, resolution, 2, 3).mean(axis=(2, 4))
    return images


class ReferenceClassifier:
    """The trained toy-world classifier: ``logits``, ``features`` and ``predict`` on numpy
    images (float [N, 32, 32, 3] or [N, 64, 64, 3] in [-1, 1]), evaluated by a jitted
    function in fixed-size batches so any N works without recompiling."""

    def __init__(self, params, config: dict, batch_size: int = 512, info: dict | None = None):
        self.params = params
        self.config = dict(config)
        self.info = dict(info or {})
        self.batch_size = int(batch_size)
        self.model = model_from_config(config)
        self._apply = jitted_apply(self.model)

    @property
    def class_names(self) -> tuple[str, ...]:
        return WORLD.class_names

    def _run(self, images) -> tuple[np.ndarray, np.ndarray]:
        x = to_input_resolution(images, int(self.config["resolution"]))
        n, bs = x.shape[0], self.batch_size
        feats, logits = [], []
        for lo in range(0, n, bs):
            chunk = x[lo:lo + bs]
            m = chunk.shape[0]
            if m < bs:  # pad to a fixed batch shape: one compilation for every N
                chunk = np.concatenate([chunk, np.zeros((bs - m,) + chunk.shape[1:],
                                                        np.float32)])
            f, lg = self._apply({"params": self.params}, chunk)
            feats.append(np.asarray(f)[:m])
            logits.append(np.asarray(lg)[:m])
        d, k = int(self.config["feature_dim"]), int(self.config["num_classes"])
        if not feats:
            return np.zeros((0, d), np.float32), np.zeros((0, k), np.float32)
        return np.concatenate(feats), np.concatenate(logits)

    def features(self, images) -> np.ndarray:
        """Penultimate-layer features, float32 [N, feature_dim] (128 for the shipped one)."""
        return self._run(images)[0]

    def logits(self, images) -> np.ndarray:
        """Class logits, float32 [N, 16]."""
        return self._run(images)[1]

    def predict(self, images) -> np.ndarray:
        """Predicted class indices, int64 [N]."""
        return np.argmax(self.logits(images), axis=-1).astype(np.int64)

    def accuracy(self, images, classes) -> float:
        """Fraction of ``images`` whose predicted class equals ``classes``."""
        return float(np.mean(self.predict(images) == np.asarray(classes)))


# --------------------------------------------------------------------------- files


def sidecar_path(path) -> Path:
    """The JSON sidecar that belongs to a weights file (same name, ``.json``)."""
    return Path(path).with_suffix(".json")


def _flatten(params, prefix: str = "") -> dict[str, np.ndarray]:
    out = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) or hasattr(value, "items"):
            out.update(_flatten(value, name + "/"))
        else:
            out[name] = np.asarray(value, dtype=np.float32)
    return out


def _unflatten(flat: dict[str, np.ndarray]) -> dict:
    out: dict = {}
    for name, value in flat.items():
        node = out
        *parents, leaf = name.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = jnp.asarray(value)
    return out


def _atomic_write(path: Path, data: bytes) -> None:
    with atomic_write(path) as fh:
        fh.write(data)


def save_classifier(params, config: dict, path=DEFAULT_WEIGHTS, info: dict | None = None) -> Path:
    """Write ``params`` to ``path`` (npz) and its sidecar (config, info, sha256), each
    atomically (a temp file in the same folder, then ``os.replace``). Returns ``path``."""
    path = Path(path)
    buf = io.BytesIO()
    flat = _flatten(params)
    # Fixed zip timestamps so the same weights always give the same bytes and checksum.
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(flat):
            arr_buf = io.BytesIO()
            np.lib.format.write_array(arr_buf, flat[name], allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0)),
                        arr_buf.getvalue(), compress_type=zipfile.ZIP_DEFLATED)
    data = buf.getvalue()
    sidecar = {"format": FORMAT, "sha256": hashlib.sha256(data).hexdigest(),
               "bytes": len(data), "config": dict(config), "info": dict(info or {})}
    _atomic_write(path, data)
    _atomic_write(sidecar_path(path),
                  (json.dumps(sidecar, indent=2, sort_keys=True) + "\n").encode())
    return path


def _read_sidecar(path: Path) -> dict:
    side = sidecar_path(path)
    if not side.is_file():
        raise JaxawareError(f"classifier sidecar not found: {side}")
    try:
        meta = json.loads(side.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise JaxawareError(f"classifier sidecar {side} is not valid JSON: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or not isinstance(
            meta.get("sha256"), str) or not isinstance(meta.get("config"), dict):
        raise JaxawareError(f"classifier sidecar {side} is not a {FORMAT} sidecar")
    return meta


def load_classifier(path=None, batch_size: int = 512) -> ReferenceClassifier:
    """Load the reference classifier (default: the shipped weights) after verifying the
    sha256 recorded in its sidecar. Raises :class:`JaxawareError` with a one-line message
    for a missing, truncated or corrupt file, or weights that do not fit the config."""
    if path is None:
        return _load_default(batch_size)
    return _load(Path(path), batch_size)


@functools.lru_cache(maxsize=4)
def _load_default(batch_size: int) -> ReferenceClassifier:
    return _load(DEFAULT_WEIGHTS, batch_size)


def _load(path: Path, batch_size: int) -> ReferenceClassifier:
    if not path.is_file():
        raise JaxawareError(f"classifier weights not found: {path}; "
                            "train them with: python experiments/train_classifier.py")
    meta = _read_sidecar(path)
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
        raise JaxawareError(f"cannot read classifier weights {path}: {e}") from None
    config = meta["config"]
    try:
        model = model_from_config(config)
        res = int(config["resolution"])
    except (KeyError, TypeError, ValueError) as e:
        raise JaxawareError(f"classifier sidecar {sidecar_path(path)} has a bad config: {e}") \
            from None
    expected = jax.eval_shape(model.init, jax.random.PRNGKey(0),
                              jnp.zeros((1, res, res, 3), jnp.float32))["params"]
    want = {k: tuple(v.shape) for k, v in _flatten_shapes(expected).items()}
    got = {k: tuple(v.shape) for k, v in flat.items()}
    if want != got:
        raise JaxawareError(f"classifier weights {path} do not match the config in "
                            f"{sidecar_path(path)}: expected {len(want)} arrays {want}")
    return ReferenceClassifier(_unflatten(flat), config, batch_size=batch_size,
                               info=meta.get("info", {}))


def _flatten_shapes(tree, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if hasattr(value, "items"):
            out.update(_flatten_shapes(value, name + "/"))
        else:
            out[name] = value
    return out
