"""Shared test helpers (not a test module)."""

from __future__ import annotations

import contextlib
import importlib
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


# A tiny BigGAN-deep for training: 32 px, the toy world's 16 classes, 4 blocks.
TRAIN_TINY = BigGANDeepConfig(
    layers=((True, 16, 8), (True, 8, 4), (False, 4, 2), (True, 2, 1)), output_dim=32,
    z_dim=8, class_embed_dim=8, channel_width=4, num_classes=16, attention_layer_position=2,
)


def raises(message):
    """pytest.raises for a JaxawareError with exactly this message."""
    return pytest.raises(JaxawareError, match="^" + re.escape(message) + "$")


@contextlib.contextmanager
def forward_traces(module: str = "jaxaware.generate"):
    """Counts the traces of jitted code that calls :func:`jaxaware.generate.forward` through
    ``module``'s global ``forward``: a list of each call's keyword arguments (``start``,
    ``stop``, ``capture``, ...). Jitted code looks that global up only while it is traced,
    and a compiled program runs without calling Python, so every entry is one trace (one
    compilation) and a call that reuses a compiled program adds none.

    On entry JAX's caches are cleared (nothing compiled before the block hides a trace),
    and so is :func:`~jaxaware.generate.jitted_forward`'s cache on entry and exit: it binds
    ``forward`` when it is built. ``module`` is a dotted name (``jaxaware.generate`` itself
    is shadowed by the function of that name in the ``jaxaware`` package)."""
    from jaxaware.generate import jitted_forward

    mod = importlib.import_module(module)
    real = mod.forward
    calls = []

    def counted(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    mod.forward = counted
    jitted_forward.cache_clear()
    jax.clear_caches()
    try:
        yield calls
    finally:
        mod.forward = real
        jitted_forward.cache_clear()


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


def load_experiment(name: str):
    """``experiments/<name>.py`` as a module (the experiments are scripts, not a package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "experiments" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
