"""Random-weight BigGAN-deep reference models in the real ``pytorch_pretrained_biggan`` format.

No pretrained weights can be downloaded here, so parity tests and benchmarks run on
models with random weights that are built, saved and loaded exactly like the real
checkpoints:

* :func:`small_config` / :data:`SMALL_CONFIGS` / :func:`preset` give ``BigGANConfig``\\ s
  (tiny test architectures, or the real 128/256/512 ones);
* :func:`random_biggan` builds an eval-mode ``BigGAN`` whose forward pass is sensible:
  spectral-norm ``weight_u``/``weight_v`` are converged singular vectors, the 51-row BN
  statistics are calibrated on the model's own activations (then jittered row by row so
  the truncation interpolation is observable), attention ``gamma`` is nonzero and some
  CCBN gains ``1 + scale(c)`` are negative;
* :func:`save_checkpoint` writes ``pytorch_model.bin`` + ``config.json`` exactly as the
  package downloads them, and checks that ``BigGAN.from_pretrained`` reads them back;
* :func:`reference_forward` runs the torch model and captures every CCBN's gain and bias.

CLI: ``python -m convert.reference --config tiny --seed 0 --out DIR``.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_pretrained_biggan import BigGAN, BigGANConfig, truncated_noise_sample
from pytorch_pretrained_biggan.model import CONFIG_NAME, WEIGHTS_NAME, BigGANBatchNorm

__all__ = [
    "SMALL_CONFIGS",
    "TINY",
    "TINY_ATTN_FIRST",
    "TINY_LATE_ATTN",
    "TINY_NO_ATTN",
    "PRESET_NAMES",
    "small_config",
    "validate_config",
    "preset",
    "get_config",
    "random_biggan",
    "save_checkpoint",
    "load_checkpoint",
    "reference_forward",
    "conditional_bn_sites",
    "one_hot",
    "main",
]

# --------------------------------------------------------------------------------------
# Configs
# --------------------------------------------------------------------------------------


def _norm_layers(layers: Iterable[Sequence]) -> list[list]:
    # JSON round trip turns the (up, in, out) tuples into lists; store them that way from
    # the start so an in-memory config equals the one from_pretrained reads back.
    out = []
    for entry in layers:
        if len(entry) != 3:
            raise ValueError(f"layer entry {entry!r} must be (upsample, in_mult, out_mult)")
        up, a, b = entry
        out.append([bool(up), int(a), int(b)])
    return out


def _has_attention(config: BigGANConfig) -> bool:
    return 0 <= config.attention_layer_position < len(config.layers)


def validate_config(config: BigGANConfig) -> None:
    """Raise ``ValueError`` if ``BigGAN(config)`` would not build or run.

    Constraints that ``pytorch_pretrained_biggan`` does not check itself:

    * ``gen_z`` always emits ``16*ch`` channels at 4x4, so ``layers[0]`` must have in_mult 16;
    * the final BN has ``ch`` channels, so the last layer must have out_mult 1;
    * consecutive layers chain (out_mult of i == in_mult of i+1);
    * a block either keeps its width or halves it (the skip path keeps ``C//2`` channels
      whenever in != out, whatever out is);
    * every block has a middle width ``C//4 >= 1``; ``ch >= 3`` (RGB is channels 0..2 of
      ``conv_to_rgb``);
    * ``0 <= attention_layer_position <= len(layers)``; the self-attention (present iff the
      position is ``< len(layers)``; the package itself also accepts negative = none) needs
      ``C//8 >= 1`` channels; its 2x2 max-pool always works because every resolution is
      ``4 * 2**k``.
    """
    layers = config.layers
    ch = config.channel_width
    if not layers:
        raise ValueError("layers must not be empty")
    if ch < 3:
        raise ValueError(f"channel_width must be >= 3 (RGB slice of conv_to_rgb), got {ch}")
    if config.z_dim < 1 or config.num_classes < 1:
        raise ValueError("z_dim and num_classes must be >= 1")
    if config.n_stats < 2:
        raise ValueError(f"n_stats must be >= 2, got {config.n_stats}")
    if layers[0][1] != 16:
        raise ValueError(
            f"layers[0] must have in_mult 16 (gen_z emits 16*ch channels), got {layers[0]}"
        )
    if layers[-1][2] != 1:
        raise ValueError(
            f"the last layer must have out_mult 1 (final BN has ch channels), got {layers[-1]}"
        )
    for i, (_, a, b) in enumerate(layers):
        if i + 1 < len(layers) and layers[i + 1][1] != b:
            raise ValueError(f"layers {i} and {i + 1} do not chain: {layers[i]} -> {layers[i + 1]}")
        cin, cout = ch * a, ch * b
        if cout != cin and 2 * cout != cin:
            raise ValueError(f"layer {i} {layers[i]}: out width must equal in width or half of it")
        if cin // 4 < 1:
            raise ValueError(f"layer {i}: middle width {cin}//4 must be >= 1")
    pos = config.attention_layer_position
    if not 0 <= pos <= len(layers):
        raise ValueError(
            f"attention_layer_position must be in [0, {len(layers)}] "
            f"({len(layers)} = no attention), got {pos}"
        )
    if _has_attention(config):
        c = ch * layers[config.attention_layer_position][1]
        if c // 8 < 1:
            raise ValueError(f"attention width {c}: needs C//8 >= 1")


def small_config(
    layers: Iterable[Sequence],
    ch: int = 8,
    z_dim: int = 16,
    num_classes: int = 10,
    attention_layer_position: int = 2,
    n_stats: int = 51,
    eps: float = 1e-4,
    output_dim: int | None = None,
) -> BigGANConfig:
    """A validated ``BigGANConfig`` for a small BigGAN-deep.

    ``layers`` is a list of ``(upsample, in_mult, out_mult)``; ``output_dim`` defaults to
    ``4 * 2**(number of upsampling layers)``. ``class_embed_dim`` (unused by the model) is
    set to ``z_dim``. ``attention_layer_position == len(layers)`` means "no attention".
    """
    layers = _norm_layers(layers)
    if output_dim is None:
        output_dim = 4 * 2 ** sum(1 for up, _, _ in layers if up)
    config = BigGANConfig(
        output_dim=int(output_dim),
        z_dim=int(z_dim),
        class_embed_dim=int(z_dim),
        channel_width=int(ch),
        num_classes=int(num_classes),
        layers=layers,
        attention_layer_position=int(attention_layer_position),
        eps=float(eps),
        n_stats=int(n_stats),
    )
    validate_config(config)
    return config


# 6 blocks, 24 CCBN sites (700 channels), attention at 8x8 with C=64; mixes all four
# (upsample?, halve?) block kinds. Output 32x32.
TINY = small_config(
    [(False, 16, 16), (True, 16, 8), (False, 8, 4), (True, 4, 4), (False, 4, 2), (True, 2, 1)],
    ch=8, z_dim=16, num_classes=10, attention_layer_position=2,
)
# Attention before the first block (at 4x4, so the pooled keys are 2x2; every GenBlock's
# module index is shifted by one); other ch / z_dim / num_classes. Output 32x32.
TINY_ATTN_FIRST = small_config(
    [(True, 16, 8), (True, 8, 4), (False, 4, 2), (True, 2, 1)],
    ch=4, z_dim=8, num_classes=7, attention_layer_position=0,
)
# Attention before the last block at 16x16 with C=12 (C//8 = 1, C//2 = 6: floor division
# matters), two non-upsampling blocks first, ch=6. Output 16x16.
TINY_LATE_ATTN = small_config(
    [(False, 16, 8), (False, 8, 8), (True, 8, 4), (True, 4, 2), (False, 2, 1)],
    ch=6, z_dim=10, num_classes=5, attention_layer_position=4,
)
# No SelfAttn at all (attention_layer_position == len(layers)): layers.{m} with m == i.
# Legal for the package, never used by the real checkpoints. Output 32x32.
TINY_NO_ATTN = small_config(
    [(False, 16, 8), (True, 8, 4), (True, 4, 2), (True, 2, 1)],
    ch=8, z_dim=16, num_classes=10, attention_layer_position=4,
)

SMALL_CONFIGS: dict[str, BigGANConfig] = {
    "tiny": TINY,
    "tiny_attn_first": TINY_ATTN_FIRST,
    "tiny_late_attn": TINY_LATE_ATTN,
    "tiny_no_attn": TINY_NO_ATTN,
}

_PRESET_LAYERS_256 = [
    (False, 16, 16), (True, 16, 16), (False, 16, 16), (True, 16, 8), (False, 8, 8),
    (True, 8, 8), (False, 8, 8), (True, 8, 4), (False, 4, 4), (True, 4, 2),
    (False, 2, 2), (True, 2, 1),
]
_PRESET_LAYERS = {
    128: [
        (False, 16, 16), (True, 16, 16), (False, 16, 16), (True, 16, 8), (False, 8, 8),
        (True, 8, 4), (False, 4, 4), (True, 4, 2), (False, 2, 2), (True, 2, 1),
    ],
    256: _PRESET_LAYERS_256,
    512: _PRESET_LAYERS_256 + [(False, 1, 1), (True, 1, 1)],
}
PRESET_NAMES = ("biggan-deep-128", "biggan-deep-256", "biggan-deep-512")


def preset(name: str | int) -> BigGANConfig:
    """The real config of ``biggan-deep-{128,256,512}`` (also accepts ``"128"`` or ``128``).

    Same values as ``convert_tf_to_pytorch.BigGAN{128,256,512}`` and the shipped
    ``config.json`` (layers stored as lists, as after the JSON round trip).
    """
    key = str(name).strip().lower()
    if key.startswith("biggan-deep-"):
        key = key[len("biggan-deep-"):]
    if key not in {"128", "256", "512"}:
        raise ValueError(f"unknown preset {name!r}; expected one of {', '.join(PRESET_NAMES)}")
    res = int(key)
    config = BigGANConfig(
        output_dim=res, z_dim=128, class_embed_dim=128, channel_width=128, num_classes=1000,
        layers=_norm_layers(_PRESET_LAYERS[res]), attention_layer_position=8, eps=1e-4,
        n_stats=51,
    )
    validate_config(config)
    return config


def get_config(name: str) -> BigGANConfig:
    """A fresh copy of a named small config (``tiny``, ...) or preset (``biggan-deep-128``)."""
    key = name.strip().lower()
    if key in SMALL_CONFIGS:
        return copy.deepcopy(SMALL_CONFIGS[key])
    try:
        return preset(key)
    except ValueError:
        pass
    names = list(SMALL_CONFIGS) + list(PRESET_NAMES)
    raise ValueError(f"unknown config {name!r}; expected one of {', '.join(names)}")


# --------------------------------------------------------------------------------------
# Random weights
# --------------------------------------------------------------------------------------


def conditional_bn_sites(model: BigGAN) -> list[tuple[str, BigGANBatchNorm]]:
    """``(module name, module)`` of every conditional BN, in forward order."""
    return [
        (name, mod)
        for name, mod in model.named_modules()
        if isinstance(mod, BigGANBatchNorm) and mod.conditional
    ]


def _sn_modules(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if hasattr(m, "weight_orig")]


def _singular_vectors(weight: torch.Tensor, eps: float):
    """Converged top singular vectors ``(u, v)`` (float32) of ``weight.reshape(out, -1)``.

    Top eigenvector of the smaller Gram matrix (``W W^T`` or ``W^T W``, float64, ``eigh``),
    then two torch-style power iterations (``v = normalize(W^T u)``, ``u = normalize(W v)``,
    normalize eps = config eps), so the stored pair is a fixed point of the iteration torch
    runs in train mode and the eval-mode sigma ``u . W v`` is the spectral norm.
    """
    w = weight.detach().reshape(weight.shape[0], -1).double()
    m, n = w.shape
    if m <= n:
        u = torch.linalg.eigh(w @ w.t())[1][:, -1]
    else:
        u = F.normalize(w @ torch.linalg.eigh(w.t() @ w)[1][:, -1], dim=0, eps=eps)
    if u[torch.argmax(u.abs())] < 0:  # canonical sign
        u = -u
    v = None
    for _ in range(2):
        v = F.normalize(w.t() @ u, dim=0, eps=eps)
        u = F.normalize(w @ v, dim=0, eps=eps)
    return u.float(), v.float()


def _trunc_normal(shape, gen: torch.Generator) -> torch.Tensor:
    out = torch.empty(shape)
    torch.nn.init.trunc_normal_(out, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=gen)
    return out


def one_hot(classes, num_classes: int) -> torch.Tensor:
    """``[len(classes), num_classes]`` float32 one-hot rows."""
    idx = torch.as_tensor(np.asarray(classes, dtype=np.int64).reshape(-1))
    out = torch.zeros(idx.shape[0], num_classes, dtype=torch.float32)
    out[torch.arange(idx.shape[0]), idx] = 1.0
    return out


def _param_count(config: BigGANConfig) -> int:
    """Cheap (no allocation) estimate of the parameter count, for the 'auto' defaults."""
    ch, zc = config.channel_width, 2 * config.z_dim
    n = config.num_classes * config.z_dim + zc * 16 * 16 * ch + 9 * ch * ch
    for _, a, b in config.layers:
        c, o = ch * a, ch * b
        m = c // 4
        n += 2 * zc * (c + 3 * m) + c * m + 18 * m * m + m * o
    return n


def _calibrate_stats(
    model: BigGAN, rows: Sequence[int], batch: int, gen: torch.Generator
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-BN batch statistics of the model's own activations at the truncation of each
    calibration row (row r <-> truncation r/(n_stats-1); row 0 has z = 0).

    Runs the generator once per row; a forward pre-hook replaces all rows of every BN's
    statistics by the batch mean/var of its input before it normalises, so every BN sees
    standardised inputs. Returns name -> (means [len(rows), C], vars [len(rows), C]).
    """
    config = model.config
    bns = [(n, m) for n, m in model.named_modules() if isinstance(m, BigGANBatchNorm)]
    got: dict[str, list] = {n: [] for n, _ in bns}

    def make_hook(name):
        def hook(mod, args):
            x = args[0]
            mean = x.mean(dim=(0, 2, 3))
            var = x.var(dim=(0, 2, 3), unbiased=False)
            mod.running_means.copy_(mean.expand_as(mod.running_means))
            mod.running_vars.copy_(var.expand_as(mod.running_vars))
            got[name].append((mean.double().numpy().copy(), var.double().numpy().copy()))

        return hook

    handles = [m.register_forward_pre_hook(make_hook(n)) for n, m in bns]
    step = 1.0 / (config.n_stats - 1)
    try:
        with torch.no_grad():
            for r in rows:
                t = r * step
                z = t * _trunc_normal((batch, config.z_dim), gen)
                classes = torch.randint(0, config.num_classes, (batch,), generator=gen)
                cond = torch.cat([z, model.embeddings(one_hot(classes, config.num_classes))], 1)
                # truncation == step gives coef 0 / row 1 exactly; all rows are overwritten
                # by the hook anyway.
                model.generator(cond, step)
    finally:
        for h in handles:
            h.remove()
    return {
        n: (np.stack([m for m, _ in v]), np.stack([s for _, s in v])) for n, v in got.items()
    }


