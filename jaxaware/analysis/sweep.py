"""Channel-classifier response (He et al., Sec. 3.1 and App. A): how much zeroing a channel
(or a group of channels) lowers a classifier's score of the target class.

For class ``k``, latents ``z_1..z_M`` and an edit ``e`` that zeroes a set of channels, the
response is the mean drop over the ``M`` latent pairs (the image before and after the edit)

    drop_e = (1 / M) sum_i [ s_k(G(z_i, k)) - s_k(G_e(z_i, k)) ]

with ``s_k`` the classifier's softmax probability of ``k`` (or its logit). Positive: the
channels help the classifier see the class.

Two ways to compute it:

* :func:`exact_response` generates every edited image. The generator is split at the
  block ``b`` that holds the edited channels: blocks ``0..b-1`` run once per latent batch,
  and only blocks ``b..`` run per edit, ``vmap``-ed over a batch of
  :class:`~jaxaware.interventions.FlatEdit` rows (one compilation per start block). The
  classifier runs in the same compiled function.
* :func:`first_order_response` linearises the score in the edit. An edit multiplies a
  site's post-ReLU map ``h`` by ``scale``; zeroing channel ``c`` moves ``scale_c`` from 1
  to 0, so to first order

      s(scale_c = 0) - s(1) = -ds/dscale_c = -sum_{x,y} h_c(x, y) ds/dh_c(x, y),

  the attribution-patching approximation, and ``drop_c ~ ds/dscale_c``. One forward and
  one backward pass per latent batch give it for every channel of every CCBN site; a group
  gets the sum of its channels' values. It is exact where the score is affine in the
  edited channels.
"""

from __future__ import annotations

import dataclasses
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxaware.checks import check_int
from jaxaware.analysis._common import check_latent_pairs, class_list, latents
from jaxaware.analysis.classifier import as_classifier, check_score, target_scores
from jaxaware.errors import JaxawareError
from jaxaware.generate import check_model, forward, statistic_weights
from jaxaware.interventions import FlatEdit, flat_layout
from jaxaware.parallel import map_rows
from jaxaware.sites import site_table, total_channels

__all__ = ["Responses", "exact_response", "first_order_response", "site_columns"]


@dataclasses.dataclass(frozen=True)
class Responses:
    """Responses of ``K`` classes to ``E`` edits (each zeroes ``g`` columns).

    ``drop`` ``[K, E]``: mean score drop over the latent pairs; ``sem`` ``[K, E]``: its
    standard error (exact only; None for first order); ``base`` ``[K]``: the mean score of
    the unedited images; ``columns`` ``[K, E, g]``: the zeroed columns of the flat channel
    axis (every CCBN site, as in awareness files).
    """

    drop: np.ndarray
    sem: np.ndarray | None
    base: np.ndarray
    columns: np.ndarray
    classes: np.ndarray
    score: str
    num_latents: int
    method: str  # "exact" or "first-order"
    seconds: float
    images: int  # images generated (and classified)


def site_columns(config, site, order=None, group: int = 1) -> np.ndarray:
    """Columns ``[C // group, group]`` of a site on the flat axis: consecutive groups of
    ``group`` channels in ``order`` (site-local channel indices; default 0..C-1)."""
    from jaxaware.analysis._common import ccbn_sites

    (s,) = (site,) if hasattr(site, "offset") else ccbn_sites(config, [site])
    group = check_int(group, "group")
    if s.channels % group:
        raise JaxawareError(f"group size {group} does not divide the {s.channels} channels of "
                            f"{s.name}; use a divisor of {s.channels}")
    idx = np.arange(s.channels) if order is None else np.asarray(order, np.int64)
    return (s.offset + idx).reshape(-1, group)


def _check_columns(config, columns, k: int) -> np.ndarray:
    cols = np.asarray(columns)
    if cols.dtype.kind not in "iu" or cols.ndim not in (2, 3) or cols.size == 0:
        raise JaxawareError("columns must be integers [E, g] or [K, E, g] (the flat-axis "
                            f"columns each edit zeroes); got shape {list(cols.shape)}")
    if cols.ndim == 2:
        cols = np.broadcast_to(cols, (k,) + cols.shape)
    if cols.shape[0] != k:
        raise JaxawareError(f"columns [K, E, g] have {cols.shape[0]} rows for {k} classes")
    c = total_channels(config)
    if cols.min() < 0 or cols.max() >= c:
        raise JaxawareError(f"column {int(cols.max() if cols.max() >= c else cols.min())} is out "
                            f"of range; the flat channel axis has columns 0..{c - 1}")
    return cols.astype(np.int64)


def _zero_edit(scale, layout) -> FlatEdit:
    zeros = jnp.zeros_like(scale)
    return FlatEdit(scale=scale, shift=zeros, alpha=zeros, value=zeros, layout=layout)


@functools.lru_cache(maxsize=16)
def _prefix_fn(config, stop: int):
    """Blocks ``0..stop-1``: the input of block ``stop``."""
    return jax.jit(lambda v, z, y, blend: forward(config, v, z, y, blend, stop=stop)[0])


