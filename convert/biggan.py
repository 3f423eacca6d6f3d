"""Convert a BigGAN-PyTorch (original BigGAN) generator checkpoint to jaxaware's Flax params.

Input: a directory as BigGAN-PyTorch's ``utils.save_weights`` writes it (``G_ema.pth`` or
``G.pth``, and ``state_dict.pth`` whose ``config`` holds the architecture), or a TF-Hub
conversion ``biggan-{res}.pth`` from that repository's ``TFHub/converter.py`` (no training
state: name the architecture with ``--preset biggan-128/256/512``). Files are read without
running code (:mod:`convert.biggan_pytorch_io`).

The conversion is a rule table driven by the *target* tree (:mod:`jaxaware.models.biggan`):
every checkpoint tensor is used exactly once with the expected shape and finite values, or
the conversion stops with an error naming the key and nothing is written.

How our parameters differ from the torch ones:

* Spectral norm is folded in exactly as BigGAN-PyTorch's ``layers.SN.W_`` computes it in
  eval mode: one power-iteration step from the stored ``u0`` *without updating it*
  (``v = normalize(u0 W)``, ``u = normalize(v W^T)``, ``sigma = v W^T u^T`` with
  ``W = weight.view(out, -1)`` and ``normalize(x) = x / max(|x|, SN_eps)``), then
  ``weight / sigma``. The logged ``sv0`` is read (every tensor is used) but not used;
  TF-Hub files have no ``sv0``. A ``u0`` so degenerate that ``sigma`` is 0 is an error.
  With ``num_G_SVs > 1`` the weight is still divided by the first singular value (the
  Gram-Schmidt of the others starts after it), so ``u1...`` are read and not used.
* Linear weights ``[out, in]`` become kernels ``[in, out]``; convs ``[O, I, kh, kw]``
  become ``[kh, kw, I, O]``; 1x1 convs (``conv_sc``, attention) become ``[I, O]``.
* ``linear``'s output units are reordered from the reference's NCHW view
  (``c * 16 + row * 4 + col``) to our NHWC one (``(row * 4 + col) * C0 + c``).
* Without ``G_shared`` the CCBN maps are ``nn.Embedding`` tables (no spectral norm):
  ``[n_classes, C]`` kept as a matrix applied to the class vector.
* The stored running statistics become statistic row 0 (``[1, C]``); the attention
  ``gamma`` is a scalar.
"""

from __future__ import annotations

import json
import os

import numpy as np

from convert.rules import Reader, Rule, apply_rules, conv, conv1x1, linear
from jaxaware.errors import JaxawareError
from jaxaware.models.biggan import PRESETS, BigGANConfig

BIGGAN_PYTORCH = "BigGAN (BigGAN-PyTorch)"


def sn_weight(reader: Reader, prefix: str, shape: tuple[int, ...], eps: float) -> np.ndarray:
    """``weight / sigma`` of a BigGAN-PyTorch SN layer in eval mode (see module docstring)."""
    w = reader.take(f"{prefix}.weight", shape)
    u = reader.take(f"{prefix}.u0", (1, shape[0]))
    if reader.has(f"{prefix}.sv0"):
        reader.take(f"{prefix}.sv0", (1,))  # only logged by the reference
    i = 1  # further singular vectors (num_G_SVs > 1) do not change the eval-mode weight
    while reader.has(f"{prefix}.u{i}"):
        reader.take(f"{prefix}.u{i}", (1, shape[0]))
        if reader.has(f"{prefix}.sv{i}"):
            reader.take(f"{prefix}.sv{i}", (1,))
        i += 1
    m = w.reshape(shape[0], -1).astype(np.float64)

    def normalize(x):
        return x / max(float(np.linalg.norm(x)), eps)

    v = normalize(u.astype(np.float64) @ m)
    u2 = normalize(v @ m.T)
    sigma = float((v @ m.T @ u2.T).squeeze())
    if not np.isfinite(sigma) or sigma <= 1e-12:
        raise JaxawareError(f"checkpoint {prefix}: spectral norm from its u0 is {sigma}; the "
                            "stored vector is degenerate (all zeros?) and the weight would "
                            "become infinite")
    return (w / np.float32(sigma)).astype(np.float32)


