"""Category hybridization (He et al., Sec. 4.2, Fig. 8 and 15): channel mixing, and style
mixing as the baseline.

Two classes, an input class ``a`` and a reference class ``b``, and one latent ``z``:

* **Channel mixing** at a site ``S`` (or sites ``S_1 < ... < S_m``) of block ``i``: the
  input synthesis (class ``a``, latent ``z``) runs up to ``S``; there the ``k`` channels of
  highest category awareness of ``b`` at ``S`` are replaced by the *reference synthesis's*
  features at ``S`` (class ``b``, same ``z``), and every block after block ``i`` is
  conditioned on ``b``'s embedding ("to activate the transplanted channels", Sec. 4.2). With
  several sites every one transplants its own ``k`` channels, and the blocks after the last
  site's block take ``b``. The class switches at a block boundary because a block reads one
  class vector (:mod:`jaxaware.models.family`): CCBN sites after ``S`` in block ``i`` keep
  ``a``.
* **Style mixing** from block ``j`` (the paper's baseline, layer-wise class embeddings as
  in StyleGAN's style mixing): blocks ``< j`` are conditioned on ``a``, blocks ``>= j`` on
  ``b``; nothing is transplanted. For BigGAN-deep, ``gen_z`` reads block 0's class.
  Channel mixing at block ``i`` with ``k = 0`` is style mixing from ``j = i + 1``.

Sites are CCBN sites (``block{i}.bn{k}``, where awareness is defined) or block outputs
(``block{i}.out``). A block output's channel ``c`` is what the next block's first CCBN
normalises as its channel ``c`` (BigGAN-deep's ``bn0``, BigGAN's ``bn1``; an attention layer
in between adds a channel-aligned residual), so its channels are ranked by that CCBN's
awareness; the last block's output feeds no CCBN and only takes ``k = all``. As in
:mod:`~jaxaware.applications.editing`, channels whose gain ``gamma`` changed sign on some
latent (``flip_fraction > 0``) are ranked after all the others.

Checks with known answers: ``b == a`` returns the input synthesis; transplanting every
channel of a block output (``k = all``) reproduces the reference synthesis exactly (all that
follows is conditioned on ``b`` and fed ``b``'s features).

Scores on the toy world (:func:`hybrid_scores`), from the reference classifier's softmax
``p`` of a hybrid: ``mass = p_a + p_b``; ``reference_share = q = p_b / (p_a + p_b)``;
``evenness = 2 min(q, 1 - q)`` (1: an even split, 0: all on one class); ``plausible`` when
``max(p_a, p_b) >= 0.5``, i.e. the classifier's top class, with at least half the
probability, is one of the two.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxaware.checks import check_int
from jaxaware.applications._common import (
    aw_rows,
    check_count_in,
    class_name,
    one_class,
    softmax,
    to_uint8,
    zoom_for,
)
from jaxaware.errors import JaxawareError
from jaxaware.sites import resolve_site, site_table

#: Latents per compiled call; every call has this shape (the last one is padded), so the
#: programs compile once whatever the number of latents.
BATCH = 16

__all__ = ["BATCH", "Hybrids", "ranking_site", "transplant_channels", "channel_mixing",
           "style_mixing", "hybridize", "hybrid_scores", "summarize_hybrids", "hybrid_figure"]


def ranking_site(config, site):
    """The CCBN site whose awareness ranks ``site``'s channels: the site itself, or for a
    block output the first CCBN of the next block (None after the last block)."""
    s = site if hasattr(site, "kind") else resolve_site(config, site)
    if s.kind == "ccbn":
        return s
    nxt = [c for c in site_table(config) if c.block == s.block + 1]
    if not nxt:
        return None
    if nxt[0].channels != s.channels:  # pragma: no cover - every family's blocks chain
        raise JaxawareError(f"{nxt[0].name} has {nxt[0].channels} channels but {s.name} has "
                            f"{s.channels}; cannot rank {s.name} by awareness")
    return nxt[0]


def _k(k, site) -> int:
    if isinstance(k, str) and k == "all":
        return site.channels
    return check_count_in(k, site.channels, f"k at {site.name}", minimum=0)


def transplant_channels(aw, config, reference_class: int, site, k) -> np.ndarray:
    """Site-local indices of the ``k`` channels of ``site`` with the highest category
    awareness of ``reference_class`` (``k`` in 0..C or ``'all'``), best first."""
    s = site if hasattr(site, "kind") else resolve_site(config, site)
    k = _k(k, s)
    if k == s.channels:
        return np.arange(s.channels)
    if k == 0:
        return np.zeros(0, np.int64)
    ranked = ranking_site(config, s)
    if ranked is None:
        raise JaxawareError(f"{s.name} feeds no CCBN, so its channels have no awareness "
                            f"ranking; use k = all ({s.channels}) or another site")
    row = aw_rows(aw, [reference_class])[0]
    cols = slice(ranked.offset, ranked.offset + s.channels)
    values = np.asarray(aw.category, np.float64)[row, cols]
    flipped = np.asarray(aw.flip_fraction)[row, cols] > 0
    order = np.lexsort((np.arange(s.channels), -values, flipped))
    return order[:k]


def _sites(config, sites) -> list:
    if isinstance(sites, str):
        sites = [x.strip() for x in sites.split(",") if x.strip()]
    chosen = [resolve_site(config, x) for x in sites]
    if not chosen:
        raise JaxawareError("sites is empty; give a site such as block2.out or block2.bn0")
    names = [s.name for s in chosen]
    if len(set(names)) != len(names):
        raise JaxawareError(f"sites must be distinct; got {', '.join(names)}")
    return chosen


def _per_block(config, a, b, switch: int) -> np.ndarray:
    """Class vectors ``[B, n_blocks, K]``: ``a`` for blocks ``< switch``, ``b`` from it on."""
    eye = np.eye(config.num_classes, dtype=np.float32)
    blocks = np.arange(config.n_blocks)[None, :, None]
    return np.where(blocks < switch, eye[a][:, None], eye[b][:, None])


def _labels(model, classes, n: int, what: str) -> np.ndarray:
    arr = np.asarray(classes)
    if arr.ndim == 0 or arr.dtype.kind not in "iu":
        return np.full(n, one_class(model, classes, what), np.int64)
    if arr.shape != (n,):
        raise JaxawareError(f"give one {what} per latent ({n}); got shape {list(arr.shape)}")
    bad = arr[(arr < 0) | (arr >= model.config.num_classes)]
    if bad.size:
        raise JaxawareError(f"{what} {int(bad[0])} is out of range; this model has classes "
                            f"0..{model.config.num_classes - 1}")
    return arr.astype(np.int64)


def _chunked(fn, arrays, chunk: int):
    """``fn`` over the leading axis of ``arrays`` in equal chunks (the last padded by
    repeating its last row): one compiled shape. Outputs are concatenated (pytrees too)."""
    n = len(arrays[0])
    outs = []
    for lo in range(0, n, chunk):
        part = [x[lo:lo + chunk] for x in arrays]
        m = len(part[0])
        if m < chunk:
            part = [np.concatenate([x, np.repeat(x[-1:], chunk - m, axis=0)]) for x in part]
        outs.append(jax.tree_util.tree_map(lambda v, m=m: np.asarray(v)[:m], fn(*part)))
    return jax.tree_util.tree_map(lambda *v: np.concatenate(v), *outs)


@functools.lru_cache(maxsize=None)
def _capture_fn(config, names: tuple):
    """``jit``: images and the features at ``names`` (CCBN or block-output sites)."""
    from jaxaware.generate import forward
    from jaxaware.models.layers import Capture

    capture = Capture(probes=False, features=True, sites=names)

    def run(variables, z, y, blend):
        images, cap = forward(config, variables, z, y, blend, capture=capture)
        return images, {n: cap[n]["features"] for n in names}

    return jax.jit(run)


@functools.lru_cache(maxsize=None)
def _mix_fn(config, names: tuple):
    """``jit(vmap)`` over latents of a forward pass with per-latent transplants:
    ``alphas[site]`` ``[B, C]`` (1 = take the value), ``values[site]`` ``[B, H, W, C]``."""
    from jaxaware.generate import forward
    from jaxaware.interventions import ChannelEdit

    def one(variables, z, y, blend, alphas, values):
        edits = {}
        for n in names:
            c = alphas[n].shape[-1]
            edits[n] = ChannelEdit(scale=jnp.ones(c), shift=jnp.zeros(c), alpha=alphas[n],
                                   value=values[n][None], mask=jnp.ones((1, 1, 1)))
        return forward(config, variables, z[None], y[None], blend, edits)[0][0]

    return jax.jit(jax.vmap(one, in_axes=(None, 0, 0, None, 0, 0)))


def channel_mixing(model, z, input_classes, reference_classes, sites, k, *, awareness=None,
                   truncation: float = 1.0, batch: int = BATCH) -> tuple[np.ndarray, dict]:
    """Channel-mixing hybrids ``[B, H, W, 3]`` and the transplanted channels.

    Args:
      z: latents ``[B, z_dim]``; input_classes, reference_classes: one class (index or
        name) or int labels ``[B]`` each.
      sites: a site or sites (names, labels, or a comma-separated string).
      k: channels per site, 0..C or ``'all'``.
      awareness: an :class:`~jaxaware.awareness.Awareness` with rows for the reference
        classes (computed with 1000 latents at ``truncation``, seed 0, if not given and
        needed).
      batch: latents per compiled call (every call padded to it: one compilation).

    Returns:
      ``(images, {site: [B, k] channel indices})``.
    """
    from jaxaware.applications._common import awareness_for
    from jaxaware.generate import check_latents, check_model, statistic_weights

    cfg = check_model(model).config
    z = np.asarray(check_latents(z, cfg))
    a = _labels(model, input_classes, len(z), "input class")
    b = _labels(model, reference_classes, len(z), "reference class")
    chosen = sorted(_sites(cfg, sites), key=lambda s: (s.block, s.kind == "block", s.index))
    ks = {s.name: _k(k, s) for s in chosen}
    needs_aw = any(ks[s.name] not in (0, s.channels) for s in chosen)
    aw = awareness_for(model, np.unique(b), awareness, truncation) if needs_aw else None
    channels = {}
    for s in chosen:
        per_class = {int(c): transplant_channels(aw, cfg, int(c), s, ks[s.name])
                     for c in np.unique(b)}
        channels[s.name] = np.stack([per_class[int(c)] for c in b])
    names = tuple(s.name for s in chosen)
    blend = statistic_weights(cfg, truncation)
    batch = check_int(batch, "batch")
    eye = np.eye(cfg.num_classes, dtype=np.float32)
    capture = _capture_fn(cfg, names)
    _, values = _chunked(lambda zz, yy: capture(model.variables, zz, yy, blend), [z, eye[b]],
                         batch)
    alphas = {}
    for s in chosen:
        alpha = np.zeros((len(z), s.channels), np.float32)
        np.put_along_axis(alpha, channels[s.name], 1.0, axis=1)
        alphas[s.name] = alpha
    y = _per_block(cfg, a, b, chosen[-1].block + 1)
    mix = _mix_fn(cfg, names)
    order = list(names)

    def run(zz, yy, *rest):
        al = dict(zip(order, rest[:len(order)]))
        va = dict(zip(order, rest[len(order):]))
        return mix(model.variables, zz, yy, blend, al, va)

    images = _chunked(run, [z, y] + [alphas[n] for n in order] + [values[n] for n in order],
                      batch)
    return images, channels


def style_mixing(model, z, input_classes, reference_classes, from_block: int, *,
                 truncation: float = 1.0, batch: int = BATCH) -> np.ndarray:
    """Style-mixing images ``[B, H, W, 3]``: blocks ``< from_block`` conditioned on the input
    class, blocks ``>= from_block`` on the reference class (0..n_blocks)."""
    from jaxaware.generate import check_latents, check_model, jitted_forward, statistic_weights

    cfg = check_model(model).config
    z = np.asarray(check_latents(z, cfg))
    a = _labels(model, input_classes, len(z), "input class")
    b = _labels(model, reference_classes, len(z), "reference class")
    j = check_count_in(from_block, cfg.n_blocks, "style-mixing block", minimum=0)
    blend = statistic_weights(cfg, truncation)
    fwd = jitted_forward(cfg)
    batch = check_int(batch, "batch")
    return _chunked(lambda zz, yy: fwd(model.variables, zz, yy, blend)[0],
                    [z, _per_block(cfg, a, b, j)], batch)


@dataclasses.dataclass(frozen=True)
class Hybrids:
    """Fig. 8's columns for latents ``z``: ``input``, ``reference``, ``style`` (style mixing
    from block ``style_from``) and ``channel[k]`` (channel mixing at ``sites`` with ``k``
    channels), each ``[B, H, W, 3]``; ``channels[k][site]``: the transplanted channels."""

    input: np.ndarray
    reference: np.ndarray
    style: np.ndarray
    channel: dict
    channels: dict
    input_class: np.ndarray
    reference_class: np.ndarray
    sites: tuple
    style_from: int
    latents: np.ndarray
    truncation: float


def hybridize(model, input_class, reference_class, z, sites, ks=("half",), *,
              style_from: int | None = None, awareness=None, truncation: float = 1.0,
              batch: int = BATCH) -> Hybrids:
    """Input, reference, style mixing and channel mixing (one per ``k`` in ``ks``; ``'half'``
    is half of the narrowest site's channels, ``'all'`` all of them) for latents ``z``.
    ``style_from`` defaults to the block after the last site's block, channel mixing's own
    switch point."""
    from jaxaware.generate import check_latents, check_model

    cfg = check_model(model).config
    z = np.asarray(check_latents(z, cfg))
    a = _labels(model, input_class, len(z), "input class")
    b = _labels(model, reference_class, len(z), "reference class")
    chosen = _sites(cfg, sites)
    switch = max(s.block for s in chosen) + 1
    j = switch if style_from is None else style_from
    narrow = min(s.channels for s in chosen)
    ks = [narrow // 2 if k == "half" else k for k in ks]
    if not ks:
        raise JaxawareError("give at least one k")
    for k in ks:  # before any work
        for s in chosen:
            _k(k, s)
    check_count_in(j, cfg.n_blocks, "style-mixing block", minimum=0)
    kw = dict(truncation=truncation, batch=batch)
    inputs = style_mixing(model, z, a, b, cfg.n_blocks, **kw)
    reference = style_mixing(model, z, a, b, 0, **kw)
    style = style_mixing(model, z, a, b, j, **kw)
    channel, channels = {}, {}
    for k in ks:
        channel[k], channels[k] = channel_mixing(model, z, a, b, [s.name for s in chosen], k,
                                                 awareness=awareness, **kw)
    return Hybrids(inputs, reference, style, channel, channels, a, b,
                   tuple(s.name for s in chosen), j, z, float(truncation))


# -- scores -----------------------------------------------------------------------------------


def hybrid_scores(probs, input_classes, reference_classes) -> dict:
    """Per image, from class probabilities ``probs`` ``[N, K]``: ``p_input``,
    ``p_reference``, ``mass``, ``reference_share``, ``evenness``, ``plausible`` (see the
    module docstring); arrays ``[N]``."""
    p = np.asarray(probs, np.float64)
    a = np.asarray(input_classes)
    b = np.asarray(reference_classes)
    pa, pb = p[np.arange(len(p)), a], p[np.arange(len(p)), b]
    mass = pa + pb
    q = np.where(mass > 0, pb / np.where(mass > 0, mass, 1), 0.5)
    return {"p_input": pa, "p_reference": pb, "mass": mass, "reference_share": q,
            "evenness": 2 * np.minimum(q, 1 - q), "plausible": np.maximum(pa, pb) >= 0.5}


def summarize_hybrids(scores: dict) -> dict:
    """Means of :func:`hybrid_scores` (``plausible``: the share of plausible hybrids)."""
    return {k: float(np.mean(v)) for k, v in scores.items()}


def classify(classifier, images, batch: int = 256) -> np.ndarray:
    """Softmax probabilities ``[N, K]`` of the classifier's logits."""
    out = [classifier.logits(images[lo:lo + batch]) for lo in range(0, len(images), batch)]
    return softmax(np.concatenate([np.asarray(o) for o in out]))


# -- the figure -------------------------------------------------------------------------------


def hybrid_figure(h: Hybrids, path: str, model=None, max_rows: int = 8, title: str = "") -> str:
    """Fig. 8 as a grid: a row per latent; input, reference, style mixing, channel mixing
    (one column per k)."""
    from jaxaware.applications.figures import grid_figure

    ks = list(h.channel)
    cols = [h.input, h.reference, h.style] + [h.channel[k] for k in ks]
    pix = [to_uint8(c) for c in cols]
    n = min(max_rows, len(h.input))
    rows = [[p[i] for p in pix] for i in range(n)]

    def name(k):
        return class_name(model, k) if model is not None else str(int(k))

    labels = [f"{name(h.input_class[i])} + {name(h.reference_class[i])}" for i in range(n)]
    col_labels = ["input", "reference", f"style mix (block {h.style_from}+)"] + \
        [f"k={k}" for k in ks]
    groups = [(3, 2 + len(ks), f"channel mixing at {', '.join(h.sites)}")]
    return grid_figure(rows, path, row_labels=labels, col_labels=col_labels, groups=groups,
                       zoom_factor=zoom_for(pix[0].shape[1]),
                       title=title or "Category hybridization: input + reference")
