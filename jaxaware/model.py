"""The BigGAN-deep generator in Flax, with CCBN probes and interventions as plain data.

Forward math follows ``pytorch_pretrained_biggan`` in eval mode (see
``shared/reference/biggan-checkpoints.md`` part A.3); the vocabulary (NHWC, blocks,
sites, condition vector, truncation) is in :mod:`jaxaware.config`.

Parameter tree (collection ``params``; the statistics live in collection ``stats``)::

    embedding                      [num_classes, z_dim]        class vector -> e
    gen_z/kernel, gen_z/bias       [2 z_dim, 16 * 16 ch], [..]  c -> 4x4 map (HWC order)
    block{i}/bn{k}/scale|offset    [2 z_dim, C]                 gamma = 1 + c @ scale
    block{i}/conv0|conv3/kernel    [C_in, C_out]                1x1 convs as matrices
    block{i}/conv1|conv2/kernel    [3, 3, C_in, C_out]
    block{i}/conv{k}/bias          [C_out]
    attention/theta|phi|g|o/kernel [C_in, C_out]                1x1, no bias
    attention/gamma                []
    bn/scale, bn/bias              [ch]                         final, unconditional BN
    to_rgb/kernel, to_rgb/bias     [3, 3, ch, 3], [3]           reference keeps ch outputs
    stats: block{i}/bn{k}/mean|var, bn/mean|var                 [n_stats, C]

Every weight is already spectrally normalised (``W / sigma`` folded in at conversion).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxaware.config import BigGANConfig
from jaxaware.interventions import ChannelEdit
from jaxaware.sites import block_widths

_init = nn.initializers.normal(0.02)


@dataclasses.dataclass(frozen=True)
class Capture:
    """What the generator returns besides the image; hashable, so a static jit argument.

    ``probes``: per site ``t = -beta / gamma``, ``gamma`` and ``beta`` ``[B, C]``.
    ``features``: per site the post-CCBN-ReLU feature map ``[B, H, W, C]`` (after any
    intervention at that site). ``sites``: a tuple of site names to keep; None keeps all.
    """

    probes: bool = True
    features: bool = False
    sites: tuple[str, ...] | None = None

    def wants(self, site: str) -> bool:
        return (self.probes or self.features) and (self.sites is None or site in self.sites)


NOTHING = Capture(probes=False)


def _blend(table: jnp.ndarray, blend) -> jnp.ndarray:
    rows, weights = blend
    return table[rows[0]] * weights[0] + table[rows[1]] * weights[1]


class CCBN(nn.Module):
    """Class-conditional batch norm: ``(x - mu_t) / sqrt(var_t + eps) * gamma + beta``.

    ``gamma = 1 + c @ scale`` and ``beta = c @ offset`` (no bias). The channel probe of the
    paper (Sec. 2.2, Eq. 3) is ``t = -beta / gamma``: with ``gamma > 0`` the following
    ReLU keeps exactly the normalised inputs above ``t``.

    With ``train=True`` (training only) ``mu_t``/``var_t`` are replaced by the batch mean
    and (biased) variance over N, H, W, the stored statistics are neither read nor
    created, and the batch mean and unbiased variance are sown into collection
    ``batch_stats`` (``mean``/``var``, paths as in ``stats``) for standing statistics.
    """

    channels: int
    n_stats: int
    eps: float
    train: bool = False

    @nn.compact
    def __call__(self, x, c, blend):
        cond_dim = c.shape[-1]
        scale = self.param("scale", _init, (cond_dim, self.channels))
        offset = self.param("offset", _init, (cond_dim, self.channels))
        gamma = 1 + c @ scale
        beta = c @ offset
        mu, sigma2 = _moments(self, x, blend)
        out = (x - mu) / jnp.sqrt(sigma2 + self.eps) * gamma[:, None, None, :]
        return out + beta[:, None, None, :], gamma, beta


def _moments(module, x, blend):
    """The statistics a batch norm normalises with: the truncation-blended stored rows
    (collection ``stats``), or in training the batch's own."""
    if module.train:
        return _batch_moments(module, x)
    shape = (module.n_stats, module.channels)
    mean = module.variable("stats", "mean", jnp.zeros, shape)
    var = module.variable("stats", "var", jnp.ones, shape)
    return _blend(mean.value, blend), _blend(var.value, blend)


def _batch_moments(module: nn.Module, x):
    """Batch mean and biased variance over N, H, W (training-mode batch norm); sows the
    mean and the unbiased variance into ``batch_stats`` for standing statistics."""
    mu = jnp.mean(x, axis=(0, 1, 2))
    sigma2 = jnp.mean(jnp.square(x - mu), axis=(0, 1, 2))
    n = x.shape[0] * x.shape[1] * x.shape[2]
    module.sow("batch_stats", "mean", mu)
    module.sow("batch_stats", "var", sigma2 * (n / max(n - 1, 1)))
    return mu, sigma2


def _upsample(x):
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