def random_biggan(
    config: BigGANConfig,
    seed: int = 0,
    *,
    calibrate: bool = True,
    calib_rows: Sequence[int] | None = None,
    calib_batch: int | None = None,
    scale_row_spread: float = 0.6,
    embed_std: float = 1.0,
    rgb_std: float | None = 0.6,
) -> BigGAN:
    """An eval-mode ``BigGAN(config)`` with random weights and a sensible forward pass.

    Deterministic given ``seed`` (a private ``torch.Generator``; the global torch RNG is
    left untouched). Weights:

    * ``embeddings.weight ~ N(0, embed_std^2)``;
    * every spectrally normalised ``weight_orig ~ N(0, 1)``; for the CCBN ``scale``/``offset``
      maps each row is multiplied by ``exp(scale_row_spread * N(0,1))`` so a few channels
      have effective rows of norm ~1 and ``1 + scale(c)`` goes <= 0 for some classes/latents;
      conv/linear biases ``~ N(0, 0.05^2)``;
    * ``weight_u``/``weight_v``: the converged top singular vectors (Gram-matrix ``eigh``, then two
      torch-style power iterations), so eval-mode sigma = spectral norm of ``weight_orig``;
    * attention ``gamma ~ U(0.3, 0.7)``; final BN ``weight ~ N(1, 0.25^2)``,
      ``bias ~ N(0, 0.25^2)``;
    * BN statistics: if ``calibrate``, the batch
      mean/var of each BN's input at every row of ``calib_rows`` (default every 5th row for
      small models, every 10th for big ones, plus the last row; other rows
      linearly interpolated), batch ``calib_batch`` (default 16 small / 2 big; row 0 is
      z = 0); otherwise means ~ N(0, 0.1^2), vars 1.
      Then every row gets independent jitter: means += 0.1 sqrt(var) N(0,1), vars *=
      exp(0.25 N(0,1)), so adjacent rows differ detectably;
    * if calibrating and ``rgb_std`` is not None, the final BN's weight and bias are then
      rescaled so the pre-tanh RGB (without the conv bias) has std ``rgb_std`` at
      truncation 0.4: outputs have std ~0.3-0.6 and few saturated pixels at any size.

    Runs with one torch thread (restored afterwards), so the weights are bit-identical
    for a given seed, config and torch build whatever ``torch.get_num_threads()`` is.
    Small configs take under a second; ``preset("biggan-deep-128")`` about 10 s.
    """
    validate_config(config)
    small = _param_count(config) < 5_000_000
    n_stats = config.n_stats
    if calib_rows is None:
        calib_rows = list(range(0, n_stats, 5 if small else 10)) + [n_stats - 1]
    calib_rows = sorted({int(r) for r in calib_rows})
    if calibrate and (not calib_rows or calib_rows[0] < 0 or calib_rows[-1] >= n_stats):
        raise ValueError(f"calib_rows must be non-empty and within [0, {n_stats})")
    if calib_batch is None:
        calib_batch = 16 if small else 2

    # One torch thread while building: the result does not depend on the caller's thread
    # count, and it is much faster on a loaded 2-core machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _random_biggan(
            config, int(seed), calibrate, calib_rows, calib_batch, scale_row_spread, embed_std,
            rgb_std,
        )
    finally:
        torch.set_num_threads(threads)


