"""Single-channel editing (He et al., Sec. 4.1, Fig. 6, 7 and 14).

One channel ``c`` of one CCBN site, after its ReLU (feature map ``h`` ``[B, H, W, C]``), is
changed for every pixel and the synthesis continues:

* ``add``:      ``h_c <- h_c + s * sigma_c``  (``units="std"``: ``sigma_c`` is the standard
  deviation of ``h_c`` over the unedited batch's pixels, so strengths compare across
  channels and layers; the site's mean ``sigma`` if the channel is off everywhere;
  ``units="raw"``: ``sigma_c = 1``);
* ``multiply``: ``h_c <- (1 + s) * h_c`` (``s = -1`` switches the channel off).

A strength ``s`` and ``-s`` are the two directions of Fig. 14; ``s = 0`` is the input,
shown in the middle. Which channels (the paper's two kinds, Sec. 3.1-3.2):

* class-oriented attributes (:func:`category_channels`): the channels of highest category
  awareness ``-E_z[t]`` of the class. Only channels whose gain ``gamma`` stayed positive on
  every latent of the awareness (``flip_fraction == 0``) are ranked: where ``gamma`` crosses
  0, ``t = -beta / gamma`` is unbounded, ``E_z[t]`` is dominated by a few latents (values in
  the thousands on the default model) and the paper's reading of ``t`` does not hold.
* latent-oriented attributes (:func:`shared_latent_channels`): the channels shared by all
  classes under the latent criterion of Tab. 1 (top-k latent awareness ``Var_z[t]`` per
  class, intersected over classes). For each channel we record the smallest per-class
  selection that keeps it in the intersection: its worst rank over the classes, as a share
  of its site's width (``1/C`` = top channel of its site for every class). Tab. 1 with ``k``
  keeps exactly the channels with ``worst_rank < k``; we take the ``n`` best, so the list is
  never empty, and report the share so a reader sees how shared they are.

Batched: every (channel, strength) pair is a row of a :class:`~jaxaware.interventions.FlatEdit`
over all CCBN sites, whose structure does not depend on the channel; the generator is
``vmap``-ed over the rows, so a sweep of any channels at any sites and any strengths is one
compiled program (per batch shape).

What an edit changes is measured on the toy world in
:mod:`~jaxaware.applications.edit_measures`.
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
    finite_numbers,
    one_class,
    to_uint8,
    zoom_for,
)
from jaxaware.awareness import select_site_names
from jaxaware.errors import JaxawareError
from jaxaware.generate import forward
from jaxaware.sites import resolve_site, site_table

__all__ = ["Channel", "EditSweep", "MODES", "UNITS", "DEFAULT_STRENGTHS", "category_channels",
           "shared_latent_channels", "parse_channels", "edit_sweep", "edit_figure"]

MODES = ("add", "multiply")
UNITS = ("std", "raw")
DEFAULT_STRENGTHS = (-8.0, -4.0, -2.0, 0.0, 2.0, 4.0, 8.0)
#: Images per vmapped call when a sweep is split (rows of edits x latents).
MAX_IMAGES = 64


@dataclasses.dataclass(frozen=True)
class Channel:
    """One channel to edit: ``site`` and the channel's index in it, its column on the flat
    CCBN axis (awareness columns), how it was chosen, and the score it was chosen by
    (category awareness; the worst per-class latent-rank share; NaN when given)."""

    site: str
    channel: int
    column: int
    group: str = "given"
    score: float = float("nan")

    @property
    def label(self) -> str:
        return f"{self.site}:{self.channel}"


def _site_columns(aw, sites):
    """``[(name, start, stop)]`` of the awareness's sites (all, or the named ones)."""
    names = list(aw.site_names)
    chosen = select_site_names(names, sites)
    if not chosen:
        raise JaxawareError("sites is empty; give at least one CCBN site")
    return [(n, *map(int, aw.site_offsets[names.index(n)])) for n in dict.fromkeys(chosen)]


