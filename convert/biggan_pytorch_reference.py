"""A PyTorch reference of the original BigGAN generator (BigGAN-PyTorch, Brock et al.).

BigGAN-PyTorch (``ajbrock/BigGAN-PyTorch``) is not on PyPI, so this module re-implements
its ``BigGAN.Generator`` in eval mode, written from a reading of its ``BigGAN.py`` and
``layers.py``. The code is ours; the *module structure and state-dict keys are exactly
theirs*, so a real ``G_ema.pth`` loads with ``load_state_dict(strict=True)``:

* ``shared.weight``: class embedding ``[n_classes, shared_dim]`` (``G_shared`` only; it is
  not spectrally normalised);
* ``linear.{weight,bias,u0,sv0}``: SNLinear ``dim_z // num_slots -> C0 * bw * bw``;
* ``blocks.{i}.0.conv1/conv2`` (3x3) and ``conv_sc`` (1x1): SNConv2d, each with
  ``weight``, ``bias``, ``u{k}``, ``sv{k}``;
* ``blocks.{i}.0.bn1/bn2``: CCBN buffers ``stored_mean``, ``stored_var`` and maps
  ``gain``/``bias`` -- SNLinear without bias (``weight``, ``u{k}``, ``sv{k}``) when
  ``G_shared``, else ``nn.Embedding(n_classes, C)`` (``weight`` only);
* ``blocks.{i}.1.gamma`` and ``blocks.{i}.1.{theta,phi,g,o}.{weight,u{k},sv{k}}``: the
  self-attention after block ``i`` when its output resolution is listed in ``G_attn``;
* ``output_layer.0.{gain,bias,stored_mean,stored_var}`` (plain BN), ``output_layer.1`` the
  ReLU (no state), ``output_layer.2.{weight,bias,u0,sv0}`` (3x3 SNConv2d to RGB).

Eval-mode forward (``G(z, y)``, ``y`` already embedded: ``y = G.shared(classes)``)::

    hier:     zs = split(z, z_chunk); h = linear(zs[0]); cond_i = cat([y, zs[i+1]], 1)
    not hier: h = linear(z); cond_i = y
    h = h.view(B, C0, bw, bw)                    # NCHW: unit index = c*bw*bw + row*bw + col
    block i:  a = relu(bn1(h, cond_i)); a = conv1(up2(a)); a = relu(bn2(a, cond_i))
              h = conv2(a) + conv_sc(up2(h))     # up2 = nearest x2; then optional attention
    out = tanh(conv_out(relu(bn_out(h))))

with ``ccbn(x, c) = (x - stored_mean) / sqrt(stored_var + BN_eps) * (1 + W_g c) + W_b c``
(the channel probe is ``t = -bias / gain`` with ``gain = 1 + W_g c``) and the output BN
``bn_out(x) = (x - stored_mean) / sqrt(stored_var + 1e-5) * gain + bias`` -- its eps is
always 1e-5 because ``BigGAN.Generator`` never passes ``BN_eps`` to ``layers.bn``.

Spectral norm is ``layers.SN.W_`` in eval mode: one power-iteration step from the stored
``u`` buffers that does *not* update them; the weight used is ``weight / sv`` with the
singular value of that step (``sv0`` is only a training log and is never used).

The module also provides:

* :func:`get_config` / :data:`CONFIG_NAMES`: training-argument dicts (tiny test configs,
  the ``BigGAN_ch96_bs256x8_138k`` release, the TF-Hub conversions' ``get_config``);
* :func:`random_generator`: a random-weight eval-mode model with a sensible forward;
* :func:`save_checkpoint_dir` (``G_ema.pth`` / ``G.pth`` + ``state_dict.pth`` as
  ``utils.save_weights`` writes them) and :func:`save_tfhub_file` (``biggan-{res}.pth``);
* :meth:`BigGANGenerator.forward_per_block` and :func:`probe_forward` (gains, biases,
  probes and block outputs as NHWC numpy).

CLI: ``python -m convert.biggan_pytorch_reference --config NAME --seed 0 --out DIR``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from jaxaware.errors import JaxawareError

__all__ = [
    "CONFIG_NAMES",
    "TINY_CONFIG_NAMES",
    "TRAIN_DEFAULTS",
    "GENERATOR_DEFAULTS",
    "ACTIVATIONS",
    "g_arch",
    "generator_settings",
    "full_training_config",
    "get_config",
    "power_iteration",
    "SpectralConv2d",
    "SpectralLinear",
    "ConditionalBN",
    "OutputBN",
    "UpBlock",
    "SelfAttention",
    "Passthrough",
    "BigGANGenerator",
    "build_generator",
    "class_condition",
    "Probed",
    "probe_forward",
    "site_names",
    "random_generator",
    "save_checkpoint_dir",
    "save_tfhub_file",
    "load_generator_state",
    "main",
]

# --------------------------------------------------------------------------------------
# Configs
# --------------------------------------------------------------------------------------

# ``utils.activation_dict``: the string options of --G_nl / --D_nl.
ACTIVATIONS = {"inplace_relu": True, "relu": False, "ir": True}

# Defaults of ``utils.prepare_parser()`` (the training arguments every run's config holds).
TRAIN_DEFAULTS: dict = {
    # data
    "dataset": "I128_hdf5", "augment": False, "num_workers": 8, "pin_memory": True,
    "shuffle": False, "load_in_mem": False, "use_multiepoch_sampler": False,
    # model
    "model": "BigGAN", "G_param": "SN", "D_param": "SN", "G_ch": 64, "D_ch": 64,
    "G_depth": 1, "D_depth": 1, "D_wide": True, "G_shared": False, "shared_dim": 0,
    "dim_z": 128, "z_var": 1.0, "hier": False, "cross_replica": False, "mybn": False,
    "G_nl": "relu", "D_nl": "relu", "G_attn": "64", "D_attn": "64", "norm_style": "bn",
    # init
    "seed": 0, "G_init": "ortho", "D_init": "ortho", "skip_init": False,
    # optimiser
    "G_lr": 5e-5, "D_lr": 2e-4, "G_B1": 0.0, "D_B1": 0.0, "G_B2": 0.999, "D_B2": 0.999,
    # batch, parallel, precision
    "batch_size": 64, "G_batch_size": 0, "num_G_accumulations": 1, "num_D_steps": 2,
    "num_D_accumulations": 1, "split_D": False, "num_epochs": 100, "parallel": False,
    "G_fp16": False, "D_fp16": False, "D_mixed_precision": False,
    "G_mixed_precision": False, "accumulate_stats": False, "num_standing_accumulations": 16,
    # bookkeeping
    "G_eval_mode": False, "save_every": 2000, "num_save_copies": 2, "num_best_copies": 2,
    "which_best": "IS", "no_fid": False, "test_every": 5000, "num_inception_images": 50000,
    "hashname": False, "base_root": "", "data_root": "data", "weights_root": "weights",
    "logs_root": "logs", "samples_root": "samples", "pbar": "mine", "name_suffix": "",
    "experiment_name": "", "config_from_name": False,
    # EMA
    "ema": False, "ema_decay": 0.9999, "use_ema": False, "ema_start": 0,
    # numerics and SVs
    "adam_eps": 1e-8, "BN_eps": 1e-5, "SN_eps": 1e-8, "num_G_SVs": 1, "num_D_SVs": 1,
    "num_G_SV_itrs": 1, "num_D_SV_itrs": 1,
    # ortho reg, train fn, resume, logs
    "G_ortho": 0.0, "D_ortho": 0.0, "toggle_grads": True, "which_train_fn": "GAN",
    "load_weights": "", "resume": False, "logstyle": "%3.3e", "log_G_spectra": False,
    "log_D_spectra": False, "sv_log_interval": 10,
}

# Keyword defaults of ``BigGAN.Generator.__init__`` (used when a config lacks the key;
# note G_shared=True and SN_eps=1e-12 here, unlike the parser's False and 1e-8).
GENERATOR_DEFAULTS: dict = {
    "G_ch": 64, "dim_z": 128, "bottom_width": 4, "resolution": 128, "G_kernel_size": 3,
    "G_attn": "64", "n_classes": 1000, "num_G_SVs": 1, "num_G_SV_itrs": 1,
    "G_shared": True, "shared_dim": 0, "hier": False, "cross_replica": False,
    "mybn": False, "BN_eps": 1e-5, "SN_eps": 1e-12, "G_param": "SN", "norm_style": "bn",
}

# (in_channels, out_channels) multipliers of ``G_arch(ch, attention)[resolution]``.
_ARCH = {
    32: ([4, 4, 4], [4, 4, 4]),
    64: ([16, 16, 8, 4], [16, 8, 4, 2]),
    128: ([16, 16, 8, 4, 2], [16, 8, 4, 2, 1]),
    256: ([16, 16, 8, 8, 4, 2], [16, 8, 8, 4, 2, 1]),
    512: ([16, 16, 8, 8, 4, 2, 1], [16, 8, 8, 4, 2, 1, 1]),
}


def _parse_attention(attention: str) -> list[int]:
    try:
        return [int(item) for item in str(attention).split("_")]
    except ValueError:
        raise JaxawareError(
            f"G_attn {attention!r} is not an underscore-separated list of resolutions; "
            "accepted: e.g. '64', '32_64', or '0' for no attention"
        ) from None


def g_arch(ch: int, attention: str, resolution: int) -> dict:
    """``BigGAN.G_arch(ch, attention)[resolution]``.

    Every block upsamples x2; block ``i`` outputs resolution ``2**(i+3)``. ``attention``
    maps each resolution ``2**k`` (``k = 3..log2(resolution)``) to whether it is listed in
    the underscore-separated ``attention`` string; resolutions that match no block (``'0'``,
    or ``'128'`` on a 64 model) are silently ignored, as in the original.
    """
    if resolution not in _ARCH:
        raise JaxawareError(
            f"resolution {resolution} has no G_arch entry; accepted: "
            f"{', '.join(map(str, sorted(_ARCH)))}"
        )
    ins, outs = _ARCH[resolution]
    listed = _parse_attention(attention)
    top = int(math.log2(resolution))
    return {
        "in_channels": [ch * m for m in ins],
        "out_channels": [ch * m for m in outs],
        "upsample": [True] * len(ins),
        "resolution": [2 ** (i + 3) for i in range(len(ins))],
        "attention": {2**k: (2**k in listed) for k in range(3, top + 1)},
    }


def _activation_inplace(value, key: str) -> bool:
    if isinstance(value, nn.ReLU):
        return bool(value.inplace)
    if isinstance(value, str) and value in ACTIVATIONS:
        return ACTIVATIONS[value]
    raise JaxawareError(
        f"{key} {value!r} is not supported; accepted: an nn.ReLU or one of "
        f"{', '.join(ACTIVATIONS)} (BigGAN-PyTorch only ships ReLU)"
    )


def generator_settings(config: dict | str) -> dict:
    """The generator-relevant settings of a training-argument dict (or a config name).

    Missing keys take ``BigGAN.Generator``'s keyword defaults (:data:`GENERATOR_DEFAULTS`),
    exactly as ``Generator(**config)`` would. Derived values follow the original:
    ``shared_dim = shared_dim or dim_z`` (taken *before* the hier rounding), and with
    ``hier`` ``num_slots = n_blocks + 1``, ``z_chunk_size = dim_z // num_slots`` and
    ``dim_z`` is rounded down to ``z_chunk_size * num_slots``. ``G_kernel_size`` is stored
    but, as in the original, unused (convs are always 3x3).

    Refused with a :class:`JaxawareError` (one line): ``G_param`` other than ``'SN'``,
    ``norm_style`` other than ``'bn'``, ``cross_replica``/``mybn`` (they move the CCBN
    statistics into a ``bn`` sub-module with other keys), an activation other than ReLU,
    ``G_shared=False`` with ``hier=True`` (the original's ``cat([y, z_chunk])`` of a class
    index with a float chunk fails), an unknown resolution, attention with fewer than 8
    channels, ``num_G_SVs``/``num_G_SV_itrs`` < 1, and ``hier`` with ``dim_z < num_slots``.
    """
    if isinstance(config, str):
        config = get_config(config)
    if not isinstance(config, dict):
        raise JaxawareError(
            f"a BigGAN-PyTorch config is a dict of training arguments, got "
            f"{type(config).__name__}"
        )
    s = {k: config.get(k, v) for k, v in GENERATOR_DEFAULTS.items()}
    if s["G_param"] != "SN":
        raise JaxawareError(
            f"G_param {s['G_param']!r} is not supported; accepted: 'SN' (spectral norm)"
        )
    if s["norm_style"] != "bn":
        raise JaxawareError(
            f"norm_style {s['norm_style']!r} is not supported; accepted: 'bn'"
        )
    for key in ("cross_replica", "mybn"):
        if s[key]:
            raise JaxawareError(
                f"{key}=True is not supported (its CCBN statistics live in a 'bn' sub-module "
                f"with other keys); accepted: {key}=False, as in the released checkpoints"
            )
    if not s["G_shared"] and s["hier"]:
        raise JaxawareError(
            "G_shared=False with hier=True is broken in BigGAN-PyTorch (it concatenates a "
            "class index with the z chunks); accepted: G_shared=True, or hier=False"
        )
    s["G_activation_inplace"] = _activation_inplace(
        config.get("G_activation", nn.ReLU(inplace=False)), "G_activation"
    )
    res = int(s["resolution"])
    arch = g_arch(int(s["G_ch"]), str(s["G_attn"]), res)
    for key in ("num_G_SVs", "num_G_SV_itrs"):
        if int(s[key]) < 1:
            raise JaxawareError(f"{key} must be >= 1, got {s[key]}")
    for i, r in enumerate(arch["resolution"]):
        if arch["attention"][r] and arch["out_channels"][i] // 8 < 1:
            raise JaxawareError(
                f"attention at {r}x{r} has {arch['out_channels'][i]} channels; it needs >= 8"
            )
    n_blocks = len(arch["in_channels"])
    dim_z = int(s["dim_z"])
    s["shared_dim"] = int(s["shared_dim"]) if int(s["shared_dim"]) > 0 else dim_z
    if s["hier"]:
        s["num_slots"] = n_blocks + 1
        s["z_chunk_size"] = dim_z // s["num_slots"]
        if s["z_chunk_size"] < 1:
            raise JaxawareError(
                f"hier needs dim_z >= {s['num_slots']} (one unit per slot), got {dim_z}"
            )
        s["dim_z"] = s["z_chunk_size"] * s["num_slots"]
    else:
        s["num_slots"], s["z_chunk_size"], s["dim_z"] = 1, 0, dim_z
    for key in ("G_ch", "n_classes", "num_G_SVs", "num_G_SV_itrs", "bottom_width"):
        s[key] = int(s[key])
    s["resolution"] = res
    s["BN_eps"], s["SN_eps"] = float(s["BN_eps"]), float(s["SN_eps"])
    s["G_shared"], s["hier"] = bool(s["G_shared"]), bool(s["hier"])
    s["arch"] = arch
    s["n_blocks"] = n_blocks
    return s


def full_training_config(config: dict | str) -> dict:
    """The training-argument dict as ``train.py`` stores it in ``state_dict['config']``.

    ``utils.prepare_parser()`` defaults, updated by ``config``, then the values the model
    was actually built with (``G_shared``, ``shared_dim``, ... as resolved by
    :func:`generator_settings`; ``dim_z`` stays as given, the original keeps the
    un-rounded value in its config) and the ``train.py`` derived entries: ``resolution``,
    ``n_classes`` and ``G_activation`` / ``D_activation`` as ``nn.ReLU`` objects (from
    ``G_nl`` / ``D_nl`` through ``utils.activation_dict`` unless already given).
    """
    if isinstance(config, str):
        config = get_config(config)
    s = generator_settings(config)
    out = dict(TRAIN_DEFAULTS)
    out.update({k: v for k, v in config.items()})
    for key in ("G_ch", "G_attn", "n_classes", "num_G_SVs", "num_G_SV_itrs", "G_shared",
                "hier", "BN_eps", "SN_eps", "G_param", "norm_style", "resolution"):
        out[key] = config.get(key, s[key])
    out["shared_dim"] = config.get("shared_dim", GENERATOR_DEFAULTS["shared_dim"])
    for act, nl in (("G_activation", "G_nl"), ("D_activation", "D_nl")):
        value = config.get(act)
        if isinstance(value, nn.ReLU):
            out[act] = nn.ReLU(inplace=value.inplace)
        else:
            name = value if isinstance(value, str) else out.get(nl, "relu")
            out[act] = nn.ReLU(inplace=_activation_inplace(name, act))
    return out


def _tiny(**kw) -> dict:
    base = {
        "dataset": "C10", "G_ch": 4, "D_ch": 4, "G_init": "ortho", "BN_eps": 1e-5,
        "SN_eps": 1e-6, "G_eval_mode": True, "ema": True, "use_ema": True,
        "batch_size": 16,
    }
    base.update(kw)
    return full_training_config(base)


def _release_138k() -> dict:
    # scripts/launch_BigGAN_bs256x8.sh on the parser defaults, then train.py's derived keys.
    return full_training_config({
        "dataset": "I128_hdf5", "parallel": True, "shuffle": True, "num_workers": 8,
        "batch_size": 256, "load_in_mem": True, "num_G_accumulations": 8,
        "num_D_accumulations": 8, "num_D_steps": 1, "G_lr": 1e-4, "D_lr": 4e-4,
        "D_B2": 0.999, "G_B2": 0.999, "G_attn": "64", "D_attn": "64",
        "G_nl": "inplace_relu", "D_nl": "inplace_relu", "SN_eps": 1e-6, "BN_eps": 1e-5,
        "adam_eps": 1e-6, "G_ortho": 0.0, "G_shared": True, "G_init": "ortho",
        "D_init": "ortho", "hier": True, "dim_z": 120, "shared_dim": 128,
        "G_eval_mode": True, "G_ch": 96, "D_ch": 96, "ema": True, "use_ema": True,
        "ema_start": 20000, "test_every": 2000, "save_every": 1000, "num_best_copies": 5,
        "num_save_copies": 2, "seed": 0, "use_multiepoch_sampler": True,
        "resolution": 128, "n_classes": 1000,
    })


def _tfhub(resolution: int) -> dict:
    # TFHub/converter.py get_config(resolution): the dict the converter builds G from.
    return {
        "G_param": "SN", "D_param": "SN", "G_ch": 96, "D_ch": 96, "D_wide": True,
        "G_shared": True, "shared_dim": 128,
        "dim_z": {128: 120, 256: 140, 512: 128}[resolution], "hier": True,
        "cross_replica": False, "mybn": False, "G_activation": nn.ReLU(inplace=True),
        "G_attn": {128: "64", 256: "128", 512: "64"}[resolution], "norm_style": "bn",
        "G_init": "ortho", "skip_init": True, "no_optim": True, "G_fp16": False,
        "G_mixed_precision": False, "accumulate_stats": False,
        "num_standing_accumulations": 16, "G_eval_mode": True, "BN_eps": 1e-4,
        "SN_eps": 1e-4, "num_G_SVs": 1, "num_G_SV_itrs": 1, "resolution": resolution,
        "n_classes": 1000,
    }


_CONFIG_BUILDERS = {
    # 3 blocks (16 ch each), hier (4 slots x 4), shared 8-d embedding, attention at 16x16.
    "tiny-32-hier": lambda: _tiny(
        resolution=32, n_classes=5, dim_z=16, shared_dim=8, G_shared=True, hier=True,
        G_attn="16",
    ),
    # 3 blocks, no hier, no shared embedding (CCBN maps are nn.Embedding), no attention.
    "tiny-32-flat": lambda: _tiny(
        resolution=32, n_classes=6, dim_z=12, G_shared=False, hier=False, G_attn="0",
        G_nl="inplace_relu", D_nl="inplace_relu",
    ),
    # 4 blocks, hier with dim_z 22 rounded down to 20 (5 slots x 4), shared_dim 0 -> 22
    # (taken before rounding), attention at 16 and 32, two singular vectors per SN layer.
    "tiny-64-hier": lambda: _tiny(
        dataset="I64_hdf5", resolution=64, n_classes=7, dim_z=22, shared_dim=0,
        G_shared=True, hier=True, G_attn="16_32", num_G_SVs=2, num_G_SV_itrs=2,
        BN_eps=1e-4, SN_eps=1e-8,
    ),
    # 4 blocks, shared embedding without hier (CCBN input = shared_dim), attention at 32.
    "tiny-64-shared-flat": lambda: _tiny(
        dataset="I64_hdf5", resolution=64, n_classes=4, dim_z=16, shared_dim=10,
        G_shared=True, hier=False, G_attn="32",
    ),
    "biggan-128-138k": _release_138k,
    "biggan-128": lambda: _tfhub(128),
    "biggan-256": lambda: _tfhub(256),
    "biggan-512": lambda: _tfhub(512),
}
CONFIG_NAMES = tuple(_CONFIG_BUILDERS)
TINY_CONFIG_NAMES = tuple(n for n in CONFIG_NAMES if n.startswith("tiny"))


def get_config(name: str) -> dict:
    """A fresh training-argument dict by name (see :data:`CONFIG_NAMES`).

    ``tiny-*`` are small test models (ch 4, 5-7 classes) covering hier on/off, shared on/off,
    attention off/once/twice, ``num_G_SVs`` 2 and the ``dim_z`` rounding;
    ``biggan-128-138k`` is the ``BigGAN_ch96_bs256x8_138k`` release
    (``scripts/launch_BigGAN_bs256x8.sh``); ``biggan-128/256/512`` are
    ``TFHub/converter.py``'s ``get_config``.
    """
    key = str(name).strip().lower()
    if key not in _CONFIG_BUILDERS:
        raise JaxawareError(
            f"unknown BigGAN-PyTorch config {name!r}; accepted: {', '.join(CONFIG_NAMES)}"
        )
    return _CONFIG_BUILDERS[key]()


# --------------------------------------------------------------------------------------
# Spectral norm (layers.SN)
# --------------------------------------------------------------------------------------


def _project_out(x: torch.Tensor, basis: list[torch.Tensor]) -> torch.Tensor:
    # layers.gram_schmidt: x -= (y x^T) y / (y y^T) for every earlier vector y.
    for y in basis:
        x = x - torch.mm(y, x.t()) * y / torch.mm(y, y.t())
    return x


def power_iteration(w_mat: torch.Tensor, us: Sequence[torch.Tensor], update: bool, eps: float):
    """One step of ``layers.power_iteration`` for every stored ``u`` (each ``[1, out]``).

    For ``i = 0..num_svs-1``::

        v_i  = normalize(GS(u_i W, v_0..v_{i-1}))      # [1, in]
        u_i' = normalize(GS(v_i W^T, u_0'..u_{i-1}'))  # [1, out]
        sv_i = v_i W^T u_i'^T

    ``normalize`` is ``F.normalize(., eps=eps)`` (``x / max(|x|, eps)``), ``GS`` subtracts
    the projections on the earlier vectors. The vectors are computed without gradient,
    ``sv_i`` with gradient through ``W`` (as in the original). With ``update`` the ``u``
    buffers are overwritten in place (train mode); eval mode never updates them.
    Returns ``(svs, new_us, vs)``.
    """
    new_us, vs, svs = [], [], []
    for i, u in enumerate(us):
        with torch.no_grad():
            v = F.normalize(_project_out(torch.matmul(u, w_mat), vs), eps=eps)
            vs.append(v)
            u_new = F.normalize(_project_out(torch.matmul(v, w_mat.t()), new_us), eps=eps)
            new_us.append(u_new)
            if update:
                us[i][:] = u_new
        svs.append(torch.squeeze(torch.matmul(torch.matmul(v, w_mat.t()), u_new.t())))
    return svs, new_us, vs


class _SpectralNorm:
    """Mixin reproducing ``layers.SN``: buffers ``u{i}`` ``[1, out]`` and ``sv{i}`` ``[1]``."""

    def _init_sn(self, num_svs: int, num_itrs: int, num_outputs: int, eps: float) -> None:
        self.num_svs, self.num_itrs, self.sn_eps = int(num_svs), int(num_itrs), float(eps)
        for i in range(self.num_svs):
            self.register_buffer(f"u{i}", torch.randn(1, num_outputs))
            self.register_buffer(f"sv{i}", torch.ones(1))

    @property
    def u(self) -> list[torch.Tensor]:
        return [getattr(self, f"u{i}") for i in range(self.num_svs)]

    @property
    def sv(self) -> list[torch.Tensor]:
        return [getattr(self, f"sv{i}") for i in range(self.num_svs)]

    def sn_weight(self) -> torch.Tensor:
        """``layers.SN.W_``: ``weight / sv_0`` after ``num_itrs`` power-iteration steps.

        In eval mode the steps start from the stored ``u`` and do not update it, so every
        step gives the same ``sv_0``; in train mode ``u`` and the logged ``sv`` buffers are
        updated, as during training.
        """
        w_mat = self.weight.view(self.weight.size(0), -1)
        svs = None
        for _ in range(self.num_itrs):
            svs, _, _ = power_iteration(w_mat, self.u, update=self.training, eps=self.sn_eps)
        if self.training:
            with torch.no_grad():
                for buf, value in zip(self.sv, svs):
                    buf[:] = value
        return self.weight / svs[0]


class SpectralConv2d(nn.Conv2d, _SpectralNorm):
    """``layers.SNConv2d``: keys ``weight``, ``bias`` (optional), ``u{i}``, ``sv{i}``."""

    def __init__(self, in_channels, out_channels, kernel_size=3, padding=1, bias=True,
                 num_svs=1, num_itrs=1, eps=1e-12):
        nn.Conv2d.__init__(self, in_channels, out_channels, kernel_size, 1, padding, 1, 1, bias)
        self._init_sn(num_svs, num_itrs, out_channels, eps)

    def forward(self, x):
        return F.conv2d(x, self.sn_weight(), self.bias, self.stride, self.padding,
                        self.dilation, self.groups)


class SpectralLinear(nn.Linear, _SpectralNorm):
    """``layers.SNLinear``: keys ``weight``, ``bias`` (optional), ``u{i}``, ``sv{i}``."""

    def __init__(self, in_features, out_features, bias=True, num_svs=1, num_itrs=1,
                 eps=1e-12):
        nn.Linear.__init__(self, in_features, out_features, bias)
        self._init_sn(num_svs, num_itrs, out_features, eps)

    def forward(self, x):
        return F.linear(x, self.sn_weight(), self.bias)


# --------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------


class Passthrough(nn.Module):
    """``layers.identity`` (``G.shared`` when not ``G_shared``): returns its input."""

    def forward(self, x):
        return x


class ConditionalBN(nn.Module):
    """``layers.ccbn`` with ``norm_style='bn'``: buffers ``stored_mean``, ``stored_var``.

    ``gain`` / ``bias`` are ``SNLinear(input_size, C, bias=False)`` of the condition
    (``G_shared``) or ``nn.Embedding(n_classes, C)`` of the class index. Eval mode::

        out = batch_norm(x, stored_mean, stored_var, eps) * (1 + gain(y)) + bias(y)

    In train mode ``F.batch_norm`` uses batch moments and updates the stored ones with
    momentum 0.1 (unbiased variance), as the original. If ``record`` is a list, every
    forward appends ``(1 + gain(y), bias(y))`` as ``[B, C]`` tensors (for probes).
    """

    def __init__(self, output_size, input_size, which_linear, eps=1e-5):
        super().__init__()
        self.output_size, self.input_size = output_size, input_size
        self.gain = which_linear(input_size, output_size)
        self.bias = which_linear(input_size, output_size)
        self.eps = eps
        self.record: list | None = None
        self.register_buffer("stored_mean", torch.zeros(output_size))
        self.register_buffer("stored_var", torch.ones(output_size))

    def affine(self, y):
        """``(1 + gain(y), bias(y))``, each ``[B, C]``."""
        return 1 + self.gain(y), self.bias(y)

    def forward(self, x, y):
        gain, bias = self.affine(y)
        if self.record is not None:
            self.record.append((gain.detach().clone(), bias.detach().clone()))
        gain = gain.view(y.size(0), -1, 1, 1)
        bias = bias.view(y.size(0), -1, 1, 1)
        out = F.batch_norm(x, self.stored_mean, self.stored_var, None, None, self.training,
                           0.1, self.eps)
        return out * gain + bias


class OutputBN(nn.Module):
    """``layers.bn``: parameters ``gain``, ``bias``; buffers ``stored_mean``, ``stored_var``.

    ``eps`` is the class default 1e-5 in every BigGAN generator (``BN_eps`` is not passed).
    """

    def __init__(self, output_size, eps=1e-5, momentum=0.1):
        super().__init__()
        self.output_size = output_size
        self.gain = nn.Parameter(torch.ones(output_size))
        self.bias = nn.Parameter(torch.zeros(output_size))
        self.eps, self.momentum = eps, momentum
        self.register_buffer("stored_mean", torch.zeros(output_size))
        self.register_buffer("stored_var", torch.ones(output_size))

    def forward(self, x, y=None):
        return F.batch_norm(x, self.stored_mean, self.stored_var, self.gain, self.bias,
                            self.training, self.momentum, self.eps)


class UpBlock(nn.Module):
    """``layers.GBlock`` with a nearest x2 upsample (children ``conv1``, ``conv2``,
    ``conv_sc``, ``bn1``, ``bn2`` in the original's registration order)::

        h = conv1(up(relu(bn1(x, y)))); h = conv2(relu(bn2(h, y))); return h + conv_sc(up(x))
    """

    def __init__(self, in_channels, out_channels, which_conv, which_bn, inplace=False):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.activation = nn.ReLU(inplace=inplace)
        self.conv1 = which_conv(in_channels, out_channels)
        self.conv2 = which_conv(out_channels, out_channels)
        # learnable_sc = in != out or upsample: always true here (every block upsamples).
        self.conv_sc = which_conv(in_channels, out_channels, kernel_size=1, padding=0)
        self.bn1 = which_bn(in_channels)
        self.bn2 = which_bn(out_channels)

    @staticmethod
    def upsample(x):
        return F.interpolate(x, scale_factor=2)  # mode='nearest'

    def forward(self, x, y):
        h = self.activation(self.bn1(x, y))
        h = self.upsample(h)
        x = self.upsample(x)
        h = self.conv1(h)
        h = self.activation(self.bn2(h, y))
        h = self.conv2(h)
        return h + self.conv_sc(x)


class SelfAttention(nn.Module):
    """``layers.Attention`` (SA-GAN non-local block), all convs 1x1 SN without bias::

        theta = theta(x) [B, C/8, HW]; phi = maxpool2(phi(x)) [B, C/8, HW/4]
        g = maxpool2(g(x)) [B, C/2, HW/4]; beta = softmax(theta^T phi, -1) [B, HW, HW/4]
        return x + gamma * o((g beta^T).view(B, C/2, H, W))

    (HW flattened row-major in NCHW; channel counts use floor division.)
    """

    def __init__(self, ch, which_conv):
        super().__init__()
        self.ch = ch
        self.theta = which_conv(ch, ch // 8, kernel_size=1, padding=0, bias=False)
        self.phi = which_conv(ch, ch // 8, kernel_size=1, padding=0, bias=False)
        self.g = which_conv(ch, ch // 2, kernel_size=1, padding=0, bias=False)
        self.o = which_conv(ch // 2, ch, kernel_size=1, padding=0, bias=False)
        self.gamma = nn.Parameter(torch.tensor(0.0))

    def forward(self, x, y=None):
        h, w = x.shape[2], x.shape[3]
        theta = self.theta(x).view(-1, self.ch // 8, h * w)
        phi = F.max_pool2d(self.phi(x), [2, 2]).view(-1, self.ch // 8, h * w // 4)
        g = F.max_pool2d(self.g(x), [2, 2]).view(-1, self.ch // 2, h * w // 4)
        beta = F.softmax(torch.bmm(theta.transpose(1, 2), phi), -1)
        o = self.o(torch.bmm(g, beta.transpose(1, 2)).view(-1, self.ch // 2, h, w))
        return self.gamma * o + x


# --------------------------------------------------------------------------------------
# Generator
# --------------------------------------------------------------------------------------


class BigGANGenerator(nn.Module):
    """``BigGAN.Generator`` of BigGAN-PyTorch (eval-mode semantics; see the module doc).

    Built from a training-argument dict or a config name (:func:`get_config`); the
    resolved settings are in ``self.settings`` and the full training config (for
    ``state_dict.pth``) in ``self.training_config``. Attributes mirror the original:
    ``dim_z`` (rounded with ``hier``), ``shared_dim``, ``num_slots``, ``z_chunk_size``,
    ``n_classes``, ``G_shared``, ``hier``, ``bottom_width``, ``arch``.

    Parameters start at torch's default init (the original's ortho init is skipped): load
    a state dict or use :func:`random_generator`. ReLUs are never in-place here (same
    numbers; safe with hooks), whatever ``G_nl`` says.
    """

    def __init__(self, config: dict | str):
        super().__init__()
        s = generator_settings(config)
        self.settings = s
        self.training_config = full_training_config(
            get_config(config) if isinstance(config, str) else config
        )
        self.ch, self.dim_z, self.bottom_width = s["G_ch"], s["dim_z"], s["bottom_width"]
        self.resolution, self.n_classes = s["resolution"], s["n_classes"]
        self.G_shared, self.shared_dim, self.hier = s["G_shared"], s["shared_dim"], s["hier"]
        self.num_slots, self.z_chunk_size = s["num_slots"], s["z_chunk_size"]
        self.BN_eps, self.SN_eps = s["BN_eps"], s["SN_eps"]
        self.arch = s["arch"]
        self.activation = nn.ReLU(inplace=False)
        nsv, nit, sn_eps = s["num_G_SVs"], s["num_G_SV_itrs"], s["SN_eps"]

        def which_conv(cin, cout, kernel_size=3, padding=1, bias=True):
            return SpectralConv2d(cin, cout, kernel_size, padding, bias, nsv, nit, sn_eps)

        def which_linear(cin, cout, bias=True):
            return SpectralLinear(cin, cout, bias, nsv, nit, sn_eps)

        if self.G_shared:
            bn_map = lambda i, o: which_linear(i, o, bias=False)  # noqa: E731
            bn_in = self.shared_dim + self.z_chunk_size
        else:
            bn_map, bn_in = nn.Embedding, self.n_classes

        def which_bn(channels):
            return ConditionalBN(channels, bn_in, bn_map, eps=self.BN_eps)

        self.shared = (nn.Embedding(self.n_classes, self.shared_dim) if self.G_shared
                       else Passthrough())
        c0 = self.arch["in_channels"][0]
        self.linear = which_linear(self.dim_z // self.num_slots, c0 * self.bottom_width**2)
        blocks = []
        for i, (cin, cout) in enumerate(zip(self.arch["in_channels"],
                                            self.arch["out_channels"])):
            block = [UpBlock(cin, cout, which_conv, which_bn)]
            if self.arch["attention"][self.arch["resolution"][i]]:
                block.append(SelfAttention(cout, which_conv))
            blocks.append(nn.ModuleList(block))
        self.blocks = nn.ModuleList(blocks)
        cl = self.arch["out_channels"][-1]
        self.output_layer = nn.Sequential(OutputBN(cl), self.activation, which_conv(cl, 3))

    @property
    def n_blocks(self) -> int:
        return len(self.blocks)

    def _check_z(self, z):
        if z.dim() != 2 or z.shape[1] != self.dim_z:
            raise ValueError(
                f"z must be [B, {self.dim_z}] (dim_z after the hier rounding), "
                f"got {list(z.shape)}"
            )

    def _trunk(self, z0, conds):
        h = self.linear(z0)
        h = h.view(h.size(0), -1, self.bottom_width, self.bottom_width)
        for index, blocklist in enumerate(self.blocks):
            for block in blocklist:
                h = block(h, conds[index])
        return torch.tanh(self.output_layer(h))

    def forward(self, z, y):
        """``G(z, y)`` as the original: ``y`` is ``G.shared(classes)`` ``[B, shared_dim]``
        (any mixture of embedding rows works) or, without ``G_shared``, class indices
        ``[B]`` (int64). Returns NCHW images in [-1, 1]."""
        self._check_z(z)
        if self.hier:
            zs = torch.split(z, self.z_chunk_size, 1)
            z = zs[0]
            ys = [torch.cat([y, item], 1) for item in zs[1:]]
        else:
            ys = [y] * len(self.blocks)
        return self._trunk(z, ys)

    def forward_per_block(self, z, ys: Sequence):
        """Like :meth:`forward` but block ``i`` is conditioned on its own ``ys[i]`` (same
        kind as ``y`` in :meth:`forward`); with ``hier`` block ``i`` still gets z chunk
        ``i + 1``: ``cond_i = cat([ys[i], zs[i+1]], 1)``. ``len(ys)`` must be n_blocks."""
        self._check_z(z)
        if len(ys) != self.n_blocks:
            raise ValueError(f"need {self.n_blocks} per-block conditions, got {len(ys)}")
        if self.hier:
            zs = torch.split(z, self.z_chunk_size, 1)
            conds = [torch.cat([y_i, zs[i + 1]], 1) for i, y_i in enumerate(ys)]
            z0 = zs[0]
        else:
            conds, z0 = list(ys), z
        return self._trunk(z0, conds)

    def ccbns(self) -> list[tuple[str, ConditionalBN]]:
        """``(site name, module)`` of every CCBN in forward order (``block{i}.bn{1,2}``)."""
        return [(f"block{i}.bn{k}", getattr(bl[0], f"bn{k}"))
                for i, bl in enumerate(self.blocks) for k in (1, 2)]

    def sn_modules(self) -> list[tuple[str, nn.Module]]:
        return [(n, m) for n, m in self.named_modules() if isinstance(m, _SpectralNorm)]


def build_generator(config: dict | str) -> BigGANGenerator:
    """An eval-mode :class:`BigGANGenerator` with default-init weights (load a state dict)."""
    return BigGANGenerator(config).eval()


def load_generator_state(G: BigGANGenerator, state: dict, allow_missing_sv: bool = False):
    """``G.load_state_dict`` from torch tensors or numpy arrays, strict.

    With ``allow_missing_sv`` the ``sv{i}`` buffers may be absent (TF-Hub conversions
    have none: the converter loads them with ``strict=False``); they are only a training
    log and do not change the forward. Any other missing or unexpected key is an error.
    """
    tensors = {k: torch.as_tensor(np.asarray(v)) if not isinstance(v, torch.Tensor) else v
               for k, v in state.items()}
    own = G.state_dict()
    missing = [k for k in own if k not in tensors]
    if allow_missing_sv:
        for k in [k for k in missing if re.fullmatch(r".*\.sv\d+", k)]:
            tensors[k] = own[k]
        missing = [k for k in own if k not in tensors]
    extra = [k for k in tensors if k not in own]
    if missing or extra:
        raise JaxawareError(
            f"state dict does not fit this BigGAN-PyTorch config: missing {missing[:5]}, "
            f"unexpected {extra[:5]}"
        )
    G.load_state_dict(tensors, strict=True)
    return G


# --------------------------------------------------------------------------------------
# Conditions and probes
# --------------------------------------------------------------------------------------


def class_condition(G: BigGANGenerator, classes) -> torch.Tensor:
    """The ``y`` that :meth:`BigGANGenerator.forward` takes for these classes.

    ``classes``: int labels ``[B]`` -> ``G.shared(labels)`` (``[B, shared_dim]``) with
    ``G_shared``, the int64 labels themselves otherwise; or (``G_shared`` only) class
    weights ``[B, n_classes]`` -> ``weights @ shared.weight`` (soft labels / mixtures).
    """
    arr = np.asarray(classes.detach().cpu() if isinstance(classes, torch.Tensor) else classes)
    if arr.ndim == 1:
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError("class labels must be integers")
        if arr.size and (arr.min() < 0 or arr.max() >= G.n_classes):
            raise ValueError(f"class labels must be in [0, {G.n_classes})")
        idx = torch.as_tensor(arr.astype(np.int64))
        return G.shared(idx) if G.G_shared else idx
    if arr.ndim == 2 and arr.shape[1] == G.n_classes and G.G_shared:
        return torch.as_tensor(arr.astype(np.float32)) @ G.shared.weight
    raise ValueError(
        "classes must be int labels [B], or class weights [B, n_classes] for a G_shared model"
    )


def site_names(G: BigGANGenerator) -> list[str]:
    """``block{i}.bn1``, ``block{i}.bn2`` for every block, in forward order."""
    return [name for name, _ in G.ccbns()]


class Probed(NamedTuple):
    """What :func:`probe_forward` returns (all float32 numpy)."""

    image: np.ndarray  # [B, H, W, 3] in [-1, 1]
    probes: "OrderedDict[str, dict[str, np.ndarray]]"  # site -> gamma, beta, t, each [B, C]
    blocks: "OrderedDict[str, np.ndarray]"  # block{i}.out -> [B, h, w, C] NHWC


def _as_input(x, like_long: bool = False):
    if isinstance(x, torch.Tensor):
        return x
    arr = np.asarray(x)
    if like_long or np.issubdtype(arr.dtype, np.integer):
        return torch.as_tensor(arr.astype(np.int64))
    return torch.as_tensor(arr.astype(np.float32))


def probe_forward(G: BigGANGenerator, z, y) -> Probed:
    """Run ``G`` in eval mode (no grad) and capture every CCBN and block output.

    ``y``: one condition as for :meth:`BigGANGenerator.forward`, or a list/tuple of
    ``n_blocks`` per-block conditions (:meth:`BigGANGenerator.forward_per_block`). Build
    conditions with :func:`class_condition`. ``z``/``y`` may be numpy or torch.

    Returns :class:`Probed`: the image NHWC; per site ``block{i}.bn{k}`` (forward order)
    ``gamma = 1 + W_g cond`` and ``beta = W_b cond`` (the exact tensors used) and
    ``t = -beta / gamma`` (float32 numpy; inf/nan where gamma is 0); per block
    ``block{i}.out`` = ``conv2(...) + conv_sc(...)`` after the residual sum and *before*
    the block's attention, NHWC. The model's train/eval mode is restored afterwards.
    """
    z_t = _as_input(z)
    per_block = isinstance(y, (list, tuple))
    ys = [_as_input(v) for v in y] if per_block else _as_input(y)
    sites = G.ccbns()
    for _, bn in sites:
        bn.record = []
    outs: dict[int, torch.Tensor] = {}

    def make_hook(i):
        def hook(mod, args, out):
            outs[i] = out.detach().clone()
        return hook

    handles = [bl[0].register_forward_hook(make_hook(i)) for i, bl in enumerate(G.blocks)]
    was_training = G.training
    G.eval()
    try:
        with torch.no_grad():
            image = G.forward_per_block(z_t, ys) if per_block else G(z_t, ys)
        probes: OrderedDict[str, dict[str, np.ndarray]] = OrderedDict()
        for name, bn in sites:
            (gain, bias), = bn.record
            gamma, beta = gain.numpy(), bias.numpy()
            with np.errstate(divide="ignore", invalid="ignore"):
                t = (-beta / gamma).astype(np.float32)
            probes[name] = {"gamma": gamma, "beta": beta, "t": t}
    finally:
        for h in handles:
            h.remove()
        for _, bn in sites:
            bn.record = None
        G.train(was_training)
    blocks = OrderedDict(
        (f"block{i}.out", outs[i].permute(0, 2, 3, 1).contiguous().numpy())
        for i in range(G.n_blocks)
    )
    return Probed(image.permute(0, 2, 3, 1).contiguous().numpy(), probes, blocks)


# --------------------------------------------------------------------------------------
# Random weights
# --------------------------------------------------------------------------------------


def _param_count(s: dict) -> int:
    ins, outs = s["arch"]["in_channels"], s["arch"]["out_channels"]
    n = sum(9 * a * b + 9 * b * b + a * b for a, b in zip(ins, outs))
    return n + s["dim_z"] * ins[0] * 16


def random_generator(
    config: dict | str,
    seed: int = 0,
    *,
    calibrate: bool = True,
    calib_batch: int | None = None,
    power_steps: int = 8,
    row_spread: float = 0.6,
    embed_std: float = 1.0,
    rgb_std: float | None = 0.6,
) -> BigGANGenerator:
    """An eval-mode :class:`BigGANGenerator` with random weights and a sensible forward.

    Deterministic for a given ``seed`` (private ``torch.Generator``; the caller's global
    torch RNG is untouched; one torch thread while building). Weights:

    * every SN ``weight ~ N(0, 1/fan_in)`` (scaled normal; not orthogonal, whose flat
      spectrum would make every ``u`` a singular vector); for the CCBN ``gain``/``bias``
      maps each output row is further scaled by ``exp(row_spread N(0,1))``, so
      ``gain = 1 + W_g cond`` is negative for some (class, latent); conv/linear biases
      ``~ N(0, 0.05^2)``;
    * ``shared.weight ~ N(0, embed_std^2)``; without ``G_shared`` the CCBN embeddings are
      ``~ N(0, 0.6^2)`` (so some ``1 + gain`` < 0 as well);
    * ``u{i}`` start random and take ``power_steps`` train-mode steps of
      ``layers.power_iteration`` (updating ``u`` and the logged ``sv``, as training does
      with a frozen weight): ``u0`` is close to, not exactly, the top singular vector, so
      the eval-time step still moves sigma slightly and ``sv0`` is a realistic log;
    * attention ``gamma ~ U(0.3, 0.7)``; output BN ``gain ~ N(1, 0.25^2)``,
      ``bias ~ N(0, 0.25^2)``;
    * with ``calibrate``, one forward on ``calib_batch`` (16 small / 2 big) latents
      ``z ~ N(0, I)`` and random classes, in which a pre-hook sets every BN's
      ``stored_mean`` / ``stored_var`` to the batch mean / biased variance of its input
      (floored at 1e-2 x its median, >= 1e-4) before it normalises: every BN then sees
      standardised inputs and activations stay O(1) through the network. Then, if
      ``rgb_std`` is set, the output BN's gain and bias are rescaled so the pre-tanh RGB
      (minus the conv bias) has std ``rgb_std`` on that batch.
    """
    s = generator_settings(config)
    if calib_batch is None:
        calib_batch = 16 if _param_count(s) < 5_000_000 else 2
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            G = BigGANGenerator(config)
        G.eval()
        gen = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            _randomize(G, gen, power_steps, row_spread, embed_std)
            if calibrate:
                _calibrate(G, gen, calib_batch, rgb_std)
    finally:
        torch.set_num_threads(threads)
    return G


def _randomize(G, gen, power_steps, row_spread, embed_std):
    ccbn_maps = {id(m) for _, bn in G.ccbns() for m in (bn.gain, bn.bias)}
    if G.G_shared:
        G.shared.weight.copy_(embed_std * torch.randn(G.shared.weight.shape, generator=gen))
    for _, mod in G.sn_modules():
        w = mod.weight
        fan_in = w[0].numel()
        new = torch.randn(w.shape, generator=gen) / math.sqrt(fan_in)
        if id(mod) in ccbn_maps:
            rows = torch.exp(row_spread * torch.randn(w.shape[0], generator=gen))
            new = new * rows.reshape(-1, *([1] * (w.dim() - 1)))
        w.copy_(new)
        if mod.bias is not None:
            mod.bias.copy_(0.05 * torch.randn(mod.bias.shape, generator=gen))
        for u in mod.u:
            u.copy_(torch.randn(u.shape, generator=gen))
        mod.train()
        for _ in range(power_steps):
            mod.sn_weight()
        mod.eval()
    if not G.G_shared:
        for _, bn in G.ccbns():
            for emb in (bn.gain, bn.bias):
                emb.weight.copy_(0.6 * torch.randn(emb.weight.shape, generator=gen))
    for bl in G.blocks:
        if len(bl) > 1:
            bl[1].gamma.copy_(0.3 + 0.4 * torch.rand((), generator=gen))
    obn = G.output_layer[0]
    obn.gain.copy_(1.0 + 0.25 * torch.randn(obn.gain.shape, generator=gen))
    obn.bias.copy_(0.25 * torch.randn(obn.bias.shape, generator=gen))


def _calibrate(G, gen, batch, rgb_std):
    def pre_hook(mod, args):
        x = args[0]
        mean = x.mean(dim=(0, 2, 3))
        var = x.var(dim=(0, 2, 3), unbiased=False)
        floor = max(1e-4, 1e-2 * float(var.median()))
        mod.stored_mean.copy_(mean)
        mod.stored_var.copy_(var.clamp_min(floor))

    bns = [bn for _, bn in G.ccbns()] + [G.output_layer[0]]
    got = {}

    def rgb_hook(mod, args, out):
        got["x"] = out - mod.bias.reshape(1, -1, 1, 1)

    handles = [bn.register_forward_pre_hook(pre_hook) for bn in bns]
    handles.append(G.output_layer[2].register_forward_hook(rgb_hook))
    try:
        z = torch.randn((batch, G.dim_z), generator=gen)
        classes = torch.randint(0, G.n_classes, (batch,), generator=gen)
        G(z, class_condition(G, classes))
    finally:
        for h in handles:
            h.remove()
    if rgb_std is not None:
        std = float(got["x"].std())
        if std > 0 and math.isfinite(std):
            obn = G.output_layer[0]
            obn.gain.mul_(rgb_std / std)
            obn.bias.mul_(rgb_std / std)


# --------------------------------------------------------------------------------------
# Checkpoint files
# --------------------------------------------------------------------------------------


def _join(base: str, suffix: str) -> str:
    # utils.join_strings('_', [base, suffix]) + '.pth'
    return "_".join(x for x in (base, suffix) if x) + ".pth"


def _atomic_save(obj, path: Path, legacy_format: bool) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        torch.save(obj, tmp, _use_new_zipfile_serialization=not legacy_format)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


DEFAULT_TRAIN_STATE = {"itr": 0, "epoch": 0, "save_num": 0, "save_best_num": 0,
                       "best_IS": 0, "best_FID": 999999}


def save_checkpoint_dir(
    G: BigGANGenerator,
    config: dict | str | None,
    out_dir: str | os.PathLike,
    ema: bool = True,
    also_G: bool = False,
    suffix: str = "",
    *,
    legacy_format: bool = False,
    train_state: dict | None = None,
) -> Path:
    """Write the files of ``utils.save_weights`` that hold the generator.

    * ``G_ema{_suffix}.pth`` (if ``ema``) and ``G{_suffix}.pth`` (if ``also_G`` or not
      ``ema``): ``torch.save(G.state_dict())`` (the same weights in both);
    * ``state_dict{_suffix}.pth``: ``{itr, epoch, save_num, save_best_num, best_IS,
      best_FID, config}`` with ``train_state`` overriding ``train.py``'s initial values and
      ``config`` the full training-argument dict (:func:`full_training_config` of
      ``config``, default ``G.training_config``) holding ``G_activation`` /
      ``D_activation`` as ``nn.ReLU`` objects, as the real file does.

    ``legacy_format`` writes torch's pre-1.6 (non-zip) serialization, which is what the
    2019 release files use (there the ReLUs are pickled with their source code as
    ``'module'`` records). D, the optimisers and the other copies are not written. Each
    file is written to a temporary name and renamed. Returns the directory.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    full = G.training_config if config is None else full_training_config(config)
    state = {k: v for k, v in DEFAULT_TRAIN_STATE.items()}
    state.update(train_state or {})
    state["config"] = full
    weights = G.state_dict()
    if ema:
        _atomic_save(weights, out / _join("G_ema", suffix), legacy_format)
    if also_G or not ema:
        _atomic_save(weights, out / _join("G", suffix), legacy_format)
    _atomic_save(state, out / _join("state_dict", suffix), legacy_format)
    return out