def _nchw_to_nhwc_units(x: np.ndarray, channels: int) -> np.ndarray:
    """Reorder the last axis from ``c * 16 + pos`` to ``pos * channels + c`` (4x4 map)."""
    lead = x.shape[:-1]
    y = x.reshape(*lead, channels, 16)
    return np.ascontiguousarray(np.swapaxes(y, -1, -2).reshape(*lead, 16 * channels))


def rule_table(config: BigGANConfig) -> dict[str, Rule]:
    """``{target path: rule}`` for every parameter and statistic of the Flax model."""
    cfg, eps = config, config.sn_eps
    k, cond = cfg.num_classes, cfg.cond_dim
    c0 = cfg.block_widths(0)[0]
    rules: dict[str, Rule] = {}
    if cfg.shared:
        rules["params/embedding"] = lambda r: r.take("shared.weight", (k, cfg.shared_dim))
    rules["params/linear/kernel"] = lambda r: _nchw_to_nhwc_units(
        linear(sn_weight(r, "linear", (16 * c0, cfg.linear_in), eps)), c0)
    rules["params/linear/bias"] = lambda r: _nchw_to_nhwc_units(
        r.take("linear.bias", (16 * c0,)), c0)

    def stats(target, ref, channels):
        rules[f"stats/{target}/mean"] = lambda r: r.take(f"{ref}.stored_mean", (channels,))[None]
        rules[f"stats/{target}/var"] = lambda r: r.take(f"{ref}.stored_var", (channels,))[None]

    def ccbn(target, ref, channels):
        for ours, theirs in (("scale", "gain"), ("offset", "bias")):
            key = f"{ref}.{theirs}"
            if cfg.shared:  # SNLinear(cond -> C, bias=False)
                rules[f"params/{target}/{ours}"] = lambda r, key=key: linear(
                    sn_weight(r, key, (channels, cond), eps))
            else:  # nn.Embedding(n_classes, C): rows indexed by the class
                rules[f"params/{target}/{ours}"] = lambda r, key=key: r.take(
                    f"{key}.weight", (k, channels))
        stats(target, ref, channels)

    def conv_rule(target, ref, shape, transform, bias=True):
        rules[f"params/{target}/kernel"] = lambda r: transform(sn_weight(r, ref, shape, eps))
        if bias:
            rules[f"params/{target}/bias"] = lambda r: r.take(f"{ref}.bias", (shape[0],))

    for i in range(cfg.n_blocks):
        c_in, c_out = cfg.block_widths(i)
        ref = f"blocks.{i}.0"
        ccbn(f"block{i}/bn1", f"{ref}.bn1", c_in)
        conv_rule(f"block{i}/conv1", f"{ref}.conv1", (c_out, c_in, 3, 3), conv)
        ccbn(f"block{i}/bn2", f"{ref}.bn2", c_out)
        conv_rule(f"block{i}/conv2", f"{ref}.conv2", (c_out, c_out, 3, 3), conv)
        conv_rule(f"block{i}/conv_sc", f"{ref}.conv_sc", (c_out, c_in, 1, 1), conv1x1)
        if cfg.has_attention(i):
            a, at = c_out, f"blocks.{i}.1"
            for name, shape in (("theta", (a // 8, a)), ("phi", (a // 8, a)),
                                ("g", (a // 2, a)), ("o", (a, a // 2))):
                conv_rule(f"attention{i}/{name}", f"{at}.{name}", (*shape, 1, 1), conv1x1,
                          bias=False)
            rules[f"params/attention{i}/gamma"] = lambda r, at=at: r.take(f"{at}.gamma", ())

    c_last = cfg.block_widths(cfg.n_blocks - 1)[1]
    rules["params/bn/scale"] = lambda r: r.take("output_layer.0.gain", (c_last,))
    rules["params/bn/bias"] = lambda r: r.take("output_layer.0.bias", (c_last,))
    stats("bn", "output_layer.0", c_last)
    conv_rule("to_rgb", "output_layer.2", (3, c_last, 3, 3), conv)
    return rules


def convert_state_dict(state: dict[str, np.ndarray], config: BigGANConfig) -> dict:
    """Converts a BigGAN-PyTorch G state dict (numpy values) to ``{'params', 'stats'}``."""
    deep_keys = [key for key in state if key.startswith("generator.") or key == "embeddings.weight"]
    if deep_keys:
        raise JaxawareError(
            f"the checkpoint holds BigGAN-deep keys ({deep_keys[0]!r}), not an original BigGAN "
            "generator; convert a pytorch_pretrained_biggan directory (pytorch_model.bin + "
            "config.json) with a biggan-deep preset instead"
        )
    svs = [key for key in state if key.endswith(".sv0")]
    us = [key for key in state if key.endswith(".u0")]
    if svs and len(svs) != len(us):  # TF-Hub files have none; training checkpoints have all
        missing = sorted(u[:-3] for u in us if u[:-3] + ".sv0" not in state)
        if missing:
            raise JaxawareError(f"checkpoint is missing {missing[0] + '.sv0'!r}; it has sv0 for "
                                "some spectral-norm layers but not for all")
    return apply_rules(rule_table(config), state, BIGGAN_PYTORCH)


def resolve_config(train_config: dict | None, preset: str | None, config_file: str | None,
                   source: str) -> tuple[BigGANConfig, str]:
    """The architecture, from ``--config`` FILE.json, else ``--preset``, else the checkpoint's
    ``state_dict.pth``; returns ``(config, where it came from)``."""
    if config_file is not None:
        try:
            with open(config_file, encoding="utf-8") as f:
                d = json.load(f)
        except FileNotFoundError:
            raise JaxawareError(f"config file {config_file} does not exist") from None
        except (OSError, ValueError) as e:
            raise JaxawareError(f"cannot read {config_file} as JSON ({type(e).__name__}); give "
                                "BigGAN-PyTorch's training arguments as a JSON object") from None
        if not isinstance(d, dict):
            raise JaxawareError(f"{config_file} must hold a JSON object of BigGAN-PyTorch "
                                "training arguments")
        return BigGANConfig.from_pytorch_config(d), config_file
    if preset is not None:
        if preset not in PRESETS:
            raise JaxawareError(f"unknown BigGAN preset {preset!r}; known: {', '.join(PRESETS)}")
        return PRESETS[preset], preset
    if train_config is None:
        raise JaxawareError(
            f"{source} has no state_dict.pth with a 'config' entry, so its architecture is "
            f"unknown; give --preset ({', '.join(PRESETS)}) or --config FILE.json"
        )
    return BigGANConfig.from_pytorch_config(train_config), "state_dict.pth"


def convert(source: str, out: str, preset: str | None = None, config_file: str | None = None,
            force: bool = False, weights: str | None = None) -> str:
    """Converts a BigGAN-PyTorch checkpoint directory (or ``.pth`` file) and writes a
    jaxaware weights directory; on any error nothing is written."""
    from convert.biggan_pytorch_io import read_checkpoint_dir
    from jaxaware.weights_io import save_weights

    state, train_config, weights_path = read_checkpoint_dir(source, weights)
    config, config_source = resolve_config(train_config, preset, config_file, source)
    variables = convert_state_dict(state, config)
    model_id = preset or os.path.basename(os.path.normpath(
        source if os.path.isdir(source) else os.path.dirname(os.path.abspath(source))))
    return save_weights(
        out, variables, config=config.to_dict(), model_id=model_id or "biggan",
        extra={"source": "BigGAN-PyTorch", "converted_from": str(weights_path),
               "architecture_from": str(config_source)},
        family="biggan", force=force,
    )