def _channel_at(aw, column: int, group: str, score: float) -> Channel:
    i = int(np.searchsorted(aw.site_offsets[:, 0], column, side="right") - 1)
    return Channel(aw.site_names[i], int(column - aw.site_offsets[i, 0]), int(column), group,
                   float(score))


def category_channels(aw, cls: int, n: int = 3, sites=None) -> list[Channel]:
    """The ``n`` channels of highest category awareness ``-E_z[t]`` of class ``cls`` (an
    index with a row in ``aw``) among those with ``flip_fraction == 0`` (see the module
    docstring), over all CCBN sites or the named ones; highest first."""
    row = aw_rows(aw, [cls])[0]
    cols = np.concatenate([np.arange(a, b) for _, a, b in _site_columns(aw, sites)])
    cols = cols[np.asarray(aw.flip_fraction)[row, cols] == 0]
    n = check_count_in(n, len(cols), "number of channels")
    values = np.asarray(aw.category)[row, cols]
    order = np.argsort(-values, kind="stable")[:n]
    return [_channel_at(aw, cols[j], "category", values[j]) for j in order]


def shared_latent_channels(aw, n: int = 3, sites=None) -> list[Channel]:
    """The ``n`` channels most shared by every class of ``aw`` under Tab. 1's latent
    criterion: smallest worst-case (over classes) within-site rank of ``Var_z[t]``, as a
    share of the site's width (the ``score``); ties by the mean share."""
    worst, mean, cols = [], [], []
    latent = np.asarray(aw.latent, np.float64)
    for _, a, b in _site_columns(aw, sites):
        block = latent[:, a:b]
        ranks = np.argsort(np.argsort(-block, axis=1, kind="stable"), axis=1)  # 0 = highest
        worst.append((ranks.max(axis=0) + 1) / (b - a))
        mean.append((ranks.mean(axis=0) + 1) / (b - a))
        cols.append(np.arange(a, b))
    worst, mean, cols = map(np.concatenate, (worst, mean, cols))
    n = check_count_in(n, len(cols), "number of channels")
    order = np.lexsort((cols, mean, worst))[:n]
    return [_channel_at(aw, cols[j], "latent", worst[j]) for j in order]


def parse_channels(config, spec) -> list[Channel]:
    """Channels from ``'block3.bn1:5,L13:2'`` (site name or label, colon, channel) or a
    list of ``(site, channel)`` pairs."""
    if isinstance(spec, str):
        items = [s.strip() for s in spec.split(",") if s.strip()]
        pairs = []
        for item in items:
            site, sep, ch = item.rpartition(":")
            if not sep or not ch.strip().lstrip("-").isdigit():
                raise JaxawareError(f"channel {item!r} is not SITE:CHANNEL; give e.g. "
                                    "block3.bn1:5 or L13:5")
            pairs.append((site.strip(), int(ch)))
    else:
        pairs = list(spec)
    if not pairs:
        raise JaxawareError("no channels given; give SITE:CHANNEL, e.g. block3.bn1:5")
    out = []
    for site, ch in pairs:
        s = resolve_site(config, site, kinds=("ccbn",))
        ch = check_count_in(ch, s.channels - 1, f"channel of {s.name}", minimum=0)
        out.append(Channel(s.name, ch, s.offset + ch))
    return out


@dataclasses.dataclass(frozen=True)
class EditSweep:
    """``images[e, s, b]``: channel ``channels[e]`` edited with ``strengths[s]`` on latent
    ``b`` (class ``classes[b]``); ``strengths`` is sorted and holds 0 (the input, at
    ``input_index``); ``amounts[e, s]``: the constant added or the factor applied."""

    images: np.ndarray  # [E, S, B, H, W, 3] in [-1, 1]
    channels: tuple
    strengths: np.ndarray  # [S]
    amounts: np.ndarray  # [E, S]
    mode: str
    units: str
    classes: np.ndarray  # [B]
    latents: np.ndarray  # [B, z_dim]
    truncation: float

    @property
    def input_index(self) -> int:
        return int(np.flatnonzero(self.strengths == 0)[0])

    @property
    def inputs(self) -> np.ndarray:
        """The unedited images ``[B, H, W, 3]``."""
        return self.images[0, self.input_index]


