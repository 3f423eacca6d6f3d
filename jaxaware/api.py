"""Loading a model and generating with it: the functions most users call.

A :class:`BigGAN` is plain data (config + variables); :func:`generate` is a jitted pure
function of it. Truncation is turned into statistic-row weights on the host
(:func:`jaxaware.truncation.stats_blend`), so changing the truncation, the classes or the
latents never recompiles; only new shapes, a new :class:`~jaxaware.model.Capture` or a
new set of intervened sites do.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxaware.classes import imagenet_class_aliases, resolve_classes, to_class_vectors
from jaxaware.config import BigGANConfig
from jaxaware.errors import JaxawareError
from jaxaware.interventions import ChannelEdit, check_interventions
from jaxaware.model import NOTHING, Capture, Generator
from jaxaware.sites import resolve_site, site_table
from jaxaware.truncation import stats_blend, truncated_noise
from jaxaware.weights_io import load_weights, save_weights


@dataclasses.dataclass(frozen=True)
class BigGAN:
    """A generator's architecture and weights (``variables = {'params', 'stats'}``)."""

    config: BigGANConfig
    variables: dict
    model_id: str = ""
    class_names: tuple | None = None  # one entry (name or alias tuple) per class

    @property
    def params(self) -> dict:
        return self.variables["params"]

    def resolve_classes(self, spec) -> list[int]:
        """Class indices from ``'207,"golden retriever"'``, a list, or ``'all'``."""
        return resolve_classes(spec, self.class_names, self.config.num_classes)

    def save(self, path: str, extra: dict | None = None) -> str:
        extra = dict(extra or {})
        if self.class_names is not None and self.config.num_classes != 1000:
            extra["class_names"] = [n if isinstance(n, str) else n[0] for n in self.class_names]
        return save_weights(
            path, self.variables, self.config.to_reference_dict(), self.model_id, extra
        )


def _default_names(config: BigGANConfig, extra: dict) -> tuple | None:
    if "class_names" in extra:
        return tuple(extra["class_names"])
    if config.num_classes == 1000:
        return imagenet_class_aliases()
    return None


DEFAULT_MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "default_model")


def load(path: str | None = None) -> BigGAN:
    """Loads a weights directory (from ``jaxaware convert`` or training); with no path, the
    shipped default model (a small BigGAN-deep trained on the toy world), checksum-verified."""
    if path is None:
        if not os.path.isdir(DEFAULT_MODEL):
            raise JaxawareError(
                "no default model ships with this installation; give a weights directory"
            )
        path = DEFAULT_MODEL
    variables, meta = load_weights(path)
    config = BigGANConfig.from_reference_dict(meta["config"])
    extra = meta.get("extra") or {}
    for collection in ("params", "stats"):
        if collection not in variables:
            raise JaxawareError(f"{path} holds no {collection!r}; it is not a BigGAN model")
    return BigGAN(config, variables, meta.get("model_id", ""), _default_names(config, extra))


def init_random(config: BigGANConfig, seed: int = 0, class_names=None) -> BigGAN:
    """A model with random weights: for tests, demos and as a training start.

    Kernels and the embedding are ``normal(0, 0.02)``, biases 0, the final BN scale 1,
    statistics mean 0 / variance 1 in every row, attention gamma 0 (as Flax's initialisers
    would give). Filled from NumPy on the host: Flax's own ``init`` compiles a random
    kernel per parameter, which takes tens of seconds on a CPU even for a tiny model.
    """
    blend = tuple(map(jnp.asarray, stats_blend(1.0, config.n_stats)))
    z = jnp.zeros((1, config.z_dim))
    y = jnp.zeros((1, config.num_classes))
    shapes = jax.eval_shape(Generator(config).init, jax.random.PRNGKey(0), z, y, blend)
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        name = jax.tree_util.keystr(path)
        if "'stats'" in name:
            return np.full(leaf.shape, 1.0 if "'var'" in name else 0.0, np.float32)
        if name.endswith("['bias']") or name.endswith("['gamma']"):
            return np.zeros(leaf.shape, np.float32)
        if name.endswith("['bn']['scale']"):
            return np.ones(leaf.shape, np.float32)
        return (0.02 * rng.standard_normal(leaf.shape)).astype(np.float32)

    variables = jax.tree_util.tree_map_with_path(fill, shapes)
    names = class_names if class_names is not None else _default_names(config, {})
    return BigGAN(config, variables, f"random-{seed}", names)