def _random_biggan(
    config, seed, calibrate, calib_rows, calib_batch, scale_row_spread, embed_std, rgb_std
):
    n_stats = config.n_stats
    gen = torch.Generator().manual_seed(seed)
    # BigGAN(config) draws default inits from the global RNG: keep the caller's RNG intact.
    with torch.random.fork_rng(devices=[]):
        model = BigGAN(config)
    model.eval()
    eps = config.eps
    ccbn_maps = {id(lin) for _, bn in conditional_bn_sites(model) for lin in (bn.scale, bn.offset)}

    with torch.no_grad():
        emb = model.embeddings.weight
        emb.copy_(embed_std * torch.randn(emb.shape, generator=gen))
        for _, mod in _sn_modules(model):
            w = torch.randn(mod.weight_orig.shape, generator=gen)
            if id(mod) in ccbn_maps:
                rows = torch.exp(scale_row_spread * torch.randn(w.shape[0], generator=gen))
                w = w * rows.reshape(-1, *([1] * (w.dim() - 1)))
            mod.weight_orig.copy_(w)
            if getattr(mod, "bias", None) is not None:
                mod.bias.copy_(0.05 * torch.randn(mod.bias.shape, generator=gen))
            u, v = _singular_vectors(mod.weight_orig, eps)
            mod.weight_u.copy_(u)
            mod.weight_v.copy_(v)
        for _, mod in model.named_modules():
            if hasattr(mod, "gamma") and isinstance(mod.gamma, torch.nn.Parameter):
                mod.gamma.copy_(0.3 + 0.4 * torch.rand(mod.gamma.shape, generator=gen))
        fbn = model.generator.bn
        fbn.weight.copy_(1.0 + 0.25 * torch.randn(fbn.weight.shape, generator=gen))
        fbn.bias.copy_(0.25 * torch.randn(fbn.bias.shape, generator=gen))

        bns = [(n, m) for n, m in model.named_modules() if isinstance(m, BigGANBatchNorm)]
        if calibrate:
            stats = _calibrate_stats(model, calib_rows, calib_batch, gen)
        for name, mod in bns:
            c = mod.num_features
            if calibrate:
                cm, cv = stats[name]
                idx = np.arange(n_stats)
                means = np.stack([np.interp(idx, calib_rows, cm[:, j]) for j in range(c)], 1)
                varis = np.stack([np.interp(idx, calib_rows, cv[:, j]) for j in range(c)], 1)
                floor = max(1e-3, 1e-2 * float(np.median(varis)))
                varis = np.maximum(varis, floor)
                means = torch.from_numpy(means).float()
                varis = torch.from_numpy(varis).float()
            else:
                means = 0.1 * torch.randn(n_stats, c, generator=gen)
                varis = torch.ones(n_stats, c)
            means = means + 0.1 * varis.sqrt() * torch.randn(n_stats, c, generator=gen)
            varis = varis * torch.exp(0.25 * torch.randn(n_stats, c, generator=gen))
            mod.running_means.copy_(means)
            mod.running_vars.copy_(varis)
        if calibrate and rgb_std is not None:
            _scale_output(model, calib_batch, gen, rgb_std)
    return model


