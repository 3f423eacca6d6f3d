"""Architecture of a BigGAN-deep generator, and the vocabulary of the model package.

Vocabulary used throughout jaxaware:

* **Layout.** Feature maps are NHWC: ``[batch, height, width, channels]``.
* **Block.** Config layer ``i`` of ``layers`` is our ``block{i}``; in
  ``pytorch_pretrained_biggan`` it is ``generator.layers.{m}`` with ``m = i`` before the
  attention layer and ``m = i + 1`` from ``attention_layer_position`` on (the attention
  module itself is ``generator.layers.{attention_layer_position}``).
* **Channel.** One feature channel of one class-conditional batch norm (CCBN).
* **Site.** One CCBN layer: ``block{i}.bn{k}`` with ``k`` in 0..3, numbered ``L0, L1, ...``
  in forward order. Probes are read at a site and interventions are applied there, on the
  CCBN output after the ReLU that always follows it.
* **Condition vector.** ``c = [z, e]`` with ``e = y @ embedding``: the latent first, then
  the class embedding; the same ``c`` feeds ``gen_z`` and every CCBN.
* **Truncation.** A float in (0, 1]. It scales the latent (the caller draws
  ``z = truncation * truncnorm(-2, 2)``) and selects the batch-norm statistics from the
  ``n_stats`` stored rows (row ``i`` is meant for truncation ``i / (n_stats - 1)``).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from jaxaware.errors import JaxawareError

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
class BigGANConfig:
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

    def __post_init__(self):
        layers = tuple((bool(u), int(a), int(b)) for u, a, b in self.layers)
        object.__setattr__(self, "layers", layers)
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
        # The reference reshapes gen_z's output to 16 * ch channels and runs its final BN and
        # conv_to_rgb on ch channels, whatever the layer table says.
        if layers[0][1] != 16 or layers[-1][2] != 1:
            raise JaxawareError(
                f"config layers run from width {layers[0][1]} to {layers[-1][2]}; BigGAN-deep "
                "needs the first layer to take 16 (x channel_width) and the last to give 1"
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
    def from_reference_dict(cls, d: dict[str, Any]) -> BigGANConfig:
        """Reads a ``pytorch_pretrained_biggan`` config; missing keys take the 128 defaults."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise JaxawareError(
                f"config.json has unknown keys {unknown}; accepted: {sorted(known)}"
            )
        merged = {**biggan_deep_preset("biggan-deep-128").to_reference_dict(), **d}
        return cls(**{k: merged[k] for k in known})

    @classmethod
    def from_json_file(cls, path) -> BigGANConfig:
        with open(path) as f:
            try:
                d = json.load(f)
            except json.JSONDecodeError as e:
                raise JaxawareError(
                    f"{path} is not valid JSON ({e.msg}); expected a BigGAN config"
                ) from None
        return cls.from_reference_dict(d)


PRESETS = {
    "biggan-deep-128": BigGANConfig(layers=_DEEP_128, output_dim=128),
    "biggan-deep-256": BigGANConfig(layers=_DEEP_256, output_dim=256),
    "biggan-deep-512": BigGANConfig(layers=_DEEP_512, output_dim=512),
}


def biggan_deep_preset(name: str) -> BigGANConfig:
    """The published BigGAN-deep architectures, by their ``pytorch_pretrained_biggan`` names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise JaxawareError(
            f"unknown model name {name!r}; known: {', '.join(PRESETS)}"
        ) from None
