"""Truncation: latent sampling and the truncation-indexed batch-norm statistics.

BigGAN-deep stores ``n_stats`` rows of batch-norm statistics per layer; row ``i`` holds
the statistics for truncation ``i * step`` with ``step = 1 / (n_stats - 1)``. The model
blends two rows. We compute which rows and their weights on the host and pass them to the
generator as arrays, so a jitted generator does not recompile when the truncation changes.

Reference quirk reproduced by default (``pytorch_pretrained_biggan``,
``BigGANBatchNorm.forward``): with ``coef, start = math.modf(t / step)`` in float64,

* if ``coef != 0``: ``stats = rows[start] * coef + rows[start + 1] * (1 - coef)``, i.e. the
  weights are *reversed* relative to linear interpolation (t = 0.405 uses row 20.75, not
  20.25);
* if ``coef == 0``: ``stats = rows[start]`` exactly;
* float noise in ``t / step`` makes some grid values snap to a neighbour (t = 0.14 uses
  row 8, t = 0.58 row 28).

``correct_lerp=True`` gives ordinary linear interpolation between the two rows instead.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.stats

from jaxaware.checks import check_fits_in_memory, check_int, check_seed
from jaxaware.errors import JaxawareError


def check_truncation(truncation) -> float:
    """Returns ``truncation`` as a float, or raises if it is outside (0, 1]."""
    try:
        t = float(truncation)
    except (TypeError, ValueError):
        raise JaxawareError(
            f"truncation must be a number in (0, 1]; got {truncation!r}"
        ) from None
    if not 0.0 < t <= 1.0 or math.isnan(t):
        raise JaxawareError(f"truncation must be in (0, 1]; got {truncation!r}")
    return t


def stats_blend(
    truncation: float, n_stats: int, correct_lerp: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Which two statistic rows a truncation blends, and their weights.

    Returns ``(rows, weights)``, int32 ``[2]`` and float32 ``[2]``; the generator uses
    ``stats = table[rows[0]] * weights[0] + table[rows[1]] * weights[1]``, the reference's
    own expression, so the default reproduces its reversed interpolation bit-for-bit (see
    the module docstring). On the grid (``coef == 0``) the second weight is 0.
    """
    t = check_truncation(truncation)
    step = 1.0 / (n_stats - 1)
    coef, start = math.modf(t / step)
    start = int(start)
    if coef == 0.0:
        rows, weights = (start, start), (1.0, 0.0)
    elif correct_lerp:
        rows, weights = (start, start + 1), (1.0 - coef, coef)
    else:
        rows, weights = (start, start + 1), (coef, 1.0 - coef)
    # float32 weights: torch scales the float32 rows by the Python float in float32.
    return np.array(rows, np.int32), np.array(weights, np.float32)


def effective_row(truncation: float, n_stats: int, correct_lerp: bool = False) -> float:
    """The fractional statistic row a truncation ends up using (for docs and tests)."""
    rows, weights = stats_blend(truncation, n_stats, correct_lerp)
    return float(rows[0] * np.float64(weights[0]) + rows[1] * np.float64(weights[1]))


def truncated_noise(
    num: int, dim_z: int, truncation: float = 1.0, seed: int | None = 0
) -> np.ndarray:
    """Latents ``truncation * truncnorm(-2, 2)``, float32 ``[num, dim_z]``.

    The same draw as ``pytorch_pretrained_biggan.utils.truncated_noise_sample`` (SciPy's
    ``truncnorm.rvs`` with ``np.random.RandomState(seed)``), so a seed gives the same
    latents in both packages. ``jax.random.truncated_normal`` would not.
    """
    t = check_truncation(truncation)
    num = check_int(num, "number of latents", 0)
    dim_z = check_int(dim_z, "dim_z")
    seed = check_seed(seed, allow_none=True)
    check_fits_in_memory(num * dim_z * 12, f"{num} latents of width {dim_z}")
    state = None if seed is None else np.random.RandomState(seed)
    values = scipy.stats.truncnorm.rvs(-2, 2, size=(num, dim_z), random_state=state)
    # Cast first, then scale in float32, in the reference's order.
    return values.astype(np.float32) * np.float32(t)