def save_tfhub_file(G: BigGANGenerator, out_dir: str | os.PathLike,
                    legacy_format: bool = False) -> Path:
    """Write ``biggan-{resolution}.pth`` as ``TFHub/converter.py`` does: the G state dict
    only, without the ``sv{i}`` entries (the converter builds its dict from the TF-Hub
    variables and loads it with ``strict=False`` to "ignore missing sv0 entries").
    Returns the file path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = OrderedDict((k, v) for k, v in G.state_dict().items()
                        if not re.fullmatch(r".*\.sv\d+", k))
    path = out / f"biggan-{G.resolution}.pth"
    _atomic_save(state, path, legacy_format)
    return path


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m convert.biggan_pytorch_reference",
        description="Write a random-weight original-BigGAN checkpoint directory in the "
        "BigGAN-PyTorch format (G_ema.pth + state_dict.pth, or a TF-Hub-style "
        "biggan-{res}.pth).",
    )
    p.add_argument("--config", default="tiny-32-hier", help=f"one of: {', '.join(CONFIG_NAMES)}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--also-G", action="store_true", help="also write G.pth")
    p.add_argument("--suffix", default="", help="file suffix, e.g. best0 -> G_ema_best0.pth")
    p.add_argument("--legacy-format", action="store_true",
                   help="torch's pre-1.6 serialization, as the 2019 release files")
    p.add_argument("--tfhub-file", action="store_true",
                   help="write only biggan-{res}.pth (TF-Hub converter style)")
    p.add_argument("--no-calibrate", action="store_true", help="skip BN-statistics calibration")
    args = p.parse_args(argv)
    try:
        config = get_config(args.config)
    except JaxawareError as e:
        p.error(str(e))
    G = random_generator(config, args.seed, calibrate=not args.no_calibrate)
    if args.tfhub_file:
        written = [str(save_tfhub_file(G, args.out, args.legacy_format))]
    else:
        out = save_checkpoint_dir(G, config, args.out, also_G=args.also_G, suffix=args.suffix,
                                  legacy_format=args.legacy_format)
        written = sorted(str(f) for f in out.iterdir() if f.suffix == ".pth")
    b = 2
    gen = torch.Generator().manual_seed(args.seed)
    z = torch.randn((b, G.dim_z), generator=gen)
    classes = np.arange(b) % G.n_classes
    probed = probe_forward(G, z, class_condition(G, classes))
    gammas = np.concatenate([v["gamma"].ravel() for v in probed.probes.values()])
    print(json.dumps({
        "files": written,
        "config": args.config,
        "seed": args.seed,
        "keys": len(G.state_dict()),
        "parameters": sum(q.numel() for q in G.parameters()),
        "output_shape": list(probed.image.shape),
        "output_std": float(probed.image.std()),
        "negative_gain_fraction": float((gammas < 0).mean()),
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