@functools.lru_cache(maxsize=None)
def _jitted_apply(config: BigGANConfig):
    module = Generator(config)

    @functools.partial(jax.jit, static_argnames=("capture",))
    def apply(variables, z, class_vector, rows, weights, capture, interventions):
        return module.apply(variables, z, class_vector, (rows, weights), capture, interventions)

    return apply


def check_latents(z, config: BigGANConfig, batch: int | None = None) -> jnp.ndarray:
    shape = tuple(np.shape(z))
    if len(shape) != 2 or shape[1] != config.z_dim or (batch is not None and shape[0] != batch):
        want = f"[{batch if batch is not None else 'B'}, {config.z_dim}]"
        raise JaxawareError(f"latents must have shape {want}; got {list(shape)}")
    return jnp.asarray(z, jnp.float32)


def generate(
    model: BigGAN,
    z,
    classes,
    truncation: float,
    *,
    capture: Capture = NOTHING,
    interventions: Mapping[str, ChannelEdit] | None = None,
    correct_lerp: bool = False,
):
    """Images ``[B, H, W, 3]`` in [-1, 1] for latents ``z`` ``[B, z_dim]`` and ``classes``.

    ``classes``: int labels ``[B]`` or class vectors ``[B, num_classes]`` (soft labels and
    mixtures). ``truncation`` only selects batch-norm statistics (draw ``z`` with
    :func:`jaxaware.truncation.truncated_noise` at the same truncation). With ``capture``,
    returns ``(images, {site: {'t', 'gamma', 'beta', 'features'}})``. ``interventions``
    maps site names to :class:`~jaxaware.interventions.ChannelEdit`.
    """
    cfg = model.config
    y = to_class_vectors(classes, cfg.num_classes)
    z = check_latents(z, cfg, y.shape[0])
    if interventions:
        check_interventions(interventions, {s.name: s.channels for s in site_table(cfg)})
    if capture.sites is not None:
        # Fail on a typo instead of silently capturing nothing; labels (L13) become names.
        names = tuple(resolve_site(cfg, name).name for name in capture.sites)
        capture = dataclasses.replace(capture, sites=names)
    rows, weights = stats_blend(truncation, cfg.n_stats, correct_lerp)
    images, captured = _jitted_apply(cfg)(
        model.variables, z, jnp.asarray(y), rows, weights, capture, dict(interventions or {})
    )
    return (images, captured) if (capture.probes or capture.features) else images


def sample(
    model: BigGAN,
    classes: Sequence[int],
    truncation: float = 1.0,
    seed: int = 0,
    per_class: int = 1,
    batch_size: int = 16,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` images of each class, latents from ``seed`` (reference convention).

    Returns ``(images [len(classes) * per_class, H, W, 3], labels)``; image ``i`` of class
    ``k`` uses latent row ``i``, the same for every class.
    """
    if int(per_class) != per_class or per_class < 1:
        raise JaxawareError(f"per_class must be a positive integer; got {per_class!r}")
    z = truncated_noise(per_class, model.config.z_dim, truncation, seed)
    labels = np.repeat(np.asarray(classes, np.int64), per_class)
    zs = np.tile(z, (len(classes), 1))
    starts = range(0, len(labels), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="sampling", unit="batch")
    out = []
    for s in starts:
        zb, yb = zs[s : s + batch_size], labels[s : s + batch_size]
        if len(yb) < batch_size:  # pad to one shape: one compilation
            pad = batch_size - len(yb)
            zb = np.concatenate([zb, np.zeros((pad, zb.shape[1]), zb.dtype)])
            yb = np.concatenate([yb, np.zeros(pad, yb.dtype)])
        out.append(np.asarray(generate(model, zb, yb, truncation))[: len(labels) - s])
    return np.concatenate(out), labels


def to_uint8(images) -> np.ndarray:
    """[-1, 1] floats to uint8, as the reference's ``convert_to_images`` (``(x+1)/2*256``)."""
    x = np.asarray(images, np.float32)
    return np.clip((x + 1) / 2 * 256, 0, 255).astype(np.uint8)