@functools.lru_cache(maxsize=64)
def _suffix_fn(config, start: int, clf, score: str, sites: tuple):
    """Blocks ``start..``, the classifier and the target score, vmapped over edit rows of a
    :class:`FlatEdit` over ``sites`` only (an identity edit elsewhere would cost as much as
    the convolutions of a narrow generator)."""
    layout = flat_layout(config, list(sites))

    def one(scale, v, h, z, y, blend):
        images, _ = forward(config, v, z, y, blend, _zero_edit(scale, layout), start=start,
                            h=h)
        return target_scores(clf.logits(images), y, score)

    return jax.jit(jax.vmap(one, in_axes=(0, None, None, None, None, None)))


def _images_per_call(config) -> int:
    """Default images per vmapped call: 256 at 32x32, fewer for larger images (the same
    activation memory)."""
    return max(1, 256 * 32 * 32 // config.resolution ** 2)


def _batches(z: np.ndarray, batch: int):
    """``(z_batch, n_real)``: ``z`` in batches of exactly ``batch`` rows (the last padded)."""
    for lo in range(0, len(z), batch):
        zb = z[lo:lo + batch]
        n = len(zb)
        if n < batch:
            zb = np.concatenate([zb, np.repeat(zb[-1:], batch - n, axis=0)])
        yield jnp.asarray(zb), n


def _progress(items, enabled: bool, desc: str):
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="class")


