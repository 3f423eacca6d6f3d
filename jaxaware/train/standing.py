"""Standing statistics: batch-norm statistic rows estimated from a trained generator.

BigGAN's "standing stats": run the generator in training mode (batch statistics) on
``batches`` batches of fresh latents at a truncation, with balanced classes, and average
the batch means and the (unbiased) batch variances over the batches. One row per
truncation:

* BigGAN-deep stores ``n_stats`` rows, row ``i`` for truncation ``i / (n - 1)``
  (:mod:`jaxaware.truncation`). Row 0 (``t = 0``) uses ``z = 0`` exactly, the truncation the
  row stands for: the statistics are then over classes and positions only; no public API
  can select row 0 alone (truncation must be > 0), it only enters blends for small ``t``.
* BigGAN stores row 0 (the running statistics the reference samples with; for a model
  trained here, standing statistics at truncation 1) and one extra row per truncation in
  ``stats_truncations`` (``jaxaware standing-stats``).

Latents follow the family's law (``truncation x truncnorm(-2, 2)`` for BigGAN-deep,
``truncation x N(0, 1)`` for BigGAN). The same base latents are scaled for every row
(common random numbers), so neighbouring rows differ by the effect of the truncation, not
by sampling noise.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxaware.generate import statistic_weights
from jaxaware.models import family_of


@functools.lru_cache(maxsize=8)
def _batch_stats_fn(config):
    module = family_of(config).generator(config, train=True)
    blend = statistic_weights(config, 1.0)

    @jax.jit
    def run(params, z, y):
        _, state = module.apply({"params": params}, z, y, blend, mutable=["batch_stats"])
        return state["batch_stats"]

    return run


def _strip(tree):
    """Sown values are 1-tuples: unwrap them."""
    if isinstance(tree, tuple):
        return tree[0]
    return {k: _strip(v) for k, v in tree.items()}


def row_truncations(config) -> list[float]:
    """The truncation each statistic row of ``config`` stands for."""
    if family_of(config).name == "biggan-deep":
        return [i / (config.n_stats - 1) for i in range(config.n_stats)]
    return [1.0, *config.stats_truncations]


def base_latents(config, key, shape):
    """Unscaled latents of the family's law (truncnorm(-2, 2) or N(0, 1))."""
    if family_of(config).latent_law == "truncnorm":
        return jax.random.truncated_normal(key, -2.0, 2.0, shape, jnp.float32)
    return jax.random.normal(key, shape, jnp.float32)


def standing_stats(
    config,
    params,
    batches: int = 4,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = False,
    truncations=None,
) -> dict:
    """The ``stats`` collection (``[rows, C]`` mean/var per batch norm) for ``params``
    (plain, spectral norm already folded in): one row per truncation, by default
    :func:`row_truncations` (every row of ``config``)."""
    run = _batch_stats_fn(config)
    truncations = row_truncations(config) if truncations is None else list(truncations)
    k = config.num_classes
    key = jax.random.PRNGKey(seed)
    base = [base_latents(config, jax.random.fold_in(key, b), (batch_size, config.z_dim))
            for b in range(batches)]
    rng = np.random.default_rng(seed)
    labels = [rng.permutation(np.arange(batch_size) % k) for _ in range(batches)]
    ys = [jnp.asarray(np.eye(k, dtype=np.float32)[lab]) for lab in labels]
    rows = truncations
    if progress:
        from tqdm.auto import tqdm

        rows = tqdm(rows, desc="standing stats", unit="row")
    per_row = []
    for t in rows:
        t = np.float32(t)
        acc = None
        for b in range(batches):
            got = _strip(run(params, base[b] * t, ys[b]))
            acc = got if acc is None else jax.tree_util.tree_map(jnp.add, acc, got)
        per_row.append(jax.tree_util.tree_map(lambda a: np.asarray(a) / batches, acc))
    return jax.tree_util.tree_map(lambda *r: np.stack(r).astype(np.float32), *per_row)


def with_standing_rows(model, truncations, batches: int = 16, batch_size: int = 64,
                       seed: int = 0, progress: bool = False):
    """An original-BigGAN model with standing statistics at ``truncations`` added as rows.

    BigGAN-PyTorch's ``utils.accumulate_standing_stats`` (with its ``myBN``) averages the
    batch moments of ``num_standing_accumulations`` (16) batches of fresh latents in train
    mode; we do the same, with ``batches`` batches of ``batch_size`` latents of the family's
    law at each truncation (balanced classes), and store one row per truncation. Row 0 (the
    converted running statistics) is kept; a truncation that already has a row gets it
    replaced. Generation at such a truncation then normalises with its own row.
    """
    import dataclasses

    from jaxaware.errors import JaxawareError
    from jaxaware.truncation import check_truncation

    family = family_of(model.config)
    if family.name != "biggan":
        raise JaxawareError(
            f"standing statistics are added to original BigGAN models; this is a "
            f"{family.title} model, which already holds {model.config.n_stats} "
            "truncation-indexed rows"
        )
    for name, value in (("batches", batches), ("batch_size", batch_size)):
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise JaxawareError(f"{name} must be a positive integer; got {value!r}")
    new = sorted({check_truncation(t) for t in truncations})
    if not new:
        raise JaxawareError("give at least one truncation in (0, 1]")
    cfg = model.config
    keep = [j for j, t in enumerate(cfg.stats_truncations, start=1)
            if not any(abs(t - u) <= 1e-9 for u in new)]
    rows = standing_stats(cfg, model.params, int(batches), int(batch_size), seed, progress,
                          truncations=new)
    old = model.variables["stats"]
    stats = jax.tree_util.tree_map(
        lambda o, r: np.concatenate([np.asarray(o)[[0] + keep], r]).astype(np.float32),
        old, rows)
    truncs = [cfg.stats_truncations[j - 1] for j in keep] + new
    config = dataclasses.replace(cfg, n_stats=1 + len(truncs), stats_truncations=tuple(truncs))
    variables = {**model.variables, "stats": stats}
    return dataclasses.replace(model, config=config, variables=variables)
