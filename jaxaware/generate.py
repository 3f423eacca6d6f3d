"""Generating: one pure function for JAX users, and the host wrappers most users call.

:func:`forward` is a pure function of ``(config, variables, z, classes, blend, edits,
capture)``: it can sit inside a user's ``jit``, ``vmap``, ``grad`` (e.g. gradients with
respect to class vectors or edit strengths) or sharded computation. :func:`generate` and
:func:`sample` are thin host wrappers over it: they check the inputs, turn the truncation
into statistic-row weights on the host (so changing truncation, classes or latents never
recompiles) and call one cached ``jit`` of :func:`forward` per config.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxaware import parallel
from jaxaware.checks import check_fits_in_memory, check_int, check_seed
from jaxaware.classes import to_class_vectors
from jaxaware.errors import JaxawareError
from jaxaware.interventions import check_interventions
from jaxaware.models import family_of
from jaxaware.models.layers import NOTHING, Capture
from jaxaware.sites import resolve_site

__all__ = ["Capture", "NOTHING", "forward", "jitted_forward", "generate", "sample",
           "check_latents", "check_model", "sample_bytes", "statistic_weights", "to_uint8"]


def forward(config, variables, z, classes, blend, edits=None, capture: Capture = NOTHING, *,
            start: int = 0, stop: int | None = None, h=None):
    """Images ``[B, H, W, 3]`` in [-1, 1] and captured values: a pure function.

    Args:
      config: the model's config (hashable; close over it or pass it as a static argument).
      variables: ``{'params', 'stats'}`` (a :class:`~jaxaware.model.Model`'s ``variables``).
      z: latents ``[B, z_dim]``.
      classes: integer labels ``[B]`` (one-hot encoded here), class vectors
        ``[B, num_classes]``, or per-block class vectors ``[B, n_blocks, num_classes]``.
      blend: ``(rows int32 [2], weights float32 [2])``, from :func:`statistic_weights`.
      edits: None, ``{site: ChannelEdit}`` or a :class:`~jaxaware.interventions.FlatEdit`.
      capture: a static :class:`~jaxaware.models.layers.Capture`.
      start, stop, h: split the pass at block boundaries (static ints): ``stop=b`` returns
        the input of block ``b`` instead of images; ``start=b`` with that ``h`` runs the
        rest. Running the shared prefix once and only the suffix per edit is how a sweep
        of edits at block ``b`` and later avoids recomputing blocks before ``b``.

    Returns:
      ``(images, captured)``; ``captured`` is ``{site: {...}}`` (empty with ``NOTHING``);
      with ``stop``, ``(h, captured)``.
    """
    family = family_of(config)
    y = jnp.asarray(classes)
    if jnp.issubdtype(y.dtype, jnp.integer):
        y = jax.nn.one_hot(y, config.num_classes, dtype=jnp.float32)
    if y.ndim not in (2, 3) or y.shape[-1] != config.num_classes or (
        y.ndim == 3 and y.shape[1] != config.n_blocks
    ):
        raise JaxawareError(
            f"classes must be labels [B], class vectors [B, {config.num_classes}] or per-block "
            f"class vectors [B, {config.n_blocks}, {config.num_classes}]; got {list(y.shape)}"
        )
    if jnp.ndim(z) != 2 or jnp.shape(z)[1] != config.z_dim or jnp.shape(z)[0] != y.shape[0]:
        raise JaxawareError(f"latents must have shape [{y.shape[0]}, {config.z_dim}]; got "
                            f"{list(jnp.shape(z))}")
    n = config.n_blocks
    if not (0 <= start < n and (stop is None or start < stop <= n)) or (start > 0) != (
        h is not None
    ):
        raise JaxawareError(
            f"start={start}, stop={stop}: need 0 <= start < stop <= {n} blocks, and h (the "
            "input of block start) exactly when start > 0"
        )
    module = family.generator(config)
    return module.apply(variables, z, y, blend, capture, edits, start, stop, h)


@functools.lru_cache(maxsize=None)
def jitted_forward(config):
    """``jax.jit`` of :func:`forward` with ``config`` bound (``capture`` static), cached per
    config: what :func:`generate` calls (it compiles again only for new input shapes, edit
    structures or ``capture``)."""
    return jax.jit(functools.partial(forward, config), static_argnames=("capture",))


def statistic_weights(config, truncation, correct_lerp: bool = False):
    """``(rows, weights)`` of the statistic rows a truncation blends, for :func:`forward`."""
    rows, weights = family_of(config).stats_blend(config, truncation, correct_lerp)
    return jnp.asarray(rows), jnp.asarray(weights)


def check_latents(z, config, batch: int | None = None) -> jnp.ndarray:
    """Latents as float32 ``[B, z_dim]``; raises unless that shape, real and finite."""
    try:
        array = np.asarray(z)
    except Exception:  # ragged lists and such
        array = np.asarray(z, dtype=object)
    shape = tuple(array.shape)
    if len(shape) != 2 or shape[1] != config.z_dim or (batch is not None and shape[0] != batch):
        want = f"[{batch if batch is not None else 'B'}, {config.z_dim}]"
        raise JaxawareError(f"latents must have shape {want}; got {list(shape)}")
    if shape[0] == 0:
        raise JaxawareError(f"latents and classes are empty (shape {list(shape)}); give at "
                            "least one latent and one class")
    if array.dtype.kind not in "biuf":
        raise JaxawareError(f"latents must be real numbers; got dtype {array.dtype}")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise JaxawareError("latents contain NaN or infinity; give finite values")
    return jnp.asarray(array)


def generate(
    model,
    z,
    classes,
    truncation: float,
    *,
    capture: Capture = NOTHING,
    interventions=None,
    correct_lerp: bool = False,
):
    """Images ``[B, H, W, 3]`` in [-1, 1] for latents ``z`` ``[B, z_dim]`` and ``classes``.

    ``classes``: int labels ``[B]``, class vectors ``[B, num_classes]`` (soft labels and
    mixtures) or per-block class vectors ``[B, n_blocks, num_classes]`` (style mixing).
    ``truncation`` selects batch-norm statistics (draw ``z`` with the family's sampler at
    the same truncation: :func:`sample` does). With an active ``capture``, returns
    ``(images, {site: {'t', 'gamma', 'beta', 'features'}})``. ``interventions``: a dict
    ``{site: ChannelEdit}`` (CCBN or block-output sites) or a ``FlatEdit``.
    """
    cfg = check_model(model).config
    if not isinstance(capture, Capture):
        raise JaxawareError(f"capture must be a Capture, e.g. Capture(features=True); got "
                            f"{capture!r}")
    y = to_class_vectors(classes, cfg.num_classes, cfg.n_blocks)
    z = check_latents(z, cfg, y.shape[0])
    check_interventions(interventions, cfg)
    if capture.sites is not None:
        # Fail on a typo instead of silently capturing nothing; labels (L13) become names.
        names = tuple(resolve_site(cfg, name).name for name in capture.sites)
        capture = dataclasses.replace(capture, sites=names)
    blend = statistic_weights(cfg, truncation, correct_lerp)
    edits = dict(interventions) if isinstance(interventions, dict) else interventions
    images, captured = jitted_forward(cfg)(model.variables, z, jnp.asarray(y), blend, edits,
                                    capture=capture)
    return (images, captured) if capture.active else images


def sample(
    model,
    classes,
    truncation: float = 1.0,
    seed: int = 0,
    per_class: int = 1,
    batch_size: int = 16,
    progress: bool = False,
    devices=None,
) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` images of each class, latents from ``seed`` (the family's convention).

    Returns ``(images [len(classes) * per_class, H, W, 3], labels)``; image ``i`` of class
    ``k`` uses latent row ``i``, the same for every class.

    The images are sharded over ``devices`` (None: every device JAX sees; an int: the first
    ``N`` local devices; a 1-D ``Mesh``), ``batch_size`` images per device per step (the
    last step padded). Every device runs the same ``[batch_size]`` program as a 1-device
    run, so the images are bit-identical on any number of devices and processes (at
    another batch size they may differ in the last bits: convolutions sum in another order;
    so may, on some CPUs, a process started with another number of host devices).
    """
    check_model(model)
    per_class = check_int(per_class, "per_class")
    batch_size = check_int(batch_size, "batch_size")
    seed = check_seed(seed, allow_none=True)
    devices = parallel.check_devices(devices)
    try:  # a string is a spec such as '207,"golden retriever"', not a list of letters
        spec = classes if isinstance(classes, (str, int, np.integer)) else list(classes)
    except TypeError:
        raise JaxawareError(f"classes must be class indices or names (a list, an int, or a "
                            f"string such as '207,\"golden retriever\"'); got "
                            f"{classes!r}") from None
    labels = np.asarray(model.resolve_classes(spec), np.int64)
    if labels.size == 0:
        raise JaxawareError("classes is empty; give at least one class")
    check_fits_in_memory(sample_bytes(model.config, labels.size * per_class),
                         f"sampling {labels.size * per_class} images of {_size(model.config)}")
    z = model.family.sample_latents(per_class, model.config, truncation, seed)
    if seed is None:  # fresh entropy: every process must use process 0's draw
        z = parallel.same_on_all_processes(z)
    labels = np.repeat(labels, per_class)
    zs = np.tile(z, (len(labels) // per_class, 1)).astype(np.float32)
    blend = statistic_weights(model.config, truncation)
    bar = None
    if progress and parallel.is_main_process():
        from tqdm.auto import tqdm

        bar = tqdm(total=len(labels), desc="sampling", unit="image")
    try:
        images = parallel.map_rows(_forward_rows(model.config), (zs, labels.astype(np.int32)),
                                   model.variables, blend, block=batch_size, shrink=False,
                                   devices=devices, progress=bar.update if bar else None)
    finally:
        if bar is not None:
            bar.close()
    return images, labels


@functools.lru_cache(maxsize=None)
def _forward_rows(config):
    """``rows (z [B, z_dim], labels int [B]), variables, blend -> images``: :func:`forward`
    in the form :func:`jaxaware.parallel.map_rows` maps (one function object per config,
    so it compiles once per shape)."""

    def images(rows, variables, blend):
        z, labels = rows
        return forward(config, variables, z, labels, blend)[0]

    return images


def check_model(model):
    """``model``, or a one-line error unless it is a :class:`~jaxaware.model.Model` (or
    anything with a model config and ``variables``)."""
    if not hasattr(model, "config") or not hasattr(model, "variables"):
        raise JaxawareError(f"model must be a jaxaware Model (from jaxaware.load or "
                            f"init_random); got {type(model).__name__}")
    family_of(model.config)  # a config of a known family
    return model


def _size(config) -> str:
    return f"{config.resolution}x{config.resolution}"


def sample_bytes(config, num_images: int) -> int:
    """Bytes :func:`sample` holds for ``num_images`` images: the float32 images twice (the
    batches and their concatenation) and the latents."""
    return 2 * num_images * config.resolution ** 2 * 3 * 4 + num_images * config.z_dim * 16


def to_uint8(images) -> np.ndarray:
    """[-1, 1] floats to uint8, as the reference's ``convert_to_images`` (``(x+1)/2*256``)."""
    x = np.asarray(images, np.float32)
    return np.clip((x + 1) / 2 * 256, 0, 255).astype(np.uint8)