class GenBlock(nn.Module):
    """Pre-activated residual block: four CCBN+ReLU sites ``bn0..bn3``, bottleneck convs,
    nearest x2 upsampling after ``bn1``; the skip keeps the first half of the channels
    when the block halves its width."""

    config: BigGANConfig
    index: int
    train: bool = False

    @nn.compact
    def __call__(self, x, c, blend, capture: Capture, interventions):
        cfg = self.config
        up = cfg.layers[self.index][0]
        c_in, mid, c_out = block_widths(cfg, self.index)
        captured = {}

        def site(k, h):
            name = f"block{self.index}.bn{k}"
            bn = CCBN(h.shape[-1], cfg.n_stats, cfg.eps, self.train, name=f"bn{k}")
            h, gamma, beta = bn(h, c, blend)
            h = jax.nn.relu(h)
            if name in interventions:
                h = interventions[name].apply(h)
            if capture.wants(name):
                entry = {}
                if capture.probes:
                    entry.update(t=-beta / gamma, gamma=gamma, beta=beta)
                if capture.features:
                    entry["features"] = h
                captured[name] = entry
            return h

        h = nn.Dense(mid, kernel_init=_init, name="conv0")(site(0, x))
        h = site(1, h)
        if up:
            h = _upsample(h)
        h = nn.Conv(mid, (3, 3), padding="SAME", kernel_init=_init, name="conv1")(h)
        h = nn.Conv(mid, (3, 3), padding="SAME", kernel_init=_init, name="conv2")(site(2, h))
        h = nn.Dense(c_out, kernel_init=_init, name="conv3")(site(3, h))
        skip = x[..., : c_in // 2] if c_in != c_out else x
        if up:
            skip = _upsample(skip)
        return h + skip, captured


class SelfAttention(nn.Module):
    """SAGAN self-attention with 2x2 max-pooled keys and values, no sqrt(d) scaling."""

    channels: int

    @nn.compact
    def __call__(self, x):
        b, hgt, wid, ch = x.shape
        dense = lambda n, name: nn.Dense(n, use_bias=False, kernel_init=_init, name=name)  # noqa: E731
        pool = lambda y: nn.max_pool(y, (2, 2), strides=(2, 2))  # noqa: E731
        theta = dense(ch // 8, "theta")(x).reshape(b, hgt * wid, ch // 8)
        phi = pool(dense(ch // 8, "phi")(x)).reshape(b, -1, ch // 8)
        g = pool(dense(ch // 2, "g")(x)).reshape(b, -1, ch // 2)
        attn = jax.nn.softmax(theta @ jnp.swapaxes(phi, 1, 2), axis=-1)
        o = (attn @ g).reshape(b, hgt, wid, ch // 2)
        gamma = self.param("gamma", nn.initializers.zeros, ())
        return x + gamma * dense(ch, "o")(o)


class Generator(nn.Module):
    """BigGAN-deep generator.

    ``__call__(z, class_vector, blend, capture, interventions)``:

    * ``z`` ``[B, z_dim]``; ``class_vector`` ``[B, num_classes]`` (one-hot, soft or mixed);
    * ``blend`` = ``(rows, weights)`` from :func:`jaxaware.truncation.stats_blend`;
    * ``capture``: a :class:`Capture` (static); ``interventions``: ``{site: ChannelEdit}``.

    Returns ``(images [B, H, W, 3] in [-1, 1], {site: {...}})``.

    ``train=True`` (training only): every batch norm normalises with batch statistics
    (see :class:`CCBN`); ``blend`` is then ignored and no ``stats`` are needed.
    """

    config: BigGANConfig
    train: bool = False

    @nn.compact
    def __call__(
        self,
        z,
        class_vector,
        blend,
        capture: Capture = NOTHING,
        interventions: Mapping[str, ChannelEdit] | None = None,
    ):
        cfg = self.config
        interventions = interventions or {}
        embedding = self.param("embedding", _init, (cfg.num_classes, cfg.z_dim))
        c = jnp.concatenate([z, class_vector @ embedding], axis=-1)
        c0 = cfg.width(16)
        h = nn.Dense(4 * 4 * c0, kernel_init=_init, name="gen_z")(c).reshape(-1, 4, 4, c0)
        captured = {}
        for i in range(len(cfg.layers)):
            if cfg.has_attention and i == cfg.attention_layer_position:
                h = SelfAttention(cfg.attention_channels, name="attention")(h)
            block = GenBlock(cfg, i, self.train, name=f"block{i}")
            h, cap = block(h, c, blend, capture, interventions)
            captured.update(cap)
        h = FinalBN(cfg.channel_width, cfg.n_stats, cfg.eps, self.train, name="bn")(h, blend)
        h = nn.Conv(3, (3, 3), padding="SAME", kernel_init=_init, name="to_rgb")(jax.nn.relu(h))
        return jnp.tanh(h), captured


class FinalBN(nn.Module):
    """The unconditional output batch norm, with truncation-indexed statistics."""

    channels: int
    n_stats: int
    eps: float
    train: bool = False

    @nn.compact
    def __call__(self, x, blend):
        weight = self.param("scale", nn.initializers.ones, (self.channels,))
        bias = self.param("bias", nn.initializers.zeros, (self.channels,))
        mu, sigma2 = _moments(self, x, blend)
        return (x - mu) / jnp.sqrt(sigma2 + self.eps) * weight + bias
