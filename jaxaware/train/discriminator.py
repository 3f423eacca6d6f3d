"""A BigGAN-style projection discriminator in Flax (NHWC).

Residual blocks (Miyato & Koyama 2018; Brock et al. 2019, the non-deep BigGAN D)::

    h = conv3x3(relu(x)) -> conv3x3(relu(h)) -> avg_pool 2x2 (if downsampling)
    skip = conv1x1(x) (when the width changes or it downsamples) -> avg_pool
    (the first block has no leading ReLU and pools its skip before the 1x1 conv)

then ReLU, a sum over H and W, and ``out = linear(h) + <embed(y), h>`` (the projection
term; ``y`` integer labels or class vectors). Spectral normalisation is applied from
outside (:mod:`jaxaware.train.spectral`): the parameters here are plain.

Two options for a world whose classes share class-independent factors (position, scale,
background) that a generator must spread as widely as the data does:

* ``coords``: two input channels holding the pixel's x and y in [-1, 1] (CoordConv, Liu et
  al. 2018). Convolutions and the final sum over positions are nearly blind to *where* an
  object is; with coordinates D can tell a generator that always centres its objects from
  the data.
* ``minibatch_std``: before the last block, one channel holding the mean over features and
  positions of the standard deviation over groups of ``4`` samples (ProGAN's minibatch
  standard deviation, Karras et al. 2018), so D sees how alike a batch's samples are.
  Group ``j`` holds samples ``j, j + B/4, j + 2B/4, j + 3B/4``; a trainer that draws the
  four samples of each group from one class (:func:`class_group_layout`) makes the
  statistic measure the spread *within* a class, which the spread between classes would
  otherwise drown.
* ``pack``: D judges ``pack`` samples at once, concatenated on channels (PacGAN, Lin et al.
  2018), and returns one logit per pack. A generator that gives every sample of a class the
  same size or place makes packs whose members look alike, which real packs of
  independently drawn images do not; D learns that difference itself instead of reading a
  fixed statistic. Pack ``p`` holds samples ``p, p + B/pack, ...`` (:func:`pack_samples`),
  and its label is sample ``p``'s, so its members must share a class: with
  :func:`class_group_layout` and ``pack`` dividing its group size they do.

A *layout* discriminator (:func:`layout_dconfig`, :func:`layout_view`) is a second, small
D that sees the images average-pooled to a few pixels a side, where an object is a blob of
some size at some place on some background and its details are gone: the judgement it
can give the generator is about those class-independent factors alone.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

_init = nn.initializers.orthogonal()

#: Samples per minibatch-standard-deviation group.
MINIBATCH_GROUP = 4


@dataclasses.dataclass(frozen=True)
class DConfig:
    """Widths and downsampling of the blocks; ``attention`` inserts none (kept simple)."""

    widths: tuple[int, ...]
    downsample: tuple[bool, ...]
    num_classes: int
    coords: bool = False
    minibatch_std: bool = False
    pack: int = 1

    def __post_init__(self):
        if len(self.widths) != len(self.downsample):
            raise ValueError("widths and downsample must have the same length")
        if self.pack < 1:
            raise ValueError(f"pack must be >= 1; got {self.pack}")


def default_dconfig(resolution: int, ch: int, num_classes: int, coords: bool = False,
                    minibatch_std: bool = False, pack: int = 1) -> DConfig:
    """32x32 -> 4 blocks of widths (ch, 2ch, 4ch, 4ch), downsampling (yes, yes, no, no),
    ending at 8x8 (BigGAN's 32 px D keeps 4ch in every block; narrowing the 32x32 and
    16x16 blocks makes D about 3x cheaper on a CPU, where its full-resolution convs
    dominate a step); 64x64 -> BigGAN's 5 blocks (ch, 2ch, 4ch, 8ch, 16ch), all
    downsampling but the last."""
    if resolution == 32:
        return DConfig((ch, 2 * ch, 4 * ch, 4 * ch), (True, True, False, False), num_classes,
                       coords, minibatch_std, pack)
    if resolution == 64:
        return DConfig(tuple(m * ch for m in (1, 2, 4, 8, 16)),
                       (True, True, True, True, False), num_classes, coords, minibatch_std,
                       pack)
    raise ValueError(f"no default discriminator for resolution {resolution}; use 32 or 64")


def layout_dconfig(ch: int, num_classes: int, coords: bool = False,
                   pack: int = 1) -> DConfig:
    """The layout discriminator: three blocks of widths (ch, 2ch, 2ch), the second halving
    the pooled image (8 px -> 4 px at the default view), packs of ``pack`` as in the main D."""
    return DConfig((ch, 2 * ch, 2 * ch), (False, True, False), num_classes, coords, False,
                   pack)


def layout_view(images, size: int):
    """``[B, R, R, C] -> [B, size, size, C]``: the mean of each ``R/size`` square (``size``
    must divide ``R``)."""
    b, r, r2, c = images.shape
    if r != r2 or r % size:
        raise ValueError(f"a layout view of {size} px needs square images whose side it "
                         f"divides; got {r}x{r2}")
    f = r // size
    return images.reshape(b, size, f, size, f, c).mean(axis=(2, 4))


def _pool(x):
    return nn.avg_pool(x, (2, 2), strides=(2, 2))


class DBlock(nn.Module):
    out: int
    downsample: bool
    preactivation: bool

    @nn.compact
    def __call__(self, x):
        h = jax.nn.relu(x) if self.preactivation else x
        h = nn.Conv(self.out, (3, 3), padding="SAME", kernel_init=_init, name="conv1")(h)
        h = nn.Conv(self.out, (3, 3), padding="SAME", kernel_init=_init,
                    name="conv2")(jax.nn.relu(h))
        if self.downsample:
            h = _pool(h)
        skip = x
        if self.downsample or x.shape[-1] != self.out:
            conv_sc = nn.Conv(self.out, (1, 1), kernel_init=_init, name="conv_sc")
            if self.preactivation:
                skip = conv_sc(skip)
                skip = _pool(skip) if self.downsample else skip
            else:
                skip = _pool(skip) if self.downsample else skip
                skip = conv_sc(skip)
        return h + skip


def class_group_layout(group_classes, group: int = MINIBATCH_GROUP):
    """Per-sample classes ``[..., group * G]`` for classes ``[..., G]``, one per group, laid
    out so that :func:`minibatch_std`'s group ``j`` (samples ``j + i * G``) is all class ``j``.
    Works on NumPy and JAX arrays alike."""
    xp = jnp if isinstance(group_classes, jax.Array) else np
    reps = (1,) * (group_classes.ndim - 1) + (group,)
    return xp.tile(group_classes, reps)


def minibatch_std(h, group: int = MINIBATCH_GROUP):
    """Appends one channel: the mean over features and positions of the standard deviation
    over each group of ``group`` samples (the batch must divide into groups)."""
    b, hh, ww, c = h.shape
    g = min(group, b)
    y = h.reshape(g, b // g, hh, ww, c)
    std = jnp.sqrt(jnp.var(y, axis=0) + 1e-8)  # [b/g, H, W, C]
    stat = jnp.mean(std, axis=(1, 2, 3))  # [b/g]
    stat = jnp.tile(stat, g)[:, None, None, None]  # sample i of group j gets stat j
    return jnp.concatenate([h, jnp.broadcast_to(stat, (b, hh, ww, 1))], axis=-1)


def pack_samples(x, pack: int):
    """``[B, H, W, C] -> [B / pack, H, W, pack * C]``: pack ``p`` is samples ``p, p + B/pack,
    p + 2B/pack, ...`` concatenated on channels in that order (the batch must divide)."""
    b, hh, ww, c = x.shape
    if b % pack:
        raise ValueError(f"a batch of {b} does not divide into packs of {pack}")
    y = x.reshape(pack, b // pack, hh, ww, c)
    return jnp.moveaxis(y, 0, 3).reshape(b // pack, hh, ww, pack * c)


class Discriminator(nn.Module):
    config: DConfig

    @nn.compact
    def __call__(self, x, y):
        """``x`` [B, H, W, 3] in [-1, 1]; ``y`` int labels [B] or class vectors [B, K].
        Returns the logits [B / pack] (one per pack, labelled by its first sample)."""
        cfg = self.config
        h = x
        if cfg.pack > 1:
            h = pack_samples(x, cfg.pack)
            y = y[: h.shape[0]]
        if cfg.coords:
            b, hh, ww, _ = h.shape
            ys, xs = jnp.meshgrid(jnp.linspace(-1, 1, hh), jnp.linspace(-1, 1, ww), indexing="ij")
            grid = jnp.broadcast_to(jnp.stack([xs, ys], -1), (b, hh, ww, 2)).astype(h.dtype)
            h = jnp.concatenate([h, grid], axis=-1)
        last = len(cfg.widths) - 1
        for i, (w, down) in enumerate(zip(cfg.widths, cfg.downsample)):
            if cfg.minibatch_std and i == last:
                h = minibatch_std(h)
            h = DBlock(w, down, preactivation=i > 0, name=f"block{i}")(h)
        h = jnp.sum(jax.nn.relu(h), axis=(1, 2))
        out = nn.Dense(1, kernel_init=_init, name="linear")(h)[:, 0]
        embed = self.param("embedding", _init, (cfg.num_classes, cfg.widths[-1]))
        if y.ndim == 1:
            e = embed[y]
        else:
            e = y @ embed
        return out + jnp.sum(e * h, axis=-1)
