"""Export a jaxaware model back to a ``pytorch_pretrained_biggan`` checkpoint directory.

The inverse of :mod:`convert.biggan_deep`: ``export(model, directory)`` writes
``pytorch_model.bin`` (``torch.save`` of a state dict with exactly the reference model's
keys and shapes) and ``config.json`` (the reference format), so that
``pytorch_pretrained_biggan.BigGAN.from_pretrained(directory).eval()`` computes what
:func:`jaxaware.generate` computes, and converting the export back gives our params
bit for bit.

Spectral norm. Our weights ``W`` are already spectrally normalised. We store
``weight_orig = W`` (in torch layout) and choose ``weight_u`` / ``weight_v`` so that the
eval-mode ``sigma = u . (W v)`` is exactly 1 in the converter's arithmetic
(:func:`convert.biggan_deep.sn_sigma`: float64 products of the float32 tensors, cast to
float32): ``v`` is the top right singular vector of ``W`` and ``u = W v / ||W v||^2``
(so ``u . W v = 1`` up to rounding); ``u`` is then nudged by a few float32 ulps if the
rounding moved the cast sigma off 1.0. ``u`` is therefore *not* unit-norm (it has norm
``1 / ||W||_2``): torch's eval forward only uses ``u . (W v)``, and a train-mode power
iteration re-normalises it on its first step (then ``sigma`` becomes the true spectral
norm, about 1 for our weights, as the weights came out of spectral normalisation).

``conv_to_rgb``: ours has 3 outputs, the reference ``ch`` of which it uses the first 3;
the others are zero-padded (weight and bias) and ``u``/``v`` are computed on the padded
matrix (the zero rows change no singular value). Attention ``gamma`` ``[]`` -> ``[1]``.

CLI: ``python -m convert.export WEIGHTS_DIR OUT_DIR``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from convert.biggan_deep import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    check_reference_compatible,
    config_json,
    sn_sigma,
)
from jaxaware.atomic import atomic_directory
from jaxaware.errors import JaxawareError
from jaxaware.models import BigGANDeepConfig, family_of
from jaxaware.models.biggan_deep import block_widths, reference_block_index

__all__ = ["export", "export_state_dict", "main", "unit_sigma_vectors"]

_ONE = np.float32(1.0)


def unit_sigma_vectors(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(u, v)`` float32 with ``sn_sigma(weight, u, v) == 1.0`` exactly (float32).

    ``weight`` is a torch-layout float32 weight ``[out, ...]`` (flattened to
    ``[out, -1]``). Raises :class:`JaxawareError` for a zero (or non-finite) weight, whose
    spectral norm cannot be made 1.
    """
    w = np.asarray(weight, np.float32)
    w64 = w.reshape(w.shape[0], -1).astype(np.float64)
    if not np.all(np.isfinite(w64)) or not np.any(w64):
        raise JaxawareError("cannot export a zero or non-finite weight with spectral norm 1")
    _, _, vt = np.linalg.svd(w64, full_matrices=False)
    v = vt[0]
    if v[np.argmax(np.abs(v))] < 0:  # canonical sign
        v = -v
    v32 = v.astype(np.float32)
    wv = w64 @ v32.astype(np.float64)
    u32 = (wv / (wv @ wv)).astype(np.float32)
    if sn_sigma(w, u32, v32) == _ONE:
        return u32, v32
    # Rounding moved sigma off 1: rescale u by float32 steps towards 1 (a few at most).
    for _ in range(64):
        s = float(np.float64(u32) @ wv)
        u32 = (u32.astype(np.float64) / s).astype(np.float32)
        if sn_sigma(w, u32, v32) == _ONE:
            return u32, v32
        # still off by rounding: nudge the largest entry of u by one ulp in the right way
        i = int(np.argmax(np.abs(u32 * wv)))
        s = float(np.float64(u32) @ wv)
        direction = np.float32(-np.inf if (s > 1) == (wv[i] > 0) else np.inf)
        u32[i] = np.nextafter(u32[i], direction)
        if sn_sigma(w, u32, v32) == _ONE:
            return u32, v32
    raise JaxawareError("could not choose spectral-norm vectors with sigma exactly 1")


