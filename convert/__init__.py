"""PyTorch -> jaxaware conversion (the only package besides the tests that imports torch).

:func:`convert` detects the family of a checkpoint and dispatches:

* ``pytorch_pretrained_biggan`` (BigGAN-deep): a directory with ``pytorch_model.bin`` +
  ``config.json``, or a shortcut name (``biggan-deep-128/256/512``, downloads);
* BigGAN-PyTorch (original BigGAN): a directory with ``G_ema.pth`` or ``G.pth`` (and
  ``state_dict.pth``), or a ``.pth`` file such as a TF-Hub conversion ``biggan-256.pth``.
"""

from __future__ import annotations

import glob
import os

from jaxaware.errors import JaxawareError
from jaxaware.models import FAMILIES, PRESETS

DEEP_WEIGHTS = "pytorch_model.bin"


def detect_family(source: str) -> str:
    """``biggan-deep`` or ``biggan`` from what a checkpoint directory or name holds."""
    if os.path.isdir(source):
        if os.path.isfile(os.path.join(source, DEEP_WEIGHTS)):
            return "biggan-deep"
        if glob.glob(os.path.join(glob.escape(source), "*.pth")):
            return "biggan"
        raise JaxawareError(
            f"{source} holds neither {DEEP_WEIGHTS} (a pytorch_pretrained_biggan BigGAN-deep "
            "checkpoint) nor G_ema.pth / G.pth (a BigGAN-PyTorch checkpoint)"
        )
    if os.path.isfile(source) and source.endswith(".pth"):
        return "biggan"
    if source in FAMILIES["biggan-deep"].presets:
        return "biggan-deep"
    raise JaxawareError(
        f"{source!r} is neither a checkpoint directory nor a known model name; give a "
        f"directory with {DEEP_WEIGHTS} + config.json (BigGAN-deep) or G_ema.pth / G.pth "
        f"(BigGAN), or one of: {', '.join(FAMILIES['biggan-deep'].presets)}"
    )


def convert(source: str, out: str, preset: str | None = None, config_file: str | None = None,
            force: bool = False) -> str:
    """Converts a checkpoint of either family and writes a jaxaware weights directory.

    ``preset`` names the architecture when the checkpoint does not carry it (and must be of
    the checkpoint's family); ``config_file`` gives BigGAN-PyTorch training arguments as
    JSON. On any error nothing is written.
    """
    family = detect_family(source)
    if preset is not None:
        if preset not in PRESETS:
            raise JaxawareError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
        preset_family = next(f for f in FAMILIES.values() if preset in f.presets)
        if preset_family.name != family:
            raise JaxawareError(
                f"{source} holds a {FAMILIES[family].title} checkpoint but preset {preset!r} is "
                f"a {preset_family.title} architecture; give a preset of the checkpoint's family "
                f"({', '.join(FAMILIES[family].presets)})"
            )
    if family == "biggan-deep":
        if config_file is not None:
            raise JaxawareError("--config FILE.json is for BigGAN-PyTorch checkpoints; a BigGAN-"
                                "deep directory carries its config.json")
        from convert.biggan_deep import convert as convert_deep

        return convert_deep(source, out, force=force, preset=preset)
    from convert.biggan import convert as convert_biggan

    return convert_biggan(source, out, preset=preset, config_file=config_file, force=force)
