"""Interventions: per-channel edits of a site's post-CCBN-ReLU feature map, as pure data.

An intervention is a dict ``{site_name: ChannelEdit}`` passed to the generator. Sites not
in the dict are untouched (and cost nothing). A :class:`ChannelEdit` holds per-channel
arrays, so it is a pytree: it can be jitted, and a batch of edits (leading axis) can be
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

from collections.abc import Mapping, Sequence

import jax.numpy as jnp
import numpy as np
from flax import struct

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
        mask = jnp.asarray(mask, jnp.float32)
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


def _set(base: jnp.ndarray, idx: np.ndarray, values) -> jnp.ndarray:
    return base.at[idx].set(jnp.asarray(values, jnp.float32))


def zero(channels, num_channels: int) -> ChannelEdit:
    """Sets the given channels to 0 (ablation)."""
    return multiply(channels, 0.0, num_channels)


def multiply(channels, factor, num_channels: int) -> ChannelEdit:
    """Multiplies the given channels by ``factor`` (a scalar or one value per channel)."""
    e = ChannelEdit.identity(num_channels)
    return e.replace(scale=_set(e.scale, _channels(channels, num_channels), factor))


def add(channels, constant, num_channels: int) -> ChannelEdit:
    """Adds ``constant`` to the given channels (a scalar or one value per channel)."""
    e = ChannelEdit.identity(num_channels)
    return e.replace(shift=_set(e.shift, _channels(channels, num_channels), constant))


def replace(channels, values, num_channels: int) -> ChannelEdit:
    """Replaces the given channels by ``values``: a constant, ``[C]``, ``[H, W, C]`` or
    ``[B, H, W, C]`` (e.g. another synthesis's features at this site, for channel mixing).
    Only the selected channels of ``values`` are used."""
    e = ChannelEdit.identity(num_channels)
    values = jnp.asarray(values, jnp.float32)
    if values.ndim and values.shape[-1] != num_channels:
        raise JaxawareError(
            f"replacement values must end in the site's {num_channels} channels; "
            f"got shape {tuple(values.shape)}"
        )
    return e.replace(alpha=_set(e.alpha, _channels(channels, num_channels), 1.0), value=values)


def check_interventions(
    interventions: Mapping[str, ChannelEdit] | None, site_channels: Mapping[str, int]
) -> None:
    """Raises if an intervention names an unknown site or has the wrong channel count."""
    if not interventions:
        return
    from jaxaware.sites import _closest

    names: Sequence[str] = list(site_channels)
    for name, edit in interventions.items():
        if name not in site_channels:
            raise JaxawareError(
                f"intervention names unknown site {name!r}; sites are {names[0]}..{names[-1]}; "
                f"closest: {_closest(name, names)}"
            )
        if not isinstance(edit, ChannelEdit):
            raise JaxawareError(
                f"intervention at {name} must be a ChannelEdit; got {type(edit).__name__}"
            )
        if edit.num_channels != site_channels[name]:
            raise JaxawareError(
                f"intervention at {name} has {edit.num_channels} channels; "
                f"the site has {site_channels[name]}"
            )