def _linear(k):  # [in, out] -> [out, in]
    return np.ascontiguousarray(np.asarray(k, np.float32).T)


def _conv(k):  # [kh, kw, I, O] -> [O, I, kh, kw]
    return np.ascontiguousarray(np.asarray(k, np.float32).transpose(3, 2, 0, 1))


def _conv1x1(k):  # [I, O] -> [O, I, 1, 1]
    return np.ascontiguousarray(np.asarray(k, np.float32).T[:, :, None, None])


def export_state_dict(variables: dict, config: BigGANDeepConfig) -> dict[str, np.ndarray]:
    """Our ``{'params', 'stats'}`` as a reference state dict of float32 numpy arrays."""
    family = family_of(config)
    if family.name != "biggan-deep":
        raise JaxawareError(
            f"export writes BigGAN-deep checkpoints (pytorch_pretrained_biggan); this is a "
            f"{family.title} model, which it does not write"
        )
    check_reference_compatible(config)
    params, stats = variables["params"], variables["stats"]
    cfg = config
    ch = cfg.channel_width
    state: dict[str, np.ndarray] = {}

    def put(key, value):
        if key in state:
            raise JaxawareError(f"export rule writes {key!r} twice")
        state[key] = np.ascontiguousarray(np.asarray(value, np.float32))

    def sn(prefix, weight):
        u, v = unit_sigma_vectors(weight)
        put(f"{prefix}.weight_orig", weight)
        put(f"{prefix}.weight_u", u)
        put(f"{prefix}.weight_v", v)

    def bn_stats(ref, node):
        put(f"{ref}.running_means", node["mean"])
        put(f"{ref}.running_vars", node["var"])

    put("embeddings.weight", _linear(params["embedding"]))
    sn("generator.gen_z", _linear(params["gen_z"]["kernel"]))
    put("generator.gen_z.bias", params["gen_z"]["bias"])
    for i in range(len(cfg.layers)):
        ref = f"generator.layers.{reference_block_index(cfg, i)}"
        block, bstats = params[f"block{i}"], stats[f"block{i}"]
        for k in range(4):
            bn = block[f"bn{k}"]
            sn(f"{ref}.bn_{k}.scale", _linear(bn["scale"]))
            sn(f"{ref}.bn_{k}.offset", _linear(bn["offset"]))
            bn_stats(f"{ref}.bn_{k}", bstats[f"bn{k}"])
        for k, transform in enumerate((_conv1x1, _conv, _conv, _conv1x1)):
            conv = block[f"conv{k}"]
            sn(f"{ref}.conv_{k}", transform(conv["kernel"]))
            put(f"{ref}.conv_{k}.bias", conv["bias"])
    if cfg.has_attention:
        ref, att = f"generator.layers.{cfg.attention_layer_position}", params["attention"]
        for name, key in (("theta", "theta"), ("phi", "phi"), ("g", "g"), ("o", "o_conv")):
            sn(f"{ref}.snconv1x1_{key}", _conv1x1(att[name]["kernel"]))
        put(f"{ref}.gamma", np.reshape(np.asarray(att["gamma"], np.float32), (1,)))
    put("generator.bn.weight", params["bn"]["scale"])
    put("generator.bn.bias", params["bn"]["bias"])
    bn_stats("generator.bn", stats["bn"])
    rgb = _conv(params["to_rgb"]["kernel"])  # [3, ch, 3, 3]
    if rgb.shape != (3, ch, 3, 3):
        raise JaxawareError(f"to_rgb kernel has torch shape {list(rgb.shape)}; "
                            f"expected [3, {ch}, 3, 3]")
    padded = np.zeros((ch, ch, 3, 3), np.float32)
    padded[:3] = rgb
    sn("generator.conv_to_rgb", padded)
    bias = np.zeros((ch,), np.float32)
    bias[:3] = np.asarray(params["to_rgb"]["bias"], np.float32)
    put("generator.conv_to_rgb.bias", bias)
    _check_shapes(state, cfg)
    return state