@functools.lru_cache(maxsize=None)
def _sweep_fn(config):
    """``jit(vmap(forward))`` over a leading axis of :class:`FlatEdit` rows: one program
    for every channel of every site (``forward`` is this module's global, looked up when
    the program is traced: a test counts traces by wrapping it)."""

    def run(variables, z, y, blend, edits):
        return jax.vmap(lambda e: forward(config, variables, z, y, blend, e)[0])(edits)

    return jax.jit(run)


@functools.lru_cache(maxsize=None)
def _std_fn(config):
    """``jit``: the standard deviation over (batch, height, width) of every CCBN channel's
    post-ReLU features, ``[C_total]`` on the flat axis (one program for any channels)."""
    from jaxaware.models.layers import Capture

    names = [s.name for s in site_table(config)]

    def run(variables, z, y, blend):
        _, cap = forward(config, variables, z, y, blend,
                         capture=Capture(probes=False, features=True))
        return jnp.concatenate([jnp.std(cap[n]["features"], axis=(0, 1, 2)) for n in names])

    return jax.jit(run)


def _channel_std(model, z, y, channels, truncation) -> np.ndarray:
    """``sigma_c`` of each channel over the unedited batch (its site's mean if it is 0)."""
    from jaxaware.generate import statistic_weights

    cfg = model.config
    std = np.asarray(_std_fn(cfg)(model.variables, jnp.asarray(z), jnp.asarray(y),
                                  statistic_weights(cfg, truncation)), np.float64)
    sites = {s.name: s for s in site_table(cfg)}
    out = []
    for ch in channels:
        site = sites[ch.site]
        sd = std[ch.column]
        out.append(sd if sd > 0 else std[site.offset:site.offset + site.channels].mean())
    return np.asarray(out)