def _scale_output(model: BigGAN, batch: int, gen: torch.Generator, target: float) -> None:
    """Scale the final BN's weight and bias so that, at truncation 0.4, the RGB channels of
    ``conv_to_rgb`` (minus its bias) have std ``target`` before the tanh (ReLU is positively
    homogeneous and sigma cancels any scaling of the SN conv, so this is the one knob)."""
    config = model.config
    rgb = model.generator.conv_to_rgb
    got = {}

    def hook(mod, args, out):
        got["x"] = out[:, :3] - mod.bias[:3].reshape(1, 3, 1, 1)

    handle = rgb.register_forward_hook(hook)
    try:
        z = 0.4 * _trunc_normal((batch, config.z_dim), gen)
        classes = torch.randint(0, config.num_classes, (batch,), generator=gen)
        model(z, one_hot(classes, config.num_classes), 0.4)
    finally:
        handle.remove()
    std = float(got["x"].std())
    if std > 0 and math.isfinite(std):
        fbn = model.generator.bn
        fbn.weight.mul_(target / std)
        fbn.bias.mul_(target / std)


# --------------------------------------------------------------------------------------
# Checkpoint files
# --------------------------------------------------------------------------------------


def load_checkpoint(directory: str | os.PathLike) -> BigGAN:
    """``BigGAN.from_pretrained(directory)`` switched to eval mode (it returns train mode)."""
    return BigGAN.from_pretrained(str(directory)).eval()


