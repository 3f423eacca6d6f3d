"""The original BigGAN family (BigGAN-PyTorch, Brock et al.): config, Flax generator, sites.

The paper's main model is this family's BigGAN-256 (its Tab. 1, Fig. 4). Forward math
follows BigGAN-PyTorch's ``BigGAN.py`` ``Generator`` in eval mode (facts in
``shared/reference/biggan-pytorch-checkpoints.md``); the shared vocabulary is in
:mod:`jaxaware.models.family`. Family specifics:

* **Blocks.** ``G_arch`` tables for 32/64/128/256/512 px: every block upsamples (nearest
  x2), from 4x4; widths are ``channel_width`` times the table's multipliers. Self-attention
  follows ``block{i}`` when the block's output resolution is in ``attention``. Block ``i``
  is ``blocks.{i}.0`` in the reference, its attention ``blocks.{i}.1``.
* **Sites.** Two CCBNs per block: ``block{i}.bn1`` on the block input (``C_in``
  channels), ``block{i}.bn2`` after the first conv (``C_out``), L0.. in forward order (L0-L11
  for the 256 px model, as the paper's Tab. 1).
* **Condition.** With ``shared`` (``G_shared``), ``e_i = y_i @ embedding``; with ``hier``
  the latent is split in ``n_blocks + 1`` chunks, the first feeds the linear layer and
  block ``i`` reads ``cond_i = [e_i, z_chunk_{i+1}]`` (class first, as the reference's
  ``cat([y, z_chunk])``); without ``hier`` the linear layer reads all of ``z`` and the CCBNs
  read ``e_i`` alone (their probes then do not depend on the latent). Without ``shared``
  the CCBN maps are class-indexed tables (``nn.Embedding`` in the reference), i.e. a
  matrix applied to the class vector: ``cond_i = y_i``.
* **Truncation / statistics.** A converted model holds one row of batch-norm statistics
  (the reference's stored running statistics), used at every truncation, as BigGAN-PyTorch
  samples. ``jaxaware standing-stats`` re-estimates standing statistics at chosen
  truncations and stores them as extra rows (``stats_truncations``); a truncation that has
  its own row uses it, any other uses row 0.

Parameter tree (``params``; statistics in ``stats``)::

    embedding                       [num_classes, shared_dim]   (shared) class vector -> e
    linear/kernel, linear/bias      [z_chunk or z_dim, 16 * C0], (HWC order of the 4x4 map)
    block{i}/bn1|bn2/scale|offset   [cond_dim, C]               gamma = 1 + cond @ scale
    block{i}/conv1|conv2/kernel     [3, 3, C_in, C_out], bias [C_out]
    block{i}/conv_sc/kernel         [C_in, C_out] (1x1 conv as a matrix), bias [C_out]
    attention{i}/theta|phi|g|o      [C_in, C_out] 1x1 without bias; attention{i}/gamma []
    bn/scale, bn/bias               [C_last]                    output BN (gain, bias)
    to_rgb/kernel, to_rgb/bias      [3, 3, C_last, 3], [3]
    stats: block{i}/bn1|bn2/mean|var, bn/mean|var               [n_stats, C]

Every weight is already spectrally normalised (eval-mode SN folded in at conversion).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxaware.checks import (
    check_fits_in_memory,
    check_int,
    check_seed,
    config_bool,
    config_fraction,
    config_int,
    is_int,
)
from jaxaware.errors import JaxawareError
from jaxaware.models.family import AffineMaps, Family, Site, spectrally_normalised
from jaxaware.models.layers import (
    CCBN,
    INIT,
    NOTHING,
    Capture,
    FinalBN,
    SelfAttention,
    SiteHook,
    per_block,
    upsample,
)
from jaxaware.truncation import check_truncation

# G_arch: (in multipliers, out multipliers) per resolution; every block upsamples.
G_ARCH = {
    32: ((4, 4, 4), (4, 4, 4)),
    64: ((16, 16, 8, 4), (16, 8, 4, 2)),
    128: ((16, 16, 8, 4, 2), (16, 8, 4, 2, 1)),
    256: ((16, 16, 8, 8, 4, 2), (16, 8, 8, 4, 2, 1)),
    512: ((16, 16, 8, 8, 4, 2, 1), (16, 8, 8, 4, 2, 1, 1)),
}
OUTPUT_BN_EPS = 1e-5  # the reference's output BN keeps layers.bn's default eps


@dataclasses.dataclass(frozen=True)
class BigGANConfig:
    """Hyper-parameters of an original BigGAN generator (BigGAN-PyTorch names in brackets).

    ``z_dim`` is the latent width the generator takes: with ``hier`` it must be a multiple
    of ``n_blocks + 1`` (BigGAN-PyTorch rounds ``dim_z`` down to one; so does
    :meth:`from_pytorch_config`). ``n_stats`` rows of batch-norm statistics: row 0 the
    stored running statistics, row ``j >= 1`` standing statistics for truncation
    ``stats_truncations[j - 1]``.
    """

    resolution: int = 128  # [resolution]
    channel_width: int = 96  # [G_ch]
    z_dim: int = 120  # [dim_z], after hier rounding
    shared_dim: int = 128  # [shared_dim]; the class embedding width when shared
    hier: bool = True  # [hier]
    shared: bool = True  # [G_shared]
    attention: tuple[int, ...] = (64,)  # [G_attn] output resolutions followed by attention
    num_classes: int = 1000  # [n_classes]
    eps: float = 1e-5  # [BN_eps] of the CCBNs
    sn_eps: float = 1e-6  # [SN_eps]; used only when converting
    n_stats: int = 1
    stats_truncations: tuple[float, ...] = ()

    family: ClassVar[str] = "biggan"

    def __post_init__(self):
        _check_fields(self)  # types and ranges first: one-line errors, never a traceback
        if self.resolution not in G_ARCH:
            raise JaxawareError(
                f"resolution {self.resolution} has no BigGAN architecture; "
                f"use one of {', '.join(map(str, G_ARCH))}"
            )
        if self.hier and not self.shared:
            raise JaxawareError(
                "hier=True needs shared=True: BigGAN-PyTorch concatenates the class input with "
                "the latent chunks, which fails for class indices (G_shared=False)"
            )
        if self.hier and self.z_dim % self.num_slots:
            raise JaxawareError(
                f"z_dim {self.z_dim} does not split into {self.num_slots} equal chunks "
                f"(hier, {self.n_blocks} blocks); use a multiple of {self.num_slots}"
            )
        if self.channel_width * min(G_ARCH[self.resolution][1]) < 8:
            raise JaxawareError(
                f"channel_width {self.channel_width} is too small: attention needs at least 8 "
                "channels at every block"
            )
        if self.n_stats != 1 + len(self.stats_truncations):
            raise JaxawareError(
                f"n_stats {self.n_stats} does not match {len(self.stats_truncations)} "
                "standing-statistics truncations plus the stored row"
            )
        for t in self.stats_truncations:
            check_truncation(t)

    # -- architecture ---------------------------------------------------------------------
    @property
    def n_blocks(self) -> int:
        return len(G_ARCH[self.resolution][0])

    @property
    def num_slots(self) -> int:
        return self.n_blocks + 1 if self.hier else 1

    @property
    def z_chunk(self) -> int:
        """Latent coordinates each block's CCBNs read (0 without ``hier``)."""
        return self.z_dim // self.num_slots if self.hier else 0

    @property
    def linear_in(self) -> int:
        return self.z_chunk if self.hier else self.z_dim

    @property
    def cond_dim(self) -> int:
        return self.shared_dim + self.z_chunk if self.shared else self.num_classes

    def block_widths(self, i: int) -> tuple[int, int]:
        ins, outs = G_ARCH[self.resolution]
        return self.channel_width * ins[i], self.channel_width * outs[i]

    def block_resolution(self, i: int) -> int:
        """Output resolution of ``block{i}`` (its input has half of it)."""
        return 8 * 2**i

    def has_attention(self, i: int) -> bool:
        return self.block_resolution(i) in self.attention

    # -- files ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["attention"] = list(self.attention)
        d["stats_truncations"] = list(self.stats_truncations)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BigGANConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise JaxawareError(
                f"BigGAN config has unknown keys {unknown}; accepted: {sorted(known)}"
            )
        return cls(**d)

    @classmethod
    def from_pytorch_config(cls, d: dict[str, Any]) -> BigGANConfig:
        """From BigGAN-PyTorch's training-argument dict (``state_dict.pth['config']``).

        Reads ``resolution, G_ch, dim_z, shared_dim, hier, G_shared, G_attn, n_classes,
        BN_eps, SN_eps`` (defaults as BigGAN-PyTorch's ``Generator``) and refuses settings
        the port does not implement (``G_param`` other than SN, ``norm_style`` other than
        bn, ``mybn``, ``cross_replica``). ``dim_z`` is rounded down as the reference does.
        """
        def get(key, default):
            return d.get(key, default)

        for key, allowed in (("G_param", "SN"), ("norm_style", "bn")):
            if get(key, allowed) != allowed:
                raise JaxawareError(
                    f"config {key}={get(key, allowed)!r} is not supported; jaxaware ports "
                    f"{key}={allowed!r}"
                )
        for key in ("mybn", "cross_replica"):
            if get(key, False):
                raise JaxawareError(f"config {key}=True is not supported (its batch-norm "
                                    "buffers differ); jaxaware ports the standard ccbn")
        try:
            resolution = int(get("resolution", 128))
            ch = int(get("G_ch", 64))
            dim_z = int(get("dim_z", 128))
            shared_dim = int(get("shared_dim", 0)) or dim_z
            hier = bool(get("hier", False))
            attn = str(get("G_attn", "64"))
            attention = tuple(int(a) for a in attn.split("_") if int(a) > 0)
            shared = bool(get("G_shared", True))
            n_classes = int(get("n_classes", 1000))
            eps, sn_eps = float(get("BN_eps", 1e-5)), float(get("SN_eps", 1e-12))
        except (TypeError, ValueError) as e:
            raise JaxawareError(f"config has a value of the wrong type ({e})") from None
        if resolution not in G_ARCH:
            raise JaxawareError(
                f"resolution {resolution} has no BigGAN architecture; "
                f"use one of {', '.join(map(str, G_ARCH))}"
            )
        slots = len(G_ARCH[resolution][0]) + 1
        z_dim = dim_z // slots * slots if hier else dim_z
        return cls(resolution, ch, z_dim, shared_dim, hier, shared, attention, n_classes,
                   eps, sn_eps)

    def to_pytorch_config(self) -> dict[str, Any]:
        """BigGAN-PyTorch training arguments that build this architecture, the inverse of
        :meth:`from_pytorch_config` (e.g. to build a random-weight reference generator of
        exactly this model's shape). The reference stores one row of batch-norm
        statistics, so ``n_stats`` / ``stats_truncations`` have no counterpart, and
        without ``shared`` ``shared_dim`` is unused (BigGAN-PyTorch then reads it as
        ``dim_z``)."""
        return {
            "resolution": self.resolution, "G_ch": self.channel_width, "dim_z": self.z_dim,
            "shared_dim": self.shared_dim, "hier": self.hier, "G_shared": self.shared,
            "G_attn": "_".join(map(str, self.attention)) or "0",
            "n_classes": self.num_classes, "BN_eps": self.eps, "SN_eps": self.sn_eps,
        }  # fmt: skip


