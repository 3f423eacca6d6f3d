"""Interventions: per-channel edits of a site's feature map, as pure data.

Sites are CCBN outputs after their ReLU (``block{i}.bn{k}``) and block outputs after the
residual sum (``block{i}.out``). Edits come in two forms:

* readable: a dict ``{site_name: ChannelEdit}``. Sites not in the dict are untouched (and
  cost nothing); the set of keys is part of the compiled structure.
* sweepable: a :class:`FlatEdit`, per-channel vectors over the flat channel axis of a fixed
  list of sites (by default every CCBN site, the columns of an awareness file). Its
  structure does not depend on which channels it touches, so ``vmap`` over "which channel
  is ablated" spans every site with one compilation (:func:`ablation_sweep`).

Both are pytrees: they can be jitted, and a batch of edits (leading axis) can be
``vmap``-ed. For the feature map ``h`` ``[B, H, W, C]`` of a site, the edited map is

    edited = (1 - alpha) * (h * scale + shift) + alpha * value   (channels with alpha > 0)
    edited = h * scale + shift                                     (the others)
    out    = h + mask * (edited - h)

with ``scale``, ``shift``, ``alpha`` per channel ``[C]``, ``value`` broadcastable to
``h`` (``[C]``, ``[H, W, C]`` or ``[B, H, W, C]``: a constant or another synthesis's
features, for channel mixing) and ``mask`` broadcastable to ``[B, H, W, 1]`` (1 where the
edit applies). The identity edit (scale 1, shift 0, alpha 0) gives ``out == h`` bit for
bit. This is the channel the paper edits (Sec. 4.1) and GAN Dissection's blend
``x <- (1 - a) x + a r`` (its Sec. 3.2) with ``a = alpha * mask``.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxaware.checks import check_int
from jaxaware.errors import JaxawareError


@struct.dataclass
class ChannelEdit:
    scale: jnp.ndarray  # [C]
    shift: jnp.ndarray  # [C]
    alpha: jnp.ndarray  # [C]
    value: jnp.ndarray  # broadcastable to [B, H, W, C]
    mask: jnp.ndarray  # broadcastable to [B, H, W, 1]

    @classmethod
    def identity(cls, num_channels: int) -> ChannelEdit:
        return cls(
            scale=jnp.ones(num_channels, jnp.float32),
            shift=jnp.zeros(num_channels, jnp.float32),
            alpha=jnp.zeros(num_channels, jnp.float32),
            value=jnp.zeros(num_channels, jnp.float32),
            mask=jnp.ones((1, 1, 1), jnp.float32),
        )

    @property
    def num_channels(self) -> int:
        return self.scale.shape[-1]

    def apply(self, h: jnp.ndarray) -> jnp.ndarray:
        """Applies the edit to a feature map ``[B, H, W, C]``."""
        if h.shape[-1] != self.num_channels:
            raise JaxawareError(
                f"edit has {self.num_channels} channels but the site has {h.shape[-1]}"
            )
        mask = self.mask
        if mask.ndim >= 2 and mask.shape[-1] != 1:
            mask = mask[..., None]  # [H, W] or [B, H, W] -> trailing channel axis
        if not _fits(self.value.shape, h.shape):
            raise JaxawareError(
                f"replacement values of shape {tuple(self.value.shape)} do not fit the feature "
                f"map {tuple(h.shape)} of the site; give [C], [H, W, C] or [B, H, W, C]"
            )
        if not _fits(mask.shape, h.shape[:-1] + (1,)):
            raise JaxawareError(
                f"mask of shape {tuple(self.mask.shape)} does not fit the feature map "
                f"{tuple(h.shape)} of the site; give [H, W] or [B, H, W]"
            )
        edited = h * self.scale + self.shift
        # where, not a product with alpha = 0: NaN/inf in unselected replacement channels
        # must not leak into the output.
        blended = (1 - self.alpha) * edited + self.alpha * self.value
        edited = jnp.where(self.alpha > 0, blended, edited)
        return h + mask * (edited - h)

    def with_mask(self, mask) -> ChannelEdit:
        """Restricts the edit to a spatial mask ``[H, W]`` or ``[B, H, W]`` (values in [0, 1])."""
        mask = jnp.asarray(_numbers(mask, "mask"))
        if mask.ndim not in (2, 3):
            raise JaxawareError(
                f"mask must have shape [H, W] or [B, H, W]; got {tuple(mask.shape)}"
            )
        return self.replace(mask=mask)


def _fits(shape, target) -> bool:
    """Whether an array of ``shape`` broadcasts to ``target`` without growing it."""
    try:
        return np.broadcast_shapes(tuple(shape), tuple(target)) == tuple(target)
    except ValueError:
        return False


def _channels(channels, num_channels: int) -> np.ndarray:
    idx = np.atleast_1d(np.asarray(channels))
    if idx.dtype == bool:
        if idx.shape != (num_channels,):
            raise JaxawareError(
                f"a channel mask must have {num_channels} entries; got {idx.shape[0]}"
            )
        return np.flatnonzero(idx)
    if not np.issubdtype(idx.dtype, np.integer):
        raise JaxawareError(f"channels must be integers or a boolean mask; got {idx.dtype}")
    bad = idx[(idx < 0) | (idx >= num_channels)]
    if bad.size:
        raise JaxawareError(
            f"channel {int(bad[0])} is out of range; this site has channels 0..{num_channels - 1}"
        )
    return idx


def _set(base: jnp.ndarray, idx: np.ndarray, values, what: str) -> jnp.ndarray:
    values = np.asarray(values)
    if values.dtype.kind not in "biuf":
        raise JaxawareError(f"{what} must be a number or one number per channel; got dtype "
                            f"{values.dtype}")
    if values.ndim > 1 or (values.ndim == 1 and values.shape[0] != len(idx)):
        raise JaxawareError(f"{what} must be a scalar or one value per selected channel "
                            f"({len(idx)}); got shape {list(values.shape)}")
    if not np.isfinite(values).all():
        raise JaxawareError(f"{what} must be finite; got {values.tolist()}")
    return base.at[idx].set(jnp.asarray(values, jnp.float32))


def _count(num_channels) -> int:
    return check_int(num_channels, "num_channels")


def _numbers(values, what: str):
    """``values`` as a float32 array, or a one-line error unless they are real numbers (JAX
    arrays, traced ones included, are converted as they are)."""
    if isinstance(values, jax.Array):
        return jnp.asarray(values, jnp.float32)
    try:
        array = np.asarray(values)
    except (TypeError, ValueError):  # ragged lists and such
        array = np.asarray(values, dtype=object)
    if array.dtype.kind not in "biuf":
        raise JaxawareError(f"{what} must be real numbers; got dtype {array.dtype}")
    return array.astype(np.float32)


def zero(channels, num_channels: int) -> ChannelEdit:
    """Sets the given channels to 0 (ablation)."""
    return multiply(channels, 0.0, num_channels)


def multiply(channels, factor, num_channels: int) -> ChannelEdit:
    """Multiplies the given channels by ``factor`` (a scalar or one value per channel)."""
    e = ChannelEdit.identity(_count(num_channels))
    idx = _channels(channels, e.num_channels)
    return e.replace(scale=_set(e.scale, idx, factor, "factor"))


def add(channels, constant, num_channels: int) -> ChannelEdit:
    """Adds ``constant`` to the given channels (a scalar or one value per channel)."""
    e = ChannelEdit.identity(_count(num_channels))
    idx = _channels(channels, e.num_channels)
    return e.replace(shift=_set(e.shift, idx, constant, "constant"))


def replace(channels, values, num_channels: int) -> ChannelEdit:
    """Replaces the given channels by ``values``: a constant, ``[C]``, ``[H, W, C]`` or
    ``[B, H, W, C]`` (e.g. another synthesis's features at this site, for channel mixing).
    Only the selected channels of ``values`` are used."""
    e = ChannelEdit.identity(_count(num_channels))
    values = jnp.asarray(_numbers(values, "replacement values"))
    if values.ndim and values.shape[-1] != num_channels:
        raise JaxawareError(
            f"replacement values must end in the site's {num_channels} channels; "
            f"got shape {tuple(values.shape)}"
        )
    idx = _channels(channels, e.num_channels)
    return e.replace(alpha=_set(e.alpha, idx, 1.0, "alpha"), value=values)


# -- the sweepable form ------------------------------------------------------------------


@struct.dataclass
class FlatEdit:
    """Per-channel edits of a fixed list of sites, as vectors over their flat channel axis.

    ``scale``, ``shift``, ``alpha`` and ``value`` are ``[C]`` with ``C`` the summed width of
    ``layout`` (``((site, width), ...)``, static); site ``s`` gets the
    :class:`ChannelEdit` made of its slice (``value`` is a per-channel constant; spatial
    masks and feature-map replacements need the dict form). To sweep, give the vectors a
    leading axis and ``vmap`` over it (:func:`ablation_sweep`): the layout, hence the
    compiled structure, is the same for every channel of every site.
    """

    scale: jnp.ndarray
    shift: jnp.ndarray
    alpha: jnp.ndarray
    value: jnp.ndarray
    layout: tuple = struct.field(pytree_node=False, default=())

    @property
    def num_channels(self) -> int:
        return sum(width for _, width in self.layout)

    def to_dict(self) -> dict[str, ChannelEdit]:
        """The equivalent ``{site: ChannelEdit}`` (traceable: static slices)."""
        out, start = {}, 0
        for name, width in self.layout:
            sl = slice(start, start + width)
            out[name] = ChannelEdit(
                scale=self.scale[..., sl], shift=self.shift[..., sl], alpha=self.alpha[..., sl],
                value=self.value[..., sl], mask=jnp.ones((1, 1, 1), jnp.float32),
            )
            start += width
        return out


def flat_layout(config, sites=None) -> tuple[tuple[str, int], ...]:
    """``((site, width), ...)`` of ``sites`` (names or labels; default: every CCBN site, in
    the order of the awareness file's columns)."""
    from jaxaware.sites import resolve_site, site_table

    if sites is None:
        return tuple((s.name, s.channels) for s in site_table(config))
    if isinstance(sites, str):
        sites = [sites]
    chosen = [resolve_site(config, name) for name in sites]
    names = [s.name for s in chosen]
    if len(set(names)) != len(names):
        raise JaxawareError(f"sites of a FlatEdit must be distinct; got {list(sites)}")
    return tuple((s.name, s.channels) for s in chosen)


def flat_identity(config, sites=None) -> FlatEdit:
    """The edit that changes nothing, over ``sites`` (default: every CCBN site)."""
    layout = flat_layout(config, sites)
    c = sum(w for _, w in layout)
    ones, zeros = jnp.ones(c, jnp.float32), jnp.zeros(c, jnp.float32)
    return FlatEdit(scale=ones, shift=zeros, alpha=zeros, value=zeros, layout=layout)


def flat_zero(config, columns, sites=None) -> FlatEdit:
    """Zeroes the given columns of the flat axis (e.g. ``aw.site('block3.bn1').start + 5``)."""
    e = flat_identity(config, sites)
    idx = _channels(columns, e.num_channels)
    return e.replace(scale=_set(e.scale, idx, 0.0, "factor"))


def flat_multiply(config, columns, factor, sites=None) -> FlatEdit:
    """Multiplies the given columns of the flat axis by ``factor``."""
    e = flat_identity(config, sites)
    idx = _channels(columns, e.num_channels)
    return e.replace(scale=_set(e.scale, idx, factor, "factor"))


def flat_add(config, columns, constant, sites=None) -> FlatEdit:
    """Adds ``constant`` to the given columns of the flat axis."""
    e = flat_identity(config, sites)
    idx = _channels(columns, e.num_channels)
    return e.replace(shift=_set(e.shift, idx, constant, "constant"))


def ablation_sweep(config, columns=None, sites=None) -> FlatEdit:
    """A batch of edits, row ``j`` zeroing column ``columns[j]`` of the flat axis (default:
    every column). ``vmap`` the generator over it: one compilation for every site."""
    e = flat_identity(config, sites)
    cols = np.arange(e.num_channels) if columns is None else _channels(columns, e.num_channels)
    n = len(cols)
    scale = np.ones((n, e.num_channels), np.float32)
    scale[np.arange(n), cols] = 0.0
    tile = lambda v: jnp.broadcast_to(v, (n, e.num_channels))  # noqa: E731
    return e.replace(scale=jnp.asarray(scale), shift=tile(e.shift), alpha=tile(e.alpha),
                     value=tile(e.value))


def flat_from_dict(config, edits: Mapping[str, ChannelEdit], sites=None) -> FlatEdit:
    """The :class:`FlatEdit` equal to a dict of per-channel edits (no masks, constant
    values); sites missing from the dict get the identity."""
    flat = flat_identity(config, sites)
    check_interventions(edits, config)
    parts = {k: [] for k in ("scale", "shift", "alpha", "value")}
    for name, width in flat.layout:
        edit = edits.get(name) or ChannelEdit.identity(width)
        if np.size(edit.mask) != 1 or float(np.asarray(edit.mask).ravel()[0]) != 1.0:
            raise JaxawareError(f"edit at {name} has a spatial mask; a FlatEdit holds "
                                "per-channel edits only (use the dict form for masks)")
        value = jnp.broadcast_to(jnp.asarray(edit.value, jnp.float32), (width,)) \
            if np.ndim(edit.value) <= 1 else None
        if value is None:
            raise JaxawareError(f"edit at {name} replaces with a feature map; a FlatEdit holds "
                                "per-channel constants only (use the dict form)")
        for k, v in (("scale", edit.scale), ("shift", edit.shift), ("alpha", edit.alpha),
                     ("value", value)):
            parts[k].append(jnp.asarray(v, jnp.float32))
    missing = sorted(set(edits) - {name for name, _ in flat.layout})
    if missing:
        raise JaxawareError(f"edit at {missing[0]} is outside the FlatEdit's sites")
    return flat.replace(**{k: jnp.concatenate(v) for k, v in parts.items()})


# -- checks and normal form --------------------------------------------------------------


def site_edits(edits) -> Mapping[str, ChannelEdit]:
    """The dict form of any accepted edits (None, a dict, a :class:`FlatEdit`)."""
    if edits is None:
        return {}
    if isinstance(edits, FlatEdit):
        return edits.to_dict()
    return edits


def check_interventions(edits, config) -> None:
    """Raises if edits name an unknown site, are not edits, or have the wrong widths.

    Accepts None, a dict ``{site: ChannelEdit}`` (CCBN or block-output sites) or a
    :class:`FlatEdit` with a layout of this model's sites.
    """
    if edits is None:
        return
    from jaxaware.sites import all_sites, closest

    sites = {s.name: s for s in all_sites(config)}
    if isinstance(edits, FlatEdit):
        for name, width in edits.layout:
            if name not in sites or sites[name].channels != width:
                raise JaxawareError(f"FlatEdit site {name} (width {width}) is not a site of this "
                                    "model; build it with this model's config")
        for k in ("scale", "shift", "alpha", "value"):
            shape = tuple(np.shape(getattr(edits, k)))
            if shape != (edits.num_channels,):
                raise JaxawareError(
                    f"FlatEdit {k} has shape {list(shape)}; it must be [{edits.num_channels}] "
                    "(one value per channel of its sites; vmap over a leading batch axis)")
        return
    if not isinstance(edits, Mapping):
        raise JaxawareError(f"interventions must be a dict {{site: ChannelEdit}} or a FlatEdit; "
                            f"got {type(edits).__name__}")
    names = [s.name for s in all_sites(config)]
    ccbn = [s.name for s in sites.values() if s.kind == "ccbn"]
    blocks = [s.name for s in sites.values() if s.kind == "block"]
    for name, edit in edits.items():
        if name not in sites:
            raise JaxawareError(
                f"intervention names unknown site {name!r}; sites are {ccbn[0]}..{ccbn[-1]} "
                f"and {blocks[0]}..{blocks[-1]}; closest: {closest(name, names)}"
            )
        if not isinstance(edit, ChannelEdit):
            raise JaxawareError(
                f"intervention at {name} must be a ChannelEdit; got {type(edit).__name__}"
            )
        for k in ("scale", "shift", "alpha"):
            shape = tuple(np.shape(getattr(edit, k)))
            if len(shape) != 1:
                raise JaxawareError(f"intervention at {name}: {k} must be one value per channel "
                                    f"[C]; got shape {list(shape)}")
        if edit.num_channels != sites[name].channels:
            raise JaxawareError(
                f"intervention at {name} has {edit.num_channels} channels; "
                f"the site has {sites[name].channels}"
            )
