"""Convert a ``pytorch_pretrained_biggan`` BigGAN-deep checkpoint to jaxaware's Flax params.

The conversion is a rule table driven by the *target* tree: for every Flax parameter we
name the checkpoint tensors it is made from and one transform. Every checkpoint tensor
must be used exactly once and have the expected shape; otherwise the conversion stops
with an error naming the key, and nothing is written.

How our parameters differ from the torch ones (see :mod:`jaxaware.model` for the tree):

* Spectral norm is folded in with the *eval-mode* formula of
  ``torch.nn.utils.spectral_norm``: ``W_sn = weight_orig / sigma`` with
  ``sigma = weight_u . (W weight_v)`` from the stored vectors, no power iteration (the
  reference model must be compared in ``.eval()``; in train mode it iterates and drifts).
* Linear weights ``[out, in]`` become kernels ``[in, out]``; convs ``[O, I, kh, kw]``
  become ``[kh, kw, I, O]``; 1x1 convs become ``[I, O]`` matrices.
* ``conv_to_rgb`` has ``ch`` outputs of which the reference keeps 3: sigma is computed on
  the full weight first, then we keep output channels 0..2 only.
* The attention ``gamma`` ``[1]`` becomes a scalar; the 51-row statistics go to the
  ``stats`` collection unchanged.

Reference quirks we reproduce elsewhere: the reversed truncation interpolation
(:mod:`jaxaware.truncation`) and the HWC order of ``gen_z``'s output units.
"""

from __future__ import annotations

import json
import os

import numpy as np

from convert.rules import Reader, Rule, apply_rules
from convert.rules import conv as _conv
from convert.rules import conv1x1 as _conv1x1
from convert.rules import linear as _linear
from jaxaware.errors import JaxawareError
from jaxaware.models.biggan_deep import (
    PRESETS,
    BigGANDeepConfig,
    block_widths,
    reference_block_index,
)

WEIGHTS_NAME = "pytorch_model.bin"
CONFIG_NAME = "config.json"


