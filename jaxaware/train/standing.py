"""Standing statistics: the 51 truncation-indexed batch-norm rows of a trained generator.

Row ``i`` of every batch norm's ``stats`` is meant for truncation ``t_i = i / (n - 1)``
(:mod:`jaxaware.truncation`). We fill it as BigGAN's "standing stats" do: run the
generator in training mode (batch statistics) on ``batches`` batches of latents
``z = t_i * truncnorm(-2, 2)`` with balanced classes, and average the batch means and the
(unbiased) batch variances over the batches. Row 0 (``t = 0``) uses ``z = 0`` exactly,
the truncation the row stands for: the statistics are then over classes and positions
only (as :mod:`convert.reference` calibrates its random models); no public API can select
row 0 alone (truncation must be > 0), it only enters blends for ``t < 1 / (n - 1)``.

The same base latents are scaled for every row (common random numbers), so neighbouring
rows differ by the effect of the truncation, not by sampling noise.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxaware.config import BigGANConfig
from jaxaware.model import Generator
from jaxaware.truncation import stats_blend


@functools.lru_cache(maxsize=8)
def _batch_stats_fn(config: BigGANConfig):
    module = Generator(config, train=True)
    blend = tuple(map(jnp.asarray, stats_blend(1.0, config.n_stats)))

    @jax.jit
    def run(params, z, y):
        _, state = module.apply({"params": params}, z, y, blend, mutable=["batch_stats"])
        return jax.tree_util.tree_map(lambda t: t, state["batch_stats"])

    return run


def _strip(tree):
    """Sown values are 1-tuples: unwrap them."""
    if isinstance(tree, tuple):
        return tree[0]
    return {k: _strip(v) for k, v in tree.items()}


def standing_stats(
    config: BigGANConfig,
    params,
    batches: int = 4,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """The ``stats`` collection (``[n_stats, C]`` mean/var per batch norm) for ``params``
    (plain, spectral norm already folded in)."""
    run = _batch_stats_fn(config)
    n, k = config.n_stats, config.num_classes
    key = jax.random.PRNGKey(seed)
    base = [jax.random.truncated_normal(jax.random.fold_in(key, b), -2.0, 2.0,
                                        (batch_size, config.z_dim), jnp.float32)
            for b in range(batches)]
    rng = np.random.default_rng(seed)
    labels = [rng.permutation(np.arange(batch_size) % k) for _ in range(batches)]
    ys = [jnp.asarray(np.eye(k, dtype=np.float32)[lab]) for lab in labels]
    rows = range(n)
    if progress:
        from tqdm.auto import tqdm

        rows = tqdm(rows, desc="standing stats", unit="row")
    per_row = []
    for i in rows:
        t = np.float32(i / (n - 1))
        acc = None
        for b in range(batches):
            got = _strip(run(params, base[b] * t, ys[b]))
            acc = got if acc is None else jax.tree_util.tree_map(jnp.add, acc, got)
        per_row.append(jax.tree_util.tree_map(lambda a: np.asarray(a) / batches, acc))
    return jax.tree_util.tree_map(lambda *r: np.stack(r).astype(np.float32), *per_row)
