"""Layers every family's generator is built from: CCBN, the output batch norm, self-attention,
and the site hook that applies edits and records probes (vocabulary in
:mod:`jaxaware.models.family`)."""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxaware.errors import JaxawareError
from jaxaware.interventions import site_edits

INIT = nn.initializers.normal(0.02)


@dataclasses.dataclass(frozen=True)
class Capture:
    """What the generator returns besides the image; hashable, so a static jit argument.

    ``probes``: per CCBN site ``t = -beta / gamma``, ``gamma`` and ``beta`` ``[B, C]``.
    ``features``: per CCBN site the post-CCBN-ReLU feature map ``[B, H, W, C]`` (after any
    edit at that site). ``block_outputs``: per block ``{'features': [B, H, W, C]}`` at
    ``block{i}.out`` (after any edit there). ``sites``: a tuple of site names to keep (None
    keeps all of the kinds asked for); naming a block output captures it.
    """

    probes: bool = True
    features: bool = False
    sites: tuple[str, ...] | None = None
    block_outputs: bool = False

    def __post_init__(self):
        # One name means that site (not its letters); any sequence becomes a hashable tuple.
        sites = self.sites
        if sites is None:
            return
        if isinstance(sites, str):
            sites = (sites,)
        try:
            sites = tuple(sites)
        except TypeError:
            sites = None
        if sites is None or not all(isinstance(s, str) for s in sites):
            raise JaxawareError(f"Capture sites must be a site name such as 'block3.bn1' (or "
                                f"label 'L13') or a list of them; got {self.sites!r}")
        object.__setattr__(self, "sites", sites)

    def wants_ccbn(self, site: str) -> bool:
        return (self.probes or self.features) and (self.sites is None or site in self.sites)

    def wants_block(self, site: str) -> bool:
        if self.sites is None:
            return self.block_outputs
        return site in self.sites

    @property
    def active(self) -> bool:
        """Whether the generator returns ``(images, captured)`` rather than images."""
        named_blocks = self.sites is not None and any(s.endswith(".out") for s in self.sites)
        return self.probes or self.features or self.block_outputs or named_blocks


NOTHING = Capture(probes=False)


class SiteHook:
    """Applies the edit of a site (if any) and records what :class:`Capture` asks for."""

    def __init__(self, capture: Capture, edits):
        self.capture = capture
        self.edits = site_edits(edits)
        self.captured: dict[str, dict] = {}

    def ccbn(self, name: str, h, gamma, beta):
        """``h``: the post-ReLU CCBN output of site ``name``."""
        if name in self.edits:
            h = self.edits[name].apply(h)
        if self.capture.wants_ccbn(name):
            entry = {}
            if self.capture.probes:
                entry.update(t=-beta / gamma, gamma=gamma, beta=beta)
            if self.capture.features:
                entry["features"] = h
            self.captured[name] = entry
        return h

    def block(self, name: str, h):
        """``h``: a block's output after the residual sum."""
        if name in self.edits:
            h = self.edits[name].apply(h)
        if self.capture.wants_block(name):
            self.captured[name] = {"features": h}
        return h


def blend_rows(table, blend):
    """``table[rows[0]] * weights[0] + table[rows[1]] * weights[1]`` (the reference's own
    expression, so the deep family's reversed interpolation is reproduced bit for bit)."""
    rows, weights = blend
    table = jnp.asarray(table)  # NumPy variables closed over by a user's jit: index as JAX
    return table[rows[0]] * weights[0] + table[rows[1]] * weights[1]


def moments(module: nn.Module, x, blend):
    """The statistics a batch norm normalises with: the truncation-blended stored rows
    (collection ``stats``), or in training the batch's own."""
    if module.train:
        return batch_moments(module, x)
    shape = (module.n_stats, module.channels)
    mean = module.variable("stats", "mean", jnp.zeros, shape)
    var = module.variable("stats", "var", jnp.ones, shape)
    return blend_rows(mean.value, blend), blend_rows(var.value, blend)