def sn_sigma(weight_orig: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.float32:
    """Eval-mode spectral norm ``sigma = u . (W v)`` with ``W = weight_orig.reshape(out, -1)``."""
    w = weight_orig.reshape(weight_orig.shape[0], -1).astype(np.float64)
    return np.float32(u.astype(np.float64) @ (w @ v.astype(np.float64)))


def sn_weight(reader: Reader, prefix: str, shape: tuple[int, ...]) -> np.ndarray:
    """A spectrally normalised weight from ``weight_orig``, ``weight_u``, ``weight_v``."""
    w = reader.take(f"{prefix}.weight_orig", shape)
    u = reader.take(f"{prefix}.weight_u", (shape[0],))
    v = reader.take(f"{prefix}.weight_v", (int(np.prod(shape[1:])),))
    sigma = sn_sigma(w, u, v)
    if not np.isfinite(sigma) or abs(float(sigma)) < 1e-12:
        raise JaxawareError(f"checkpoint {prefix}: spectral norm sigma = u . (W v) is "
                            f"{float(sigma)}; the stored vectors are degenerate")
    return w / sigma


def rule_table(config: BigGANDeepConfig) -> dict[str, Rule]:
    """``{target path: rule}`` for every parameter and statistic of the Flax model.

    Target paths are ``'/'``-joined, starting with the collection (``params/`` or
    ``stats/``). Each rule reads its checkpoint tensors through a :class:`convert.rules.Reader`.
    """
    cfg = config
    cond, ch, s = cfg.cond_dim, cfg.channel_width, cfg.n_stats
    rules: dict[str, Rule] = {
        "params/embedding": lambda r: _linear(
            r.take("embeddings.weight", (cfg.z_dim, cfg.num_classes))
        ),
        "params/gen_z/kernel": lambda r: _linear(
            sn_weight(r, "generator.gen_z", (4 * 4 * cfg.width(16), cond))
        ),
        "params/gen_z/bias": lambda r: r.take("generator.gen_z.bias", (4 * 4 * cfg.width(16),)),
    }

    def ccbn(target: str, ref: str, channels: int):
        rules[f"params/{target}/scale"] = lambda r: _linear(
            sn_weight(r, f"{ref}.scale", (channels, cond))
        )
        rules[f"params/{target}/offset"] = lambda r: _linear(
            sn_weight(r, f"{ref}.offset", (channels, cond))
        )
        stats(target, ref, channels)

    def stats(target: str, ref: str, channels: int):
        rules[f"stats/{target}/mean"] = lambda r: r.take(f"{ref}.running_means", (s, channels))
        rules[f"stats/{target}/var"] = lambda r: r.take(f"{ref}.running_vars", (s, channels))

    def conv(target: str, ref: str, shape: tuple[int, ...], transform):
        rules[f"params/{target}/kernel"] = lambda r: transform(sn_weight(r, ref, shape))
        rules[f"params/{target}/bias"] = lambda r: r.take(f"{ref}.bias", (shape[0],))

    for i in range(len(cfg.layers)):
        c_in, mid, c_out = block_widths(cfg, i)
        ref = f"generator.layers.{reference_block_index(cfg, i)}"
        for k, channels in enumerate((c_in, mid, mid, mid)):
            ccbn(f"block{i}/bn{k}", f"{ref}.bn_{k}", channels)
        conv(f"block{i}/conv0", f"{ref}.conv_0", (mid, c_in, 1, 1), _conv1x1)
        conv(f"block{i}/conv1", f"{ref}.conv_1", (mid, mid, 3, 3), _conv)
        conv(f"block{i}/conv2", f"{ref}.conv_2", (mid, mid, 3, 3), _conv)
        conv(f"block{i}/conv3", f"{ref}.conv_3", (c_out, mid, 1, 1), _conv1x1)

    if cfg.has_attention:
        a, ref = cfg.attention_channels, f"generator.layers.{cfg.attention_layer_position}"
        for name, (o, i) in {
            "theta": (a // 8, a), "phi": (a // 8, a), "g": (a // 2, a), "o": (a, a // 2)
        }.items():  # fmt: skip
            key = "o_conv" if name == "o" else name
            rules[f"params/attention/{name}/kernel"] = lambda r, key=key, o=o, i=i: _conv1x1(
                sn_weight(r, f"{ref}.snconv1x1_{key}", (o, i, 1, 1))
            )
        rules["params/attention/gamma"] = lambda r: r.take(f"{ref}.gamma", (1,)).reshape(())

    rules["params/bn/scale"] = lambda r: r.take("generator.bn.weight", (ch,))
    rules["params/bn/bias"] = lambda r: r.take("generator.bn.bias", (ch,))
    stats("bn", "generator.bn", ch)
    # sigma over all ch outputs first, then keep RGB.
    rules["params/to_rgb/kernel"] = lambda r: _conv(
        sn_weight(r, "generator.conv_to_rgb", (ch, ch, 3, 3))[:3]
    )
    rules["params/to_rgb/bias"] = lambda r: r.take("generator.conv_to_rgb.bias", (ch,))[:3]
    return rules


def convert_state_dict(state: dict[str, np.ndarray], config: BigGANDeepConfig) -> dict:
    """Converts a reference state dict (numpy values) to nested ``{'params', 'stats'}``."""
    check_reference_compatible(config)
    return apply_rules(rule_table(config), state, "BigGAN-deep")


def check_reference_compatible(config: BigGANDeepConfig) -> None:
    """Raises unless ``pytorch_pretrained_biggan`` can hold the architecture."""
    if not config.reference_compatible:
        raise JaxawareError(
            f"config layers run from width {config.layers[0][1]} to {config.layers[-1][2]}; "
            "pytorch_pretrained_biggan needs the first layer to take 16 (x channel_width) and "
            "the last to give 1"
        )


def load_reference_checkpoint(
    source: str, preset: str | None = None
) -> tuple[dict[str, np.ndarray], BigGANDeepConfig, str]:
    """Reads ``pytorch_model.bin`` + ``config.json`` from a directory or a shortcut name.

    Returns ``(state dict as numpy, config, model id)``. A shortcut name
    (``biggan-deep-128/256/512``) is fetched through the reference package's own cache
    and download code, which needs internet. ``preset`` names the architecture of a
    directory without ``config.json``.
    """
    import torch

    config = None
    if preset is not None:
        if preset not in PRESETS:
            raise JaxawareError(f"unknown BigGAN-deep preset {preset!r}; known: "
                                f"{', '.join(PRESETS)}")
        config = PRESETS[preset]
    if os.path.isdir(source):
        weights = os.path.join(source, WEIGHTS_NAME)
        config_file = os.path.join(source, CONFIG_NAME)
        for f in (weights, config_file):
            if f == config_file and config is not None and not os.path.isfile(f):
                continue
            if not os.path.isfile(f):
                raise JaxawareError(
                    f"{source} has no {os.path.basename(f)}; a checkpoint directory holds "
                    f"{WEIGHTS_NAME} and {CONFIG_NAME} (as pytorch_pretrained_biggan saves them)"
                )
        model_id = os.path.basename(os.path.normpath(source))
    elif source in PRESETS:
        weights, config_file = _download(source)
        model_id = source
    else:
        raise JaxawareError(
            f"{source!r} is neither a directory nor a known model name; give a directory with "
            f"{WEIGHTS_NAME} and {CONFIG_NAME}, or one of: {', '.join(PRESETS)}"
        )
    if config is None:
        config = BigGANDeepConfig.from_json_file(config_file)
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a damaged file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise JaxawareError(
            f"cannot read {weights} as a PyTorch state dict ({first}); is the file complete?"
        ) from None
    if not isinstance(state, dict):
        raise JaxawareError(f"{weights} holds a {type(state).__name__}, not a state dict")
    return tensors_to_numpy(state, weights), config, model_id


def tensors_to_numpy(state: dict, where: str) -> dict[str, np.ndarray]:
    """A state dict's tensors as float32 NumPy (float16/bfloat16 upcast); names any entry
    that is not a tensor."""
    import torch

    out = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise JaxawareError(f"{where}: entry {key!r} is a {type(value).__name__}, not a "
                                "tensor; a state dict holds tensors only")
        out[key] = value.detach().cpu().to(torch.float32).numpy()
    return out


def _download(name: str) -> tuple[str, str]:
    from pytorch_pretrained_biggan.model import (
        PRETRAINED_CONFIG_ARCHIVE_MAP,
        PRETRAINED_MODEL_ARCHIVE_MAP,
    )
    from pytorch_pretrained_biggan.file_utils import cached_path

    try:
        return (
            cached_path(PRETRAINED_MODEL_ARCHIVE_MAP[name]),
            cached_path(PRETRAINED_CONFIG_ARCHIVE_MAP[name]),
        )
    except Exception as e:
        raise JaxawareError(
            f"could not download {name} ({type(e).__name__}); without internet, put "
            f"{WEIGHTS_NAME} and {CONFIG_NAME} in a directory and convert that"
        ) from None


def convert(source: str, out: str, force: bool = False, preset: str | None = None) -> str:
    """Converts a checkpoint (directory or shortcut name) and writes a jaxaware weights dir.

    The output is written atomically by :func:`jaxaware.weights_io.save_weights`; on any
    error nothing is written.
    """
    from jaxaware.weights_io import save_weights

    state, config, model_id = load_reference_checkpoint(source, preset)
    variables = convert_state_dict(state, config)
    return save_weights(
        out,
        variables,
        config=config.to_reference_dict(),
        model_id=model_id,
        extra={"source": "pytorch_pretrained_biggan", "converted_from": str(source)},
        family="biggan-deep",
        force=force,
    )


def config_json(config: BigGANDeepConfig) -> str:
    """The reference ``config.json`` text (2-space indent, sorted keys)."""
    return json.dumps(config.to_reference_dict(), indent=2, sort_keys=True) + "\n"