def exact_response(model, classifier, classes, columns, *, num_latents: int = 100,
                   truncation: float = 1.0, seed: int = 1, score: str = "prob",
                   batch_size: int = 16, edit_batch: int | None = None,
                   progress: bool = False, devices=None) -> Responses:
    """Score drops of every edit by generating the edited images (see the module doc).

    Args:
      model: a :class:`~jaxaware.model.Model`.
      classifier: see :func:`~jaxaware.analysis.classifier.as_classifier` (None: the toy
        world's classifier, for a world model).
      classes: class indices or names; each is scored on its own class.
      columns: the flat-axis columns each edit zeroes, ``[E, g]`` for every class or
        ``[K, E, g]`` per class (:func:`site_columns` builds them for a site).
      num_latents: ``M`` latent pairs (the same latents for every class and edit).
      seed: the latents' seed (the family's sampler at ``truncation``).
      batch_size: latents per batch; edit_batch: edits per ``vmap`` call (the last call
        is padded with unedited rows; fewer edits: the next power of two). Default:
        ``256 * (32 / resolution)^2`` images per call.
      devices: the edits are sharded over these (:func:`jaxaware.parallel.map_rows`;
        None: every device JAX sees); results are the same on any number of devices.
    """
    t0 = time.perf_counter()
    cfg = check_model(model).config
    classes = class_list(model, classes)
    clf = as_classifier(classifier, model)
    score = check_score(score)
    cols = _check_columns(cfg, columns, len(classes))
    batch = min(check_int(batch_size, "batch_size"), check_latent_pairs(num_latents))
    e_batch = check_int(edit_batch, "edit_batch") if edit_batch else \
        max(1, _images_per_call(cfg) // batch)
    z = latents(model, num_latents, truncation, seed)
    blend = statistic_weights(cfg, truncation)
    c_total = total_channels(cfg)
    sites = site_table(cfg)
    block_of, site_of = np.empty(c_total, np.int64), np.empty(c_total, np.int64)
    for i, s in enumerate(sites):
        block_of[s.offset:s.offset + s.channels] = s.block
        site_of[s.offset:s.offset + s.channels] = i
    n_edits, m = cols.shape[1], len(z)
    drop_sum = np.zeros((len(classes), n_edits))
    drop_sq = np.zeros((len(classes), n_edits))
    base_sum = np.zeros(len(classes))
    images = 0
    for ki in _progress(range(len(classes)), progress, "exact response"):
        start_of = block_of[cols[ki]].min(axis=1)  # each edit runs from its first block
        y = jnp.full((batch,), classes[ki], jnp.int32)
        base_done = False
        for b in np.unique(start_of):
            which = np.flatnonzero(start_of == b)
            rows = np.concatenate([[-1], which])  # row 0: the unedited image
            real = len(rows)
            # Calls of a fixed shape; small sweeps round up to a power of two instead (a few
            # shapes at most, little padding).
            chunk = min(e_batch, 1 << (real - 1).bit_length())
            rows = np.concatenate([rows, np.full(-real % chunk, -1)])
            touched = np.unique(site_of[cols[ki, which]])  # the sites these edits reach
            local = np.full(c_total, -1, np.int64)  # flat column -> column of the layout
            width = 0
            for i in touched:
                s = sites[i]
                local[s.offset:s.offset + s.channels] = width + np.arange(s.channels)
                width += s.channels
            suffix = _suffix_fn(cfg, int(b), clf, score, tuple(sites[i].name for i in touched))
            scales = np.ones((len(rows), width), np.float32)
            for j, r in enumerate(rows):
                if r >= 0:
                    scales[j, local[cols[ki, r]]] = 0.0
            for zb, n in _batches(z, batch):
                h = _prefix_fn(cfg, int(b))(model.variables, zb, y, blend) if b > 0 else None
                # Edit rows sharded over the devices, `chunk` per device per step; every
                # device runs the 1-device program, so the scores are the same bits.
                scores = map_rows(suffix, scales, model.variables, h, zb, y, blend,
                                  block=chunk, shrink=False, devices=devices)[:real, :n]
                images += scores.size
                base = scores[0]
                if not base_done:
                    base_sum[ki] += base.sum()
                d = base[None, :] - scores[1:1 + len(which)]
                drop_sum[ki, which] += d.sum(axis=1)
                drop_sq[ki, which] += (d * d).sum(axis=1)
            base_done = True
    mean = drop_sum / m
    var = np.maximum(drop_sq / m - mean * mean, 0.0) * (m / max(m - 1, 1))
    return Responses(drop=mean, sem=np.sqrt(var / m), base=base_sum / m, columns=cols,
                     classes=np.asarray(classes), score=score, num_latents=m, method="exact",
                     seconds=time.perf_counter() - t0, images=images)


@functools.lru_cache(maxsize=16)
def _grad_fn(config, clf, score: str):
    """``d/dscale`` of the summed target scores of a batch (padding rows weighted 0)."""
    layout = flat_layout(config)

    def total(scale, v, z, y, blend, weight):
        images, _ = forward(config, v, z, y, blend, _zero_edit(scale, layout))
        s = target_scores(clf.logits(images), y, score) * weight
        return s.sum(), s.sum()

    return jax.jit(jax.grad(total, has_aux=True))


@functools.lru_cache(maxsize=16)
def _per_batch_grad(grad):
    """``grad`` over one latent batch as a :func:`map_rows` function (rows: a batch)."""

    def fn(rows, ones, v, y, blend):
        zb, w = rows
        g, s = grad(ones, v, zb[0], y, blend, w[0])
        return g[None], s[None]

    return fn


def first_order_response(model, classifier, classes, columns=None, *, num_latents: int = 100,
                         truncation: float = 1.0, seed: int = 1, score: str = "prob",
                         batch_size: int = 16, progress: bool = False,
                         devices=None) -> Responses:
    """First-order score drops (see the module doc): ``drop_c ~ mean_i ds_i/dscale_c``.

    ``columns`` as in :func:`exact_response` (a group gets the sum over its columns);
    None: every channel of every CCBN site, ``columns[c] = [c]`` (``drop`` ``[K, C_total]``).
    The classifier must be JAX-traceable (gradients flow through it).
    """
    t0 = time.perf_counter()
    cfg = check_model(model).config
    classes = class_list(model, classes)
    clf = as_classifier(classifier, model)
    if not clf.traceable:
        raise JaxawareError(f"the first-order estimate needs a classifier JAX can "
                            f"differentiate; {clf.name} is not (use the exact sweep)")
    score = check_score(score)
    c_total = total_channels(cfg)
    if columns is None:
        columns = np.arange(c_total)[:, None]
    cols = _check_columns(cfg, columns, len(classes))
    batch = min(check_int(batch_size, "batch_size"), check_int(num_latents, "num_latents"))
    z = latents(model, num_latents, truncation, seed)
    blend = statistic_weights(cfg, truncation)
    grad = _grad_fn(cfg, clf, score)
    ones = jnp.ones(c_total, jnp.float32)
    drops = np.zeros((len(classes), cols.shape[1]))
    base = np.zeros(len(classes))
    zs, ws = [], []
    for zb, n in _batches(z, batch):
        zs.append(np.asarray(zb))
        ws.append((np.arange(batch) < n).astype(np.float32))
    rows = (np.stack(zs), np.stack(ws))  # [batches, batch, z_dim], [batches, batch]
    for ki in _progress(range(len(classes)), progress, "first-order response"):
        y = jnp.full((batch,), classes[ki], jnp.int32)
        # Latent batches sharded over the devices (one per device per step); the host sums
        # them in batch order, as a 1-device run does.
        g_all, s_all = map_rows(_per_batch_grad(grad), rows, ones, model.variables, y, blend,
                                block=1, shrink=False, devices=devices)
        g_sum = jnp.zeros(c_total)
        s_sum = 0.0
        for g, s in zip(g_all, s_all):
            g_sum, s_sum = g_sum + g, s_sum + s
        per_channel = np.asarray(g_sum, np.float64) / len(z)
        drops[ki] = per_channel[cols[ki]].sum(axis=1)
        base[ki] = float(s_sum) / len(z)
    return Responses(drop=drops, sem=None, base=base, columns=cols, classes=np.asarray(classes),
                     score=score, num_latents=len(z), method="first-order",
                     seconds=time.perf_counter() - t0, images=len(classes) * len(z))
