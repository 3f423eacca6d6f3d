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
substitutes) training. The file format, the input check and the batched evaluation are
shared with the part segmenter (:mod:`.reference`), the training loop too (:mod:`.train`).
"""

from __future__ import annotations

import functools
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxaware.toyworld.metadata import WORLD
from jaxaware.toyworld.reference import (
    ReferenceKind,
    check_images,
    data_path,
    load_network,
    run_batched,
    save_reference,
    sidecar_path,
)

#: Where the shipped weights live; the sidecar is the same path with ``.json``.
DEFAULT_WEIGHTS = data_path("toyworld_classifier.npz")
FORMAT = "jaxaware.toyworld_classifier/1"
DEFAULT_CONFIG = {"widths": [32, 64, 128], "feature_dim": 128,
                  "num_classes": WORLD.num_classes, "resolution": 32}

__all__ = ["ToyCNN", "ReferenceClassifier", "load_classifier", "save_classifier",
           "model_from_config", "to_input_resolution", "sidecar_path", "DEFAULT_CONFIG",
           "DEFAULT_WEIGHTS", "FORMAT", "KIND"]


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
    images = check_images(images, (resolution, 2 * resolution))
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
        d, k = int(self.config["feature_dim"]), int(self.config["num_classes"])
        return run_batched(self._apply, {"params": self.params}, x, self.batch_size,
                           (((d,), np.float32), ((k,), np.float32)))

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

#: How the classifier's files are named, tagged and checked (see :mod:`.reference`).
KIND = ReferenceKind(
    what="classifier", format=FORMAT,
    train_command="python experiments/train_classifier.py",
    build=lambda config: model_from_config(config),
    init_shape=lambda config: (1, int(config["resolution"]), int(config["resolution"]), 3))


def save_classifier(params, config: dict, path=DEFAULT_WEIGHTS, info: dict | None = None) -> Path:
    """Write ``params`` to ``path`` (npz) and its sidecar (config, info, sha256), each
    atomically (a temp file in the same folder, then ``os.replace``). Returns ``path``."""
    return save_reference(KIND, params, config, path, info)


def load_classifier(path=None, batch_size: int = 512) -> ReferenceClassifier:
    """Load the reference classifier (default: the shipped weights) after verifying the
    sha256 recorded in its sidecar. Raises :class:`JaxawareError` with a one-line message
    for a missing, truncated or corrupt file, or weights that do not fit the config."""
    return load_network(ReferenceClassifier, KIND, path, DEFAULT_WEIGHTS, batch_size)