def save_checkpoint(
    model: BigGAN,
    config: BigGANConfig | None,
    directory: str | os.PathLike,
    *,
    verify: bool = True,
) -> Path:
    """Write ``directory/pytorch_model.bin`` (``torch.save(model.state_dict())``) and
    ``directory/config.json`` (``config.to_json_string()``), the two files
    ``BigGAN.from_pretrained(directory)`` reads. ``config`` defaults to ``model.config``.

    With ``verify`` (default) the directory is loaded back with ``from_pretrained`` and
    must give the same key set and bit-identical tensors (``from_pretrained`` loads with
    ``strict=False``, which would hide a mismatch). Returns the directory.
    """
    config = model.config if config is None else config
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = model.state_dict()
    torch.save(state, directory / WEIGHTS_NAME)
    (directory / CONFIG_NAME).write_text(config.to_json_string(), encoding="utf-8")
    if verify:
        loaded = load_checkpoint(directory)
        back = loaded.state_dict()
        if set(back) != set(state):
            missing, extra = set(state) - set(back), set(back) - set(state)
            raise RuntimeError(
                f"reloaded keys differ: missing {sorted(missing)[:5]}, extra {sorted(extra)[:5]}"
            )
        for k, v in state.items():
            if back[k].shape != v.shape or not torch.equal(back[k], v):
                raise RuntimeError(f"reloaded tensor {k} differs from the saved one")
    return directory