def _check_shapes(state: dict[str, np.ndarray], cfg: BigGANDeepConfig) -> None:
    """A few shapes the reference needs that a wrong config would break silently."""
    want = {"embeddings.weight": (cfg.z_dim, cfg.num_classes),
            "generator.gen_z.weight_orig": (4 * 4 * cfg.width(16), cfg.cond_dim)}
    for i in range(len(cfg.layers)):
        c_in, mid, _ = block_widths(cfg, i)
        ref = f"generator.layers.{reference_block_index(cfg, i)}"
        want[f"{ref}.bn_0.running_means"] = (cfg.n_stats, c_in)
        want[f"{ref}.conv_1.weight_orig"] = (mid, mid, 3, 3)
    for key, shape in want.items():
        if tuple(state[key].shape) != shape:
            raise JaxawareError(f"{key} has shape {list(state[key].shape)}; the config "
                                f"expects {list(shape)}")


def _reference_model(config: BigGANDeepConfig, state: dict[str, np.ndarray]):
    """A fresh reference ``BigGAN`` holding ``state`` (strict load: same keys and shapes)."""
    import torch
    from pytorch_pretrained_biggan import BigGAN
    from pytorch_pretrained_biggan import BigGANConfig as RefConfig

    ref_config = RefConfig.from_dict(json.loads(config_json(config)))
    with torch.random.fork_rng(devices=[]):  # the constructor draws default inits
        model = BigGAN(ref_config)
    want = model.state_dict()
    missing, extra = sorted(set(want) - set(state)), sorted(set(state) - set(want))
    if missing or extra:
        raise JaxawareError(f"exported keys differ from the reference: missing {missing[:3]}, "
                            f"unexpected {extra[:3]}")
    for key, tensor in want.items():
        if tuple(tensor.shape) != tuple(state[key].shape):
            raise JaxawareError(f"exported {key} has shape {list(state[key].shape)}; the "
                                f"reference expects {list(tensor.shape)}")
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()},
                          strict=True)
    return model.eval()


def export(model, directory: str | os.PathLike) -> Path:
    """Write ``model`` (a :class:`jaxaware.Model`) as a reference checkpoint directory.

    ``directory`` gets ``pytorch_model.bin`` and ``config.json``; it is built in a
    temporary sibling directory and renamed into place (an existing checkpoint directory
    there is replaced; any other non-empty directory or file is an error and left alone).
    Returns the directory.
    """
    import torch

    directory = Path(directory)
    state = export_state_dict(model.variables, model.config)
    torch_model = _reference_model(model.config, state)
    with atomic_directory(directory, _is_checkpoint, _not_a_checkpoint) as tmp:
        with open(tmp / WEIGHTS_NAME, "wb") as f:
            torch.save(torch_model.state_dict(), f)
            f.flush()
            os.fsync(f.fileno())
        with open(tmp / CONFIG_NAME, "w", encoding="utf-8") as f:
            f.write(config_json(model.config))
            f.flush()
            os.fsync(f.fileno())
    return directory


def _is_checkpoint(directory: Path) -> bool:
    return set(os.listdir(directory)) <= {WEIGHTS_NAME, CONFIG_NAME}


def _not_a_checkpoint(directory: Path) -> JaxawareError:
    return JaxawareError(
        f"{directory} exists and is not a checkpoint directory ({WEIGHTS_NAME} + "
        f"{CONFIG_NAME}); not replacing it"
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m convert.export",
        description="Export a jaxaware weights directory to a pytorch_pretrained_biggan "
        "checkpoint directory (pytorch_model.bin + config.json).",
    )
    p.add_argument("weights", help="jaxaware weights directory (params.npz + config.json)")
    p.add_argument("out", help="output checkpoint directory")
    args = p.parse_args(argv)
    from jaxaware.model import load

    try:
        out = export(load(args.weights), args.out)
    except JaxawareError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