def batch_moments(module: nn.Module, x):
    """Batch mean and biased variance over N, H, W (training-mode batch norm); sows the
    mean and the unbiased variance into ``batch_stats`` for standing statistics."""
    mu = jnp.mean(x, axis=(0, 1, 2))
    sigma2 = jnp.mean(jnp.square(x - mu), axis=(0, 1, 2))
    n = x.shape[0] * x.shape[1] * x.shape[2]
    module.sow("batch_stats", "mean", mu)
    module.sow("batch_stats", "var", sigma2 * (n / max(n - 1, 1)))
    return mu, sigma2


class CCBN(nn.Module):
    """Class-conditional batch norm: ``(x - mu) / sqrt(var + eps) * gamma + beta``.

    ``gamma = 1 + cond @ scale`` and ``beta = cond @ offset`` (no bias); ``cond`` is the
    family's condition for this block. Returns ``(out, gamma, beta)``; the channel probe of
    the paper (Sec. 2.2, Eq. 3) is ``t = -beta / gamma``: with ``gamma > 0`` the following
    ReLU keeps exactly the normalised inputs above ``t``.

    With ``train=True`` (training only) ``mu``/``var`` are the batch mean and (biased)
    variance over N, H, W; the stored statistics are neither read nor created, and the
    batch mean and unbiased variance are sown into ``batch_stats`` for standing statistics.
    """

    channels: int
    n_stats: int
    eps: float
    train: bool = False

    @nn.compact
    def __call__(self, x, cond, blend):
        cond_dim = cond.shape[-1]
        scale = self.param("scale", INIT, (cond_dim, self.channels))
        offset = self.param("offset", INIT, (cond_dim, self.channels))
        gamma = 1 + cond @ scale
        beta = cond @ offset
        mu, sigma2 = moments(self, x, blend)
        out = (x - mu) / jnp.sqrt(sigma2 + self.eps) * gamma[:, None, None, :]
        return out + beta[:, None, None, :], gamma, beta


class FinalBN(nn.Module):
    """The unconditional output batch norm (``scale``, ``bias``), statistics as a CCBN's."""

    channels: int
    n_stats: int
    eps: float
    train: bool = False

    @nn.compact
    def __call__(self, x, blend):
        weight = self.param("scale", nn.initializers.ones, (self.channels,))
        bias = self.param("bias", nn.initializers.zeros, (self.channels,))
        mu, sigma2 = moments(self, x, blend)
        return (x - mu) / jnp.sqrt(sigma2 + self.eps) * weight + bias


class SelfAttention(nn.Module):
    """SAGAN self-attention with 2x2 max-pooled keys and values, no sqrt(d) scaling:
    ``x + gamma * o(g softmax(theta^T phi))`` (1x1 convs without bias as matrices)."""

    channels: int

    @nn.compact
    def __call__(self, x):
        b, hgt, wid, ch = x.shape
        dense = lambda n, name: nn.Dense(n, use_bias=False, kernel_init=INIT, name=name)  # noqa: E731
        pool = lambda y: nn.max_pool(y, (2, 2), strides=(2, 2))  # noqa: E731
        theta = dense(ch // 8, "theta")(x).reshape(b, hgt * wid, ch // 8)
        phi = pool(dense(ch // 8, "phi")(x)).reshape(b, -1, ch // 8)
        g = pool(dense(ch // 2, "g")(x)).reshape(b, -1, ch // 2)
        attn = jax.nn.softmax(theta @ jnp.swapaxes(phi, 1, 2), axis=-1)
        o = (attn @ g).reshape(b, hgt, wid, ch // 2)
        gamma = self.param("gamma", nn.initializers.zeros, ())
        return x + gamma * dense(ch, "o")(o)


def upsample(x):
    """Nearest-neighbour x2 upsampling of an NHWC map."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def per_block(y, n_blocks: int):
    """Per-block class vectors from ``[B, K]`` (the same for every block: returned once,
    so one condition is computed exactly as before) or ``[B, n_blocks, K]``."""
    if y.ndim == 2:
        return None
    return [y[:, i] for i in range(n_blocks)]