def _check_fields(cfg: BigGANConfig) -> None:
    """Types and ranges of every field (normalised to Python ints/floats/bools/tuples), in
    the same words as :class:`~jaxaware.models.BigGANDeepConfig`'s."""
    def setf(name, value):
        object.__setattr__(cfg, name, value)

    for name in ("resolution", "channel_width", "z_dim", "num_classes", "n_stats"):
        setf(name, config_int(getattr(cfg, name), name))
    setf("hier", config_bool(cfg.hier, "hier"))
    setf("shared", config_bool(cfg.shared, "shared"))
    setf("shared_dim", config_int(cfg.shared_dim, "shared_dim", 1 if cfg.shared else 0))
    for name in ("eps", "sn_eps"):
        setf(name, config_fraction(getattr(cfg, name), name))
    if not isinstance(cfg.attention, (list, tuple)) or not all(
            is_int(a) and a >= 1 for a in cfg.attention):
        raise JaxawareError(f"config attention must be a list of resolutions (positive "
                            f"integers, e.g. [64]); got {cfg.attention!r}")
    setf("attention", tuple(sorted(int(a) for a in cfg.attention)))
    if not isinstance(cfg.stats_truncations, (list, tuple)) or not all(
            isinstance(t, (numbers.Real, np.floating, np.integer))
            and not isinstance(t, (bool, np.bool_)) for t in cfg.stats_truncations):
        raise JaxawareError(f"config stats_truncations must be a list of truncations in "
                            f"(0, 1]; got {cfg.stats_truncations!r}")
    setf("stats_truncations", tuple(float(t) for t in cfg.stats_truncations))