def edit_sweep(model, z, classes, channels, strengths=DEFAULT_STRENGTHS, *, mode: str = "add",
               units: str = "std", truncation: float = 1.0,
               max_images: int = MAX_IMAGES) -> EditSweep:
    """Every channel of ``channels`` edited alone at every strength, on every latent.

    Args:
      model: a :class:`~jaxaware.model.Model`.
      z: latents ``[B, z_dim]``; classes: int labels ``[B]`` (or one label for all).
      channels: :class:`Channel` objects, or a spec for :func:`parse_channels`.
      strengths: signed strengths (0 is added if missing; sorted); see the module docstring.
      mode: ``add`` or ``multiply``; units: ``std`` or ``raw`` (``add`` only).
      max_images: images per vmapped call (rows x latents); the rows are split into chunks
        of ``max_images // B`` rows (the last padded with identity edits), so the program
        compiles once per number of latents.
    """
    from jaxaware.classes import to_class_vectors
    from jaxaware.generate import check_latents, check_model, statistic_weights
    from jaxaware.interventions import flat_identity

    cfg = check_model(model).config
    if mode not in MODES:
        raise JaxawareError(f"unknown edit mode {mode!r}; use add or multiply")
    if units not in UNITS:
        raise JaxawareError(f"unknown strength units {units!r}; use std or raw")
    s = np.unique(np.append(finite_numbers(strengths, "strengths"), 0.0))
    chans = tuple(channels if channels and isinstance(channels[0], Channel)
                  else parse_channels(cfg, channels))
    z = np.asarray(check_latents(z, cfg))
    labels = np.asarray(classes)
    if labels.ndim == 0 or labels.dtype.kind not in "iu":  # one class (index or name) for all
        labels = np.full(len(z), one_class(model, classes))
    y = to_class_vectors(labels, cfg.num_classes)
    if y.shape[0] != len(z):
        raise JaxawareError(f"give one class per latent ({len(z)}); got {y.shape[0]}")
    max_images = check_int(max_images, "max_images")
    if mode == "add":
        sigma = _channel_std(model, z, y, chans, truncation) if units == "std" \
            else np.ones(len(chans))
        amounts = sigma[:, None] * s[None, :]
    else:
        amounts = np.broadcast_to(1.0 + s[None, :], (len(chans), len(s))).copy()

    base = flat_identity(cfg)
    width = base.num_channels
    rows = len(chans) * len(s)
    scale = np.ones((rows, width), np.float32)
    shift = np.zeros((rows, width), np.float32)
    cols = np.repeat([ch.column for ch in chans], len(s))
    target = scale if mode == "multiply" else shift
    target[np.arange(rows), cols] = amounts.reshape(-1)

    chunk = max(1, max_images // len(z))
    pad = (-rows) % chunk
    scale = np.concatenate([scale, np.ones((pad, width), np.float32)])
    shift = np.concatenate([shift, np.zeros((pad, width), np.float32)])
    zeros = jnp.zeros((chunk, width), jnp.float32)
    blend = statistic_weights(cfg, truncation)
    fn = _sweep_fn(cfg)
    out = []
    for lo in range(0, rows + pad, chunk):
        edits = base.replace(scale=jnp.asarray(scale[lo:lo + chunk]),
                             shift=jnp.asarray(shift[lo:lo + chunk]), alpha=zeros, value=zeros)
        out.append(np.asarray(fn(model.variables, jnp.asarray(z), jnp.asarray(y), blend, edits)))
    images = np.concatenate(out)[:rows]
    images = images.reshape((len(chans), len(s)) + images.shape[1:])
    return EditSweep(images, chans, s, amounts, mode, units, labels.astype(np.int64), z,
                     float(truncation))


# -- the figure -------------------------------------------------------------------------------


def _strength_label(sweep: EditSweep, s: float) -> str:
    if s == 0:
        return "input"
    if sweep.mode == "multiply":
        return f"x{1 + s:g}"
    return f"{s:+g}" + ("σ" if sweep.units == "std" else "")


def edit_figure(sweeps, path: str, model=None, max_latents: int = 3,
                title: str = "") -> str:
    """Fig. 14 as a grid: a row per (sweep, channel, latent), strengths from the most
    negative (left) to the most positive (right), the input framed in the middle. ``sweeps``:
    one :class:`EditSweep` or several with the same strengths."""
    from jaxaware.applications.figures import grid_figure

    sweeps = [sweeps] if isinstance(sweeps, EditSweep) else list(sweeps)
    first = sweeps[0]
    if any(not np.array_equal(sw.strengths, first.strengths) for sw in sweeps):
        raise JaxawareError("sweeps in one figure need the same strengths")
    rows, labels = [], []
    for sw in sweeps:
        pixels = to_uint8(sw.images)
        nb = min(max_latents, pixels.shape[2])
        for e, ch in enumerate(sw.channels):
            for b in range(nb):
                rows.append(list(pixels[e, :, b]))
                who = class_name(model, sw.classes[b]) if model is not None \
                    else str(sw.classes[b])
                labels.append(f"{who} | {ch.label} ({ch.group})" if b == 0 else "")
    unit = " σ_c (channel std)" if first.units == "std" and first.mode == "add" else ""
    return grid_figure(
        rows, path, row_labels=labels,
        col_labels=[_strength_label(first, s) for s in first.strengths],
        framed_col=first.input_index, zoom_factor=zoom_for(first.images.shape[3]),
        title=title or f"Single-channel editing ({first.mode}{unit}); input framed",
    )
