"""Model families and their registry.

A family (:class:`~jaxaware.models.family.Family`) supplies its config, generator, sites,
CCBN affine maps, statistic-row selection and latent sampler; everything else in jaxaware
is written once against it. Two families: ``biggan-deep`` (``pytorch_pretrained_biggan``)
and ``biggan`` (the original BigGAN of BigGAN-PyTorch, the paper's main model).
"""

from __future__ import annotations

from typing import Any

from jaxaware.errors import JaxawareError
from jaxaware.models import biggan, biggan_deep
from jaxaware.models.biggan import BigGANConfig
from jaxaware.models.biggan_deep import BigGANDeepConfig
from jaxaware.models.family import AffineMaps, Family, Site

FAMILIES: dict[str, Family] = {f.name: f for f in (biggan_deep.FAMILY, biggan.FAMILY)}
DEFAULT_FAMILY = "biggan-deep"  # weights directories without a family field hold this one
PRESETS: dict[str, Any] = {name: cfg for f in FAMILIES.values() for name, cfg in f.presets.items()}

__all__ = [
    "AffineMaps",
    "BigGANConfig",
    "BigGANDeepConfig",
    "DEFAULT_FAMILY",
    "FAMILIES",
    "Family",
    "PRESETS",
    "Site",
    "config_from_dict",
    "family_of",
    "get_family",
    "preset",
]


def get_family(name: str) -> Family:
    """A family by name (``biggan``, ``biggan-deep``)."""
    try:
        return FAMILIES[name]
    except (KeyError, TypeError):
        raise JaxawareError(
            f"unknown model family {name!r}; known: {', '.join(FAMILIES)}"
        ) from None


def family_of(config) -> Family:
    """The family a config object belongs to."""
    for family in FAMILIES.values():
        if isinstance(config, family.config_class):
            return family
    raise JaxawareError(
        f"{type(config).__name__} is not a model config; expected one of "
        f"{', '.join(f.config_class.__name__ for f in FAMILIES.values())}"
    )


def config_from_dict(d: dict, family: str | None = None):
    """A config from its stored dict; ``family`` None means the default (BigGAN-deep)."""
    if not isinstance(d, dict):
        raise JaxawareError(f"a model config must be a JSON object; got {type(d).__name__}")
    return get_family(family or DEFAULT_FAMILY).config_class.from_dict(d)


def preset(name: str):
    """A published architecture by name: ``biggan-deep-128/256/512``, ``biggan-128-138k``,
    ``biggan-128/256/512``."""
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise JaxawareError(f"unknown model name {name!r}; known: {', '.join(PRESETS)}") from None