PRESETS = {
    # The BigGAN-PyTorch release BigGAN_ch96_bs256x8_138k (scripts/launch_BigGAN_bs256x8.sh).
    "biggan-128-138k": BigGANConfig(128, 96, 120, 128, True, True, (64,), 1000, 1e-5, 1e-6),
    # TF-Hub biggan-{128,256,512} through BigGAN-PyTorch's TFHub/converter.py get_config.
    "biggan-128": BigGANConfig(128, 96, 120, 128, True, True, (64,), 1000, 1e-4, 1e-4),
    "biggan-256": BigGANConfig(256, 96, 140, 128, True, True, (128,), 1000, 1e-4, 1e-4),
    "biggan-512": BigGANConfig(512, 96, 128, 128, True, True, (64,), 1000, 1e-4, 1e-4),
}


# -- sites -------------------------------------------------------------------------------


def ccbn_sites(config: BigGANConfig) -> tuple[Site, ...]:
    """``bn1`` (block input) and ``bn2`` (after conv1) of every block, in forward order."""
    sites, offset = [], 0
    for i in range(config.n_blocks):
        c_in, c_out = config.block_widths(i)
        res = config.block_resolution(i)
        for k, channels, r in ((1, c_in, res // 2), (2, c_out, res)):
            sites.append(Site(f"block{i}.bn{k}", len(sites), i, "ccbn", channels, r, offset,
                              f"blocks.{i}.0.bn{k}"))
            offset += channels
    return tuple(sites)


def block_sites(config: BigGANConfig) -> tuple[Site, ...]:
    """Every block's output after the residual sum (before a following attention)."""
    sites, offset = [], 0
    for i in range(config.n_blocks):
        channels = config.block_widths(i)[1]
        sites.append(Site(f"block{i}.out", i, i, "block", channels, config.block_resolution(i),
                          offset, f"blocks.{i}.0"))
        offset += channels
    return tuple(sites)


def affine_maps(params: dict, config: BigGANConfig) -> AffineMaps:
    """Split every CCBN kernel into its class rows and its latent-chunk rows.

    Block ``i`` reads ``[e, z_chunk_{i+1}]``: kernel rows ``:shared_dim`` are the class
    part and the rest land on latent coordinates ``(i + 1) * chunk ...`` (zero elsewhere).
    """
    sites = ccbn_sites(config)
    kernels = {k: [params[s.block_name][s.name.split(".")[1]][k] for s in sites]
               for k in ("scale", "offset")}
    if not config.shared:  # class-indexed tables: the class part is the whole kernel
        zeros = jnp.zeros((config.z_dim, sum(s.channels for s in sites)), jnp.float32)
        gain, bias = (jnp.concatenate(kernels[k], axis=1) for k in ("scale", "offset"))
        return AffineMaps(zeros, zeros, gain, bias, None)
    sd, chunk = config.shared_dim, config.z_chunk

    def latent_part(w, block):
        out = jnp.zeros((config.z_dim, w.shape[1]), w.dtype)
        if not chunk:
            return out
        start = (block + 1) * chunk
        return out.at[start:start + chunk].set(w[sd:])

    parts = {}
    for k in ("scale", "offset"):
        parts[k] = (
            jnp.concatenate([latent_part(w, s.block) for w, s in zip(kernels[k], sites)], 1),
            jnp.concatenate([w[:sd] for w in kernels[k]], axis=1),
        )
    return AffineMaps(parts["scale"][0], parts["offset"][0], parts["scale"][1],
                      parts["offset"][1], params["embedding"])


# -- the generator -----------------------------------------------------------------------


class GBlock(nn.Module):
    """``h = relu(bn1(x)); up; conv1; relu(bn2); conv2``; skip ``conv_sc(up(x))``."""

    config: BigGANConfig
    index: int
    train: bool = False

    @nn.compact
    def __call__(self, x, cond, blend, hook: SiteHook):
        cfg, i = self.config, self.index
        c_in, c_out = cfg.block_widths(i)

        def site(k, h):
            bn = CCBN(h.shape[-1], cfg.n_stats, cfg.eps, self.train, name=f"bn{k}")
            h, gamma, beta = bn(h, cond, blend)
            return hook.ccbn(f"block{i}.bn{k}", jax.nn.relu(h), gamma, beta)

        h = upsample(site(1, x))
        h = nn.Conv(c_out, (3, 3), padding="SAME", kernel_init=INIT, name="conv1")(h)
        h = nn.Conv(c_out, (3, 3), padding="SAME", kernel_init=INIT, name="conv2")(site(2, h))
        skip = nn.Dense(c_out, kernel_init=INIT, name="conv_sc")(upsample(x))
        return hook.block(f"block{i}.out", h + skip)


class BigGANGenerator(nn.Module):
    """Original BigGAN generator.

    ``__call__(z, y, blend, capture, edits)``: ``z`` ``[B, z_dim]`` (with ``hier``, chunk 0
    feeds the linear layer and chunk ``i + 1`` block ``i``: per-block latents are the
    chunks); ``y`` class vectors ``[B, num_classes]`` or per block
    ``[B, n_blocks, num_classes]``; ``blend``, ``capture`` and ``edits`` as for every family
    (:class:`jaxaware.models.biggan_deep.BigGANDeepGenerator`), and so are ``start``,
    ``stop``, ``h`` (run blocks ``start..stop-1`` only). Returns
    ``(images [B, H, W, 3] in [-1, 1], {site: {...}})``.
    """

    config: BigGANConfig
    train: bool = False

    @nn.compact
    def __call__(self, z, y, blend, capture: Capture = NOTHING, edits=None, start: int = 0,
                 stop: int | None = None, h=None):
        cfg = self.config
        hook = SiteHook(capture, edits)
        ys = per_block(y, cfg.n_blocks)
        if cfg.shared:
            embedding = self.param("embedding", INIT, (cfg.num_classes, cfg.shared_dim))
            es = [y @ embedding] * cfg.n_blocks if ys is None else [yi @ embedding for yi in ys]
        else:
            es = [y] * cfg.n_blocks if ys is None else ys
        if cfg.hier:
            chunks = jnp.split(z, cfg.num_slots, axis=-1)
            z0, conds = chunks[0], [jnp.concatenate([e, c], -1) for e, c in zip(es, chunks[1:])]
        else:
            z0, conds = z, es
        c0 = cfg.block_widths(0)[0]
        if start == 0:
            h = nn.Dense(16 * c0, kernel_init=INIT, name="linear")(z0).reshape(-1, 4, 4, c0)
        for i in range(start, cfg.n_blocks if stop is None else stop):
            h = GBlock(cfg, i, self.train, name=f"block{i}")(h, conds[i], blend, hook)
            if cfg.has_attention(i):
                h = SelfAttention(h.shape[-1], name=f"attention{i}")(h)
        if stop is not None:  # the input of block `stop` (the attention after stop-1 included)
            return h, hook.captured
        c_last = h.shape[-1]
        h = FinalBN(c_last, cfg.n_stats, OUTPUT_BN_EPS, self.train, name="bn")(h, blend)
        h = nn.Conv(3, (3, 3), padding="SAME", kernel_init=INIT, name="to_rgb")(jax.nn.relu(h))
        return jnp.tanh(h), hook.captured


def stats_blend(config: BigGANConfig, truncation, correct_lerp: bool = False):
    """Row ``j`` if ``truncation`` has standing statistics there, else the stored row 0.

    ``correct_lerp`` is accepted for a uniform signature (it concerns the deep family's
    interpolation) and has no effect.
    """
    t = check_truncation(truncation)
    row = 0
    for j, tj in enumerate(config.stats_truncations, start=1):
        if math.isclose(t, tj, rel_tol=0, abs_tol=1e-9):
            row = j
    return np.array([row, row], np.int32), np.array([1.0, 0.0], np.float32)


def sample_latents(num: int, config: BigGANConfig, truncation=1.0, seed=0) -> np.ndarray:
    """``truncation * N(0, 1)`` latents ``[num, z_dim]`` from NumPy's ``RandomState(seed)``.

    BigGAN-PyTorch samples ``z`` from a normal distribution whose scale is its ``z_var``
    option (``utils.prepare_z_y``), not a truncated normal; here ``truncation`` plays the
    role of that scale. (Its draws come from torch's generator, which NumPy cannot
    reproduce: the same seed gives other latents than BigGAN-PyTorch.)
    """
    t = check_truncation(truncation)
    num = check_int(num, "number of latents", 0)
    seed = check_seed(seed, allow_none=True)
    check_fits_in_memory(num * config.z_dim * 12, f"{num} latents of width {config.z_dim}")
    state = np.random.RandomState(seed)
    return state.standard_normal((num, config.z_dim)).astype(np.float32) * np.float32(t)


FAMILY = Family(
    name="biggan",
    title="BigGAN",
    config_class=BigGANConfig,
    generator=lambda config, train=False: BigGANGenerator(config, train),
    ccbn_sites=ccbn_sites,
    block_sites=block_sites,
    affine_maps=affine_maps,
    stats_blend=stats_blend,
    sample_latents=sample_latents,
    latent_convention=(
        "truncation x N(0, 1) from numpy's RandomState(seed) (BigGAN-PyTorch draws a "
        "normal z whose scale is its z_var)"
    ),
    latent_law="normal",
    presets=PRESETS,
    sn_filter=spectrally_normalised,
)
