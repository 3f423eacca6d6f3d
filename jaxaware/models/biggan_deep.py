"""The BigGAN-deep family (``pytorch_pretrained_biggan``): config, Flax generator, sites.

Forward math follows ``pytorch_pretrained_biggan`` in eval mode (see
``shared/reference/biggan-checkpoints.md`` part A.3); the shared vocabulary is in
:mod:`jaxaware.models.family`. Family specifics:

* **Blocks.** Config layer ``i`` of ``layers`` is ``block{i}``; in the reference it is
  ``generator.layers.{m}`` with ``m = i`` before the attention layer and ``m = i + 1`` from
  ``attention_layer_position`` on (the attention module itself is
  ``generator.layers.{attention_layer_position}``, applied before ``block{i}``).
* **Sites.** Four CCBNs per block, ``block{i}.bn0..bn3``.
* **Condition.** ``c_i = [z, e_i]`` with ``e_i = y_i @ embedding``: the latent first, then
  block ``i``'s class embedding; ``gen_z`` reads block 0's condition.
* **Truncation.** A float in (0, 1]: it scales the latent (``z = truncation *
  truncnorm(-2, 2)``) and selects the batch-norm statistics from the ``n_stats`` stored
  rows (row ``i`` is meant for truncation ``i / (n_stats - 1)``; see
  :mod:`jaxaware.truncation` for the reference's reversed interpolation).

Parameter tree (collection ``params``; the statistics live in collection ``stats``)::

    embedding                      [num_classes, z_dim]        class vector -> e
    gen_z/kernel, gen_z/bias       [2 z_dim, 16 * C_0], [..]    c -> 4x4 map (HWC order)
    block{i}/bn{k}/scale|offset    [2 z_dim, C]                 gamma = 1 + c @ scale
    block{i}/conv0|conv3/kernel    [C_in, C_out]                1x1 convs as matrices
    block{i}/conv1|conv2/kernel    [3, 3, C_in, C_out]
    block{i}/conv{k}/bias          [C_out]
    attention/theta|phi|g|o/kernel [C_in, C_out]                1x1, no bias
    attention/gamma                []
    bn/scale, bn/bias              [C_last]                     final, unconditional BN
    to_rgb/kernel, to_rgb/bias     [3, 3, C_last, 3], [3]       reference keeps ch outputs
    stats: block{i}/bn{k}/mean|var, bn/mean|var                 [n_stats, C]

Every weight is already spectrally normalised (``W / sigma`` folded in at conversion).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxaware.checks import config_fraction, config_int, is_int
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
from jaxaware.truncation import stats_blend, truncated_noise

Layer = tuple[bool, int, int]  # (upsample?, in_mult, out_mult); channels = ch * mult

_DEEP_128 = (
    (False, 16, 16), (True, 16, 16), (False, 16, 16), (True, 16, 8), (False, 8, 8),
    (True, 8, 4), (False, 4, 4), (True, 4, 2), (False, 2, 2), (True, 2, 1),
)  # fmt: skip
_DEEP_256 = (
    (False, 16, 16), (True, 16, 16), (False, 16, 16), (True, 16, 8), (False, 8, 8),
    (True, 8, 8), (False, 8, 8), (True, 8, 4), (False, 4, 4), (True, 4, 2),
    (False, 2, 2), (True, 2, 1),
)  # fmt: skip
_DEEP_512 = _DEEP_256 + ((False, 1, 1), (True, 1, 1))


@dataclasses.dataclass(frozen=True)
class BigGANDeepConfig:
    """Hyper-parameters of a BigGAN-deep generator, as in ``pytorch_pretrained_biggan``.

    ``layers`` drives the architecture; ``output_dim`` and ``class_embed_dim`` are kept
    only so a config round-trips to the reference ``config.json`` (the reference model
    hard-codes the condition size as ``2 * z_dim``).
    """

    layers: tuple[Layer, ...]
    output_dim: int
    z_dim: int = 128
    class_embed_dim: int = 128
    channel_width: int = 128
    num_classes: int = 1000
    attention_layer_position: int = 8
    eps: float = 1e-4
    n_stats: int = 51

    family: ClassVar[str] = "biggan-deep"

    def __post_init__(self):
        _check_fields(self)  # types and ranges first: one-line errors, never a traceback
        layers = self.layers
        if not layers:
            raise JaxawareError("config has no layers; expected a list of [upsample, in, out]")
        for i in range(1, len(layers)):
            if layers[i][1] != layers[i - 1][2]:
                raise JaxawareError(
                    f"config layer {i} takes width {layers[i][1]} but layer {i - 1} gives "
                    f"{layers[i - 1][2]}; consecutive layers must chain"
                )
        for i, (_, cin, cout) in enumerate(layers):
            if cin != cout and 2 * cout != cin:
                raise JaxawareError(
                    f"config layer {i} maps width {cin} to {cout}; a BigGAN-deep block keeps "
                    "its width or halves it"
                )
        for i, (_, cin, _) in enumerate(layers):
            if cin * self.channel_width < 8:
                raise JaxawareError(
                    f"config layer {i} has {cin * self.channel_width} input channels; a "
                    "BigGAN-deep block needs at least 8 (its bottleneck is a quarter of them)"
                )
        if not 0 <= self.attention_layer_position <= len(layers):
            raise JaxawareError(
                f"attention_layer_position {self.attention_layer_position} is outside "
                f"0..{len(layers)}"
            )
        if self.n_stats < 2:
            raise JaxawareError(f"n_stats must be at least 2; got {self.n_stats}")

    @property
    def cond_dim(self) -> int:
        return 2 * self.z_dim

    @property
    def reference_compatible(self) -> bool:
        """Whether ``pytorch_pretrained_biggan`` can hold this architecture: it reshapes
        ``gen_z``'s output to ``16 * ch`` channels and runs its final BN and ``conv_to_rgb``
        on ``ch`` channels whatever the layer table says, so the table must run from 16 to
        1. Other tables (e.g. a constant width, as BigGAN's CIFAR models) are valid
        jaxaware models but cannot be exported to, or converted from, that package."""
        return self.layers[0][1] == 16 and self.layers[-1][2] == 1

    @property
    def stem_channels(self) -> int:
        """Channels of ``gen_z``'s 4x4 map: the first block's input."""
        return self.width(self.layers[0][1])

    @property
    def output_channels(self) -> int:
        """Channels of the final BN and ``to_rgb``'s input: the last block's output."""
        return self.width(self.layers[-1][2])

    def width(self, mult: int) -> int:
        return self.channel_width * mult

    @property
    def has_attention(self) -> bool:
        """The reference inserts self-attention only before an existing layer."""
        return self.attention_layer_position < len(self.layers)

    @property
    def attention_channels(self) -> int:
        """Channels at the attention layer: the input width of the block that follows it."""
        return self.width(self.layers[self.attention_layer_position][1])

    @property
    def resolution(self) -> int:
        return 4 * 2 ** sum(up for up, _, _ in self.layers)

    @property
    def n_blocks(self) -> int:
        return len(self.layers)

    def to_dict(self) -> dict[str, Any]:
        """The config as stored in a weights directory (the reference's config.json)."""
        return self.to_reference_dict()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BigGANDeepConfig:
        return cls.from_reference_dict(d)

    # -- the reference's config.json ------------------------------------------------------
    def to_reference_dict(self) -> dict[str, Any]:
        return {
            "attention_layer_position": self.attention_layer_position,
            "channel_width": self.channel_width,
            "class_embed_dim": self.class_embed_dim,
            "eps": self.eps,
            "layers": [list(layer) for layer in self.layers],
            "n_stats": self.n_stats,
            "num_classes": self.num_classes,
            "output_dim": self.output_dim,
            "z_dim": self.z_dim,
        }

    @classmethod
    def from_reference_dict(cls, d: dict[str, Any]) -> BigGANDeepConfig:
        """Reads a ``pytorch_pretrained_biggan`` config; missing keys take the 128 defaults."""
        if not isinstance(d, dict):
            raise JaxawareError(f"a BigGAN-deep config must be a JSON object; got "
                                f"{type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise JaxawareError(
                f"config.json has unknown keys {unknown}; accepted: {sorted(known)}"
            )
        merged = {**biggan_deep_preset("biggan-deep-128").to_reference_dict(), **d}
        return cls(**{k: merged[k] for k in known})

    @classmethod
    def from_json_file(cls, path) -> BigGANDeepConfig:
        with open(path) as f:
            try:
                d = json.load(f)
            except json.JSONDecodeError as e:
                raise JaxawareError(
                    f"{path} is not valid JSON ({e.msg}); expected a BigGAN config"
                ) from None
        return cls.from_reference_dict(d)


def _layer(layer, i: int) -> Layer:
    """One ``[upsample, in, out]`` entry of ``layers``, checked."""
    ok = (isinstance(layer, (list, tuple)) and len(layer) == 3
          and (isinstance(layer[0], (bool, np.bool_)) or (is_int(layer[0]) and layer[0] in (0, 1)))
          and all(is_int(v) and v >= 1 for v in layer[1:]))
    if not ok:
        raise JaxawareError(f"config layer {i} must be [upsample, in, out] with upsample true or "
                            f"false and in, out positive integers; got {layer!r}")
    return bool(layer[0]), int(layer[1]), int(layer[2])


def _check_fields(cfg: BigGANDeepConfig) -> None:
    """Types and ranges of every field (normalised to Python ints/floats/bools)."""
    if not isinstance(cfg.layers, (list, tuple)) or not cfg.layers:
        raise JaxawareError(f"config layers must be a non-empty list of [upsample, in, out]; "
                            f"got {cfg.layers!r}")
    object.__setattr__(cfg, "layers", tuple(_layer(x, i) for i, x in enumerate(cfg.layers)))
    for name in ("output_dim", "z_dim", "class_embed_dim", "channel_width", "num_classes"):
        object.__setattr__(cfg, name, config_int(getattr(cfg, name), name))
    object.__setattr__(cfg, "attention_layer_position",
                       config_int(cfg.attention_layer_position, "attention_layer_position", 0))
    object.__setattr__(cfg, "n_stats", config_int(cfg.n_stats, "n_stats", 2))
    object.__setattr__(cfg, "eps", config_fraction(cfg.eps, "eps"))


PRESETS = {
    "biggan-deep-128": BigGANDeepConfig(layers=_DEEP_128, output_dim=128),
    "biggan-deep-256": BigGANDeepConfig(layers=_DEEP_256, output_dim=256),
    "biggan-deep-512": BigGANDeepConfig(layers=_DEEP_512, output_dim=512),
}


def biggan_deep_preset(name: str) -> BigGANDeepConfig:
    """The published BigGAN-deep architectures, by their ``pytorch_pretrained_biggan`` names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise JaxawareError(
            f"unknown model name {name!r}; known: {', '.join(PRESETS)}"
        ) from None


# -- sites -------------------------------------------------------------------------------


def block_widths(config: BigGANDeepConfig, i: int) -> tuple[int, int, int]:
    """(input, middle, output) channels of ``block{i}``; the middle width is ``input // 4``."""
    _, cin, cout = config.layers[i]
    c_in = config.width(cin)
    return c_in, c_in // 4, config.width(cout)


def reference_block_index(config: BigGANDeepConfig, i: int) -> int:
    """Index ``m`` of ``block{i}`` in the reference ``generator.layers`` list."""
    return i if i < config.attention_layer_position else i + 1


def _walk(config: BigGANDeepConfig):
    """``(block, input resolution, output resolution)`` of every block."""
    res = 4
    for i, (up, _, _) in enumerate(config.layers):
        out_res = res * 2 if up else res
        yield i, res, out_res
        res = out_res


def ccbn_sites(config: BigGANDeepConfig) -> tuple[Site, ...]:
    """The four CCBN sites of every block, in forward order."""
    sites, offset = [], 0
    for i, res, out_res in _walk(config):
        c_in, mid, _ = block_widths(config, i)
        m = reference_block_index(config, i)
        for k, (channels, r) in enumerate(
            [(c_in, res), (mid, res), (mid, out_res), (mid, out_res)]
        ):
            sites.append(Site(f"block{i}.bn{k}", len(sites), i, "ccbn", channels, r, offset,
                              f"generator.layers.{m}.bn_{k}"))
            offset += channels
    return tuple(sites)


def block_sites(config: BigGANDeepConfig) -> tuple[Site, ...]:
    """The output of every block after its residual sum."""
    sites, offset = [], 0
    for i, _, out_res in _walk(config):
        channels = block_widths(config, i)[2]
        m = reference_block_index(config, i)
        sites.append(Site(f"block{i}.out", i, i, "block", channels, out_res, offset,
                          f"generator.layers.{m}"))
        offset += channels
    return tuple(sites)


def affine_maps(params: dict, config: BigGANDeepConfig) -> AffineMaps:
    """Every CCBN reads ``c = [z, e]``: the first ``z_dim`` kernel rows are the latent part."""
    zd = config.z_dim
    bns = [params[s.block_name][s.name.split(".")[1]] for s in ccbn_sites(config)]
    scale = jnp.concatenate([bn["scale"] for bn in bns], axis=1)
    offset = jnp.concatenate([bn["offset"] for bn in bns], axis=1)
    return AffineMaps(scale[:zd], offset[:zd], scale[zd:], offset[zd:], params["embedding"])


# -- the generator -----------------------------------------------------------------------


class DeepBlock(nn.Module):
    """Pre-activated residual block: four CCBN+ReLU sites ``bn0..bn3``, bottleneck convs,
    nearest x2 upsampling after ``bn1``; the skip keeps the first half of the channels
    when the block halves its width."""

    config: BigGANDeepConfig
    index: int
    train: bool = False

    @nn.compact
    def __call__(self, x, c, blend, hook: SiteHook):
        cfg = self.config
        up = cfg.layers[self.index][0]
        c_in, mid, c_out = block_widths(cfg, self.index)

        def site(k, h):
            bn = CCBN(h.shape[-1], cfg.n_stats, cfg.eps, self.train, name=f"bn{k}")
            h, gamma, beta = bn(h, c, blend)
            return hook.ccbn(f"block{self.index}.bn{k}", jax.nn.relu(h), gamma, beta)

        h = nn.Dense(mid, kernel_init=INIT, name="conv0")(site(0, x))
        h = site(1, h)
        if up:
            h = upsample(h)
        h = nn.Conv(mid, (3, 3), padding="SAME", kernel_init=INIT, name="conv1")(h)
        h = nn.Conv(mid, (3, 3), padding="SAME", kernel_init=INIT, name="conv2")(site(2, h))
        h = nn.Dense(c_out, kernel_init=INIT, name="conv3")(site(3, h))
        skip = x[..., : c_in // 2] if c_in != c_out else x
        if up:
            skip = upsample(skip)
        return hook.block(f"block{self.index}.out", h + skip)


class BigGANDeepGenerator(nn.Module):
    """BigGAN-deep generator.

    ``__call__(z, y, blend, capture, edits)``:

    * ``z`` ``[B, z_dim]``; ``y`` class vectors ``[B, num_classes]`` (one-hot, soft or
      mixed), or per block ``[B, n_blocks, num_classes]`` (``gen_z`` reads block 0's);
    * ``blend`` = ``(rows, weights)`` from the family's ``stats_blend``;
    * ``capture``: a :class:`~jaxaware.models.layers.Capture` (static); ``edits``:
      ``{site: ChannelEdit}``, a :class:`~jaxaware.interventions.FlatEdit`, or None;
    * ``start``, ``stop`` (static ints) run only blocks ``start..stop-1``: with ``start > 0``
      ``h`` is the input of block ``start``; with ``stop`` the result is the input of block
      ``stop`` instead of images (what :func:`jaxaware.generate.forward` uses to split a
      forward pass at a block).

    Returns ``(images [B, H, W, 3] in [-1, 1], {site: {...}})``.

    ``train=True`` (training only): every batch norm normalises with batch statistics;
    ``blend`` is then ignored and no ``stats`` are needed.
    """

    config: BigGANDeepConfig
    train: bool = False

    @nn.compact
    def __call__(self, z, y, blend, capture: Capture = NOTHING, edits=None, start: int = 0,
                 stop: int | None = None, h=None):
        cfg = self.config
        hook = SiteHook(capture, edits)
        embedding = self.param("embedding", INIT, (cfg.num_classes, cfg.z_dim))
        ys = per_block(y, cfg.n_blocks)
        if ys is None:  # one condition for every block, computed once
            conds = [jnp.concatenate([z, y @ embedding], axis=-1)] * cfg.n_blocks
        else:
            conds = [jnp.concatenate([z, yi @ embedding], axis=-1) for yi in ys]
        c0 = cfg.stem_channels
        if start == 0:
            h = nn.Dense(4 * 4 * c0, kernel_init=INIT, name="gen_z")(conds[0])
            h = h.reshape(-1, 4, 4, c0)
        attention = cfg.attention_layer_position if cfg.has_attention else None
        for i in range(start, cfg.n_blocks if stop is None else stop):
            if i == attention and not (0 < start == i):  # h given at `start` is past it
                h = SelfAttention(cfg.attention_channels, name="attention")(h)
            h = DeepBlock(cfg, i, self.train, name=f"block{i}")(h, conds[i], blend, hook)
        if stop is not None:  # the input of block `stop` (attention before it included)
            if stop == attention:
                h = SelfAttention(cfg.attention_channels, name="attention")(h)
            return h, hook.captured
        h = FinalBN(cfg.output_channels, cfg.n_stats, cfg.eps, self.train, name="bn")(h, blend)
        h = nn.Conv(3, (3, 3), padding="SAME", kernel_init=INIT, name="to_rgb")(jax.nn.relu(h))
        return jnp.tanh(h), hook.captured


def _stats_blend(config: BigGANDeepConfig, truncation, correct_lerp: bool = False):
    return stats_blend(truncation, config.n_stats, correct_lerp)


def _sample_latents(num: int, config: BigGANDeepConfig, truncation=1.0, seed=0) -> np.ndarray:
    return truncated_noise(num, config.z_dim, truncation, seed)


FAMILY = Family(
    name="biggan-deep",
    title="BigGAN-deep",
    config_class=BigGANDeepConfig,
    generator=lambda config, train=False: BigGANDeepGenerator(config, train),
    ccbn_sites=ccbn_sites,
    block_sites=block_sites,
    affine_maps=affine_maps,
    stats_blend=_stats_blend,
    sample_latents=_sample_latents,
    latent_convention=(
        "truncation x truncnorm(-2, 2) from numpy's RandomState(seed), as "
        "pytorch_pretrained_biggan.truncated_noise_sample"
    ),
    latent_law="truncnorm",
    presets=PRESETS,
    sn_filter=spectrally_normalised,
)