# --------------------------------------------------------------------------------------
# Forward with probes
# --------------------------------------------------------------------------------------


def reference_forward(model: BigGAN, z, class_vector, truncation: float):
    """Run ``model(z, class_vector, truncation)`` in eval mode under ``torch.no_grad``.

    ``z`` ``[B, z_dim]`` and ``class_vector`` ``[B, num_classes]`` may be numpy arrays or
    tensors (cast to float32). Returns ``(image, probes)``: ``image`` is the NCHW float32
    numpy output in [-1, 1]; ``probes`` maps each conditional BN's module name
    (``generator.layers.{m}.bn_{k}``, forward order) to ``{"gamma": 1 + scale(c),
    "beta": offset(c), "t": -beta/gamma}``, each ``[B, C]`` float32 (gamma/beta are the
    exact tensors the model uses; t is computed in float32 numpy). The model's previous
    train/eval mode is restored afterwards.
    """
    z_t = torch.as_tensor(z, dtype=torch.float32)
    y_t = torch.as_tensor(class_vector, dtype=torch.float32)
    captured: dict[str, dict[str, torch.Tensor]] = {}
    handles = []
    for name, bn in conditional_bn_sites(model):
        captured[name] = {}

        def make(name, key):
            def hook(mod, args, out):
                captured[name][key] = out.detach().clone()

            return hook

        handles.append(bn.scale.register_forward_hook(make(name, "scale")))
        handles.append(bn.offset.register_forward_hook(make(name, "offset")))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            image = model(z_t, y_t, truncation)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    probes = {}
    for name, d in captured.items():
        gamma = (1 + d["scale"]).numpy()
        beta = d["offset"].numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            t = -beta / gamma
        probes[name] = {"gamma": gamma, "beta": beta, "t": t}
    return image.numpy(), probes


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    names = list(SMALL_CONFIGS) + list(PRESET_NAMES)
    p = argparse.ArgumentParser(
        prog="python -m convert.reference",
        description="Write a random-weight BigGAN-deep checkpoint directory "
        "(pytorch_model.bin + config.json) loadable by BigGAN.from_pretrained.",
    )
    p.add_argument("--config", default="tiny", help=f"one of: {', '.join(names)}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--no-calibrate", action="store_true", help="skip BN-statistics calibration")
    args = p.parse_args(argv)
    try:
        config = get_config(args.config)
    except ValueError as e:
        p.error(str(e))
    model = random_biggan(config, args.seed, calibrate=not args.no_calibrate)
    out = save_checkpoint(model, config, args.out)
    b = 4
    z = truncated_noise_sample(b, config.z_dim, 0.4, args.seed)
    y = one_hot(np.arange(b) % config.num_classes, config.num_classes)
    image, _ = reference_forward(model, z, y, 0.4)
    summary = {
        "out": str(out),
        "config": args.config,
        "seed": args.seed,
        "keys": len(model.state_dict()),
        "parameters": sum(p.numel() for p in model.parameters()),
        "output_shape": list(image.shape),
        "output_std_t0.4": float(image.std()),
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
