"""Shared test helpers (not a test module)."""

from __future__ import annotations

import re

import jax
import numpy as np
import pytest

from jaxaware.errors import JaxawareError
from jaxaware.model import Model, variable_shapes
from jaxaware.models import BigGANConfig, BigGANDeepConfig


# A small BigGAN-deep: 5 blocks, 20 sites, 64x64 output, attention at 8x8.
SMALL = BigGANDeepConfig(
    layers=((False, 16, 16), (True, 16, 8), (True, 8, 4), (True, 4, 2), (True, 2, 1)),
    output_dim=64,
    z_dim=16,
    channel_width=4,
    num_classes=10,
    attention_layer_position=2,
)


def raises(message):
    """pytest.raises for a JaxawareError with exactly this message."""
    return pytest.raises(JaxawareError, match="^" + re.escape(message) + "$")


# A small original BigGAN: 32 px (3 blocks, 6 CCBN sites), hierarchical latents, shared
# embedding, attention after block 1 (16x16).
SMALL_BIGGAN = BigGANConfig(
    resolution=32, channel_width=4, z_dim=16, shared_dim=8, hier=True, shared=True,
    attention=(16,), num_classes=10, eps=1e-4, sn_eps=1e-6,
)


def random_model(cfg, seed: int = 0) -> Model:
    """Random weights in the family's tree: distinct statistic rows, nonzero attention
    gamma, CCBN gains spread around 1 (a few negative)."""
    shapes = variable_shapes(cfg)
    rng = np.random.RandomState(seed)

    def leaf(path, s):
        names = [p.key for p in path]
        shape, name = s.shape, names[-1]
        if names[0] == "stats":
            if name == "mean":
                return (0.3 * rng.randn(*shape)).astype(np.float32)
            return np.exp(0.3 * rng.randn(*shape)).astype(np.float32)
        if name == "embedding":
            return rng.randn(*shape).astype(np.float32)
        if name in ("scale", "offset") and names[1].startswith("block"):
            return (0.5 / np.sqrt(shape[0]) * rng.randn(*shape)).astype(np.float32)
        if name == "gamma":
            return np.float32(0.5)
        if name == "scale":  # final BN
            return (1 + 0.1 * rng.randn(*shape)).astype(np.float32)
        if name == "bias":
            return (0.05 * rng.randn(*shape)).astype(np.float32)
        return (rng.randn(*shape) / np.sqrt(np.prod(shape[:-1]))).astype(np.float32)

    variables = jax.tree_util.tree_map_with_path(leaf, shapes)
    return Model(cfg, variables, f"test-{seed}")
