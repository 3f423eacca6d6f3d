"""Improved precision and recall (Kynkaanniemi et al., NeurIPS 2019), exact and tiled.

Reference: T. Kynkaanniemi, T. Karras, S. Laine, J. Lehtinen, T. Aila, *Improved Precision
and Recall Metric for Assessing Generative Models* (arXiv:1904.06991), and its official code
(github.com/kynkaat/improved-precision-and-recall-metric, ``precision_recall.py``). The paper
under study (He et al., App. B) uses it per class with k = 3.

How the exact answer is reached without an ``N x M`` matrix
-----------------------------------------------------------
All comparisons are on squared distances ``D(a, b) = ||a - b||^2`` (the official code does
the same; the square root is monotone, so ``<=`` and ``<`` mean the same on either).

1. Both sets are shifted by their common mean and scaled by a power of two to ``|x| <= 1``
   (distances keep their order; nothing overflows) and rounded to float32; tiles of
   ``batch_size x batch_size`` squared distances come from one matmul,
   ``A = ||a||^2 + ||b||^2 - 2 a.b`` (``Precision.HIGHEST``, so no TF32 on GPUs). Centring
   removes most of the float32 cancellation of large, mostly positive features, but A is
   still only an estimate. With ``u = 2^-24`` and ``d`` features, the rounding of the inputs,
   of the dot product (any summation order) and of the two additions is bounded by
   ``|A - D| <= e = (d + 16) u (||a|| + ||b||)^2`` (about twice the textbook bound), plus
   ``4 (d + 16) 2^-126`` for values a CPU may flush to zero, so every tile yields a
   certified interval ``lower = A - e <= D <= upper = A + e``.
2. Radii: per point, a running top-``k + 9`` of ``lower`` over all tiles (the point itself
   gets exactly 0). ``h`` = the (k+1)-th smallest ``upper`` among them bounds the true k-NN
   squared distance from above, so only points with ``lower <= h`` can matter; when the
   kept list provably holds all of them (its largest ``lower > h``), the exact distances of
   those few candidates give the radius, otherwise that point's row is recomputed and every
   candidate checked.
3. Membership: a cross tile decides a pair when ``upper <= r`` (surely inside) or
   ``lower > r`` (surely outside), with float32 radii rounded down resp. up. Points left
   undecided (near a ball boundary) are re-examined pair by pair with exact distances.

*Exact distance* means ``sum((a - b)^2)`` of the inputs in float64, straight from the
differences: a point's distance to itself or to a duplicate is exactly 0, and
``D(a, b) == D(b, a)``. The result equals a full float64 distance matrix evaluated with the
same rule (up to how the last bit of a float64 sum rounds for non-identical points at an
exact tie), not a float32 approximation. Memory is ``O((N + M) d + batch_size^2)``; the work
is three float32 matmul passes (real-real, fake-fake, real-fake) plus a small exact remainder.
"""

from __future__ import annotations

import functools
import operator

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxaware.errors import JaxawareError
from jaxaware.metrics import _checks

_EXTRA = 8  # neighbours kept per point beyond k + 1 (candidates for the exact radius)
_U = 2.0**-24  # float32 unit roundoff
_TINY = 2.0**-126  # smallest normal float32: the most a flushed-to-zero value can lose


def precision_recall(real_features, fake_features, k: int = 3, *, inclusive: bool = True,
                     batch_size: int = 2048) -> tuple[float, float]:  # fmt: skip
    """Improved precision and recall of ``fake_features`` against ``real_features``.

    For a set ``S`` and ``p`` in ``S``, the radius ``r_S(p)`` is the distance from ``p`` to
    its k-th nearest neighbour in ``S`` other than itself: the (k+1)-th smallest of
    ``{||p - q|| : q in S}`` with ``p``'s own zero counted once (a duplicate of ``p`` is a
    neighbour at distance 0, as in the official code and in ``prdc``). With
    ``f(x, S) = 1 if ||x - p|| <= r_S(p) for some p in S`` (``<`` when ``inclusive=False``):

        precision = mean over fake x of f(x, real),   recall = mean over real x of f(x, fake).

    ``inclusive=True`` (the default) is the rule of the official code
    (``distance_batch <= self.D``); ``inclusive=False`` is what ``prdc.compute_prdc``
    computes (``<``). They differ only where a distance equals a radius exactly, e.g. with
    duplicated points: with ``k`` duplicates a point's radius is 0, and its copies in the
    other set count as inside only under ``<=``. The official code's optional
    ``clamp_to_percentile`` (used for its realism score) is not applied.

    Exact: no approximate neighbour search; see the module docstring for the float32 tiles,
    their certified error bound and the float64 recheck of every undecided pair.

    Args:
        real_features: ``[N, d]`` features of real images (N >= k + 1), finite.
        fake_features: ``[M, d]`` features of generated images (M >= k + 1), finite.
        k: neighbourhood size, ``>= 1`` (the paper and the official code use 3).
        inclusive: ``<=`` (official code, default) or ``<`` (``prdc``).
        batch_size: tile side; memory is ``O(batch_size^2)`` beyond the features. Results do
            not depend on it.

    Returns:
        ``(precision, recall)`` as Python floats in [0, 1].
    """
    real = _checks.features(real_features, "real_features")
    fake = _checks.features(fake_features, "fake_features")
    _checks.same_width(real, fake, "real_features", "fake_features")
    k = _checks.positive_int(k, "k")
    batch_size = _checks.positive_int(batch_size, "batch_size")
    for a, name in ((real, "real_features"), (fake, "fake_features")):
        if a.shape[0] < k + 1:
            raise JaxawareError(
                f"{name} has {a.shape[0]} samples; k={k} needs at least {k + 1} "
                "(each point's k nearest neighbours besides itself)"
            )
    n, m, d = real.shape[0], fake.shape[0], real.shape[1]
    # the fewest tiles of at most batch_size, then as small as they can be (less padding)
    tiles = -(-max(n, m) // batch_size)
    block = min(batch_size, _round_up(-(-max(n, m) // tiles), 8))
    coef = (np.float32((d + 16) * _U), np.float32(4 * (d + 16) * _TINY))
    centre = (real.sum(0, dtype=np.float64) + fake.sum(0, dtype=np.float64)) / (n + m)
    spread = max(_max_abs(real, centre), _max_abs(fake, centre))
    scale = 2.0 ** -np.ceil(np.log2(spread)) if spread > 0 else 1.0  # |x'| <= 1, exact
    xr = _Prepared(real, centre, scale, block)
    xf = _Prepared(fake, centre, scale, block)
    r_real = _radii(xr, k, coef)
    r_fake = _radii(xf, k, coef)
    in_fake, in_real = _membership(xr, r_real, xf, r_fake, coef, inclusive)
    return float(in_fake.mean()), float(in_real.mean())


# -- prepared features ---------------------------------------------------------------------


def _round_up(x: int, m: int) -> int:
    return -(-x // m) * m


def _max_abs(a: np.ndarray, centre: np.ndarray) -> float:
    step = max(1, 2**22 // a.shape[1])
    return max(float(np.abs(a[s : s + step] - centre).max()) for s in range(0, len(a), step))


class _Prepared:
    """One feature set: the originals (for exact distances) and the centred copy, scaled by
    a power of two to ``|x| <= 1`` (no float32 overflow; comparisons are scale-free) and
    rounded to float32, with squared norms and norms, padded with zero rows to a multiple
    of the tile. Squared distances in these units are ``scale2`` times the true ones."""

    def __init__(self, a: np.ndarray, centre: np.ndarray, scale: float, block: int):
        self.orig = a
        self.count = a.shape[0]
        self.block = block
        self.scale2 = scale * scale
        padded = _round_up(self.count, block)
        x = np.zeros((padded, a.shape[1]), np.float32)
        sq = np.zeros(padded, np.float64)
        step = max(1, 2**22 // a.shape[1])
        for s in range(0, self.count, step):
            c = (a[s : s + step].astype(np.float64) - centre) * scale
            x[s : s + len(c)] = c
            sq[s : s + len(c)] = np.einsum("ij,ij->i", c, c)
        self.x = jnp.asarray(x)
        self.sq = jnp.asarray(sq.astype(np.float32))
        self.norm = jnp.asarray(np.sqrt(sq).astype(np.float32))

    @property
    def padded(self) -> int:
        return self.x.shape[0]


def _exact_sq(a: np.ndarray, b: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """``sum((a[i] - b[j])^2)`` per pair, float64, from the differences (0 for duplicates)."""
    out = np.empty(len(i), np.float64)
    step = max(1, 2**21 // a.shape[1])
    for s in range(0, len(i), step):
        diff = a[i[s : s + step]].astype(np.float64) - b[j[s : s + step]]
        out[s : s + step] = np.einsum("ij,ij->i", diff, diff)
    return out


def _f32_below(r: np.ndarray) -> np.ndarray:
    """The largest float32 <= r (r float64, finite)."""
    r32 = r.astype(np.float32)
    return np.where(r32.astype(np.float64) > r, np.nextafter(r32, np.float32(-np.inf)), r32)


def _f32_above(r: np.ndarray) -> np.ndarray:
    """The smallest float32 >= r."""
    r32 = r.astype(np.float32)
    return np.where(r32.astype(np.float64) < r, np.nextafter(r32, np.float32(np.inf)), r32)


# -- jitted tiles --------------------------------------------------------------------------


def _bounds(xr, sqr, nr, xc, sqc, nc, coef):
    """Certified ``(lower, upper)`` bounds of the squared distances of a tile (float32):
    ``A -+ (c_rel (||a|| + ||b||)^2 + c_abs)``; ``c_abs`` covers values flushed to zero."""
    rel, tiny = coef
    g = jnp.dot(xr, xc.T, precision=lax.Precision.HIGHEST)
    a = (sqr[:, None] + sqc[None, :]) - 2.0 * g
    s = nr[:, None] + nc[None, :]
    e = rel * (s * s) + tiny
    return a - e, a + e


_bounds_jit = jax.jit(_bounds)


@functools.partial(jax.jit, static_argnames=("block", "keep"))
def _knn_rows(r0, x, sq, nrm, count, coef, *, block, keep):
    """For rows ``r0 .. r0 + block``: the ``keep`` smallest ``lower`` over all columns of the
    same set, with their ``upper`` and column indices. The point itself gets exactly 0."""
    xr = lax.dynamic_slice_in_dim(x, r0, block)
    sqr = lax.dynamic_slice_in_dim(sq, r0, block)
    nr = lax.dynamic_slice_in_dim(nrm, r0, block)
    rows = r0 + jnp.arange(block)
    inf = jnp.float32(jnp.inf)

    def step(t, carry):
        lo_k, up_k, ix_k = carry
        c0 = t * block
        lo, up = _bounds(xr, sqr, nr, lax.dynamic_slice_in_dim(x, c0, block),
                         lax.dynamic_slice_in_dim(sq, c0, block),
                         lax.dynamic_slice_in_dim(nrm, c0, block), coef)  # fmt: skip
        cols = c0 + jnp.arange(block)
        itself = rows[:, None] == cols[None, :]
        lo = jnp.where(itself, 0.0, lo)
        up = jnp.where(itself, 0.0, up)
        pad = (cols >= count)[None, :]
        lo = jnp.where(pad, inf, lo)
        up = jnp.where(pad, inf, up)
        all_lo = jnp.concatenate([lo_k, lo], axis=1)
        all_up = jnp.concatenate([up_k, up], axis=1)
        all_ix = jnp.concatenate([ix_k, jnp.broadcast_to(cols, (block, block))], axis=1)
        _, pos = lax.top_k(-all_lo, keep)
        take = functools.partial(jnp.take_along_axis, indices=pos, axis=1)
        return take(all_lo), take(all_up), take(all_ix)

    init = (jnp.full((block, keep), inf), jnp.full((block, keep), inf),
            jnp.full((block, keep), -1, jnp.int32))  # fmt: skip
    return lax.fori_loop(0, x.shape[0] // block, step, init)


@functools.partial(jax.jit, static_argnames=("block", "inclusive"))
def _cross_rows(r0, x, sqx, nx, rx_lo, rx_hi, y, sqy, ny, ry_lo, ry_hi, sure_y, maybe_y,
                coef, *, block, inclusive):  # fmt: skip
    """Rows ``r0 .. r0 + block`` of set x against all of set y. Column (y) flags: surely /
    maybe inside a ball of x; row (x) flags: surely / maybe inside a ball of y. Padded rows
    and columns carry radius -inf, so they are never inside anything."""
    cmp = operator.le if inclusive else operator.lt
    xr = lax.dynamic_slice_in_dim(x, r0, block)
    sqr = lax.dynamic_slice_in_dim(sqx, r0, block)
    nr = lax.dynamic_slice_in_dim(nx, r0, block)
    rlo = lax.dynamic_slice_in_dim(rx_lo, r0, block)[:, None]
    rhi = lax.dynamic_slice_in_dim(rx_hi, r0, block)[:, None]

    def step(t, carry):
        sure_y, maybe_y, sure_x, maybe_x = carry
        c0 = t * block
        lo, up = _bounds(xr, sqr, nr, lax.dynamic_slice_in_dim(y, c0, block),
                         lax.dynamic_slice_in_dim(sqy, c0, block),
                         lax.dynamic_slice_in_dim(ny, c0, block), coef)  # fmt: skip
        clo = lax.dynamic_slice_in_dim(ry_lo, c0, block)[None, :]
        chi = lax.dynamic_slice_in_dim(ry_hi, c0, block)[None, :]
        sy = lax.dynamic_slice_in_dim(sure_y, c0, block) | jnp.any(cmp(up, rlo), axis=0)
        my = lax.dynamic_slice_in_dim(maybe_y, c0, block) | jnp.any(cmp(lo, rhi), axis=0)
        sure_y = lax.dynamic_update_slice_in_dim(sure_y, sy, c0, 0)
        maybe_y = lax.dynamic_update_slice_in_dim(maybe_y, my, c0, 0)
        sure_x = sure_x | jnp.any(cmp(up, clo), axis=1)
        maybe_x = maybe_x | jnp.any(cmp(lo, chi), axis=1)
        return sure_y, maybe_y, sure_x, maybe_x

    no = jnp.zeros(block, bool)
    return lax.fori_loop(0, y.shape[0] // block, step, (sure_y, maybe_y, no, no))


# -- host-side passes ----------------------------------------------------------------------


def _pairs_below(q: _Prepared, rows: np.ndarray, c: _Prepared, coef, row_thr=None,
                 col_thr=None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """All pairs (row of ``q`` among ``rows``, column of ``c``) whose certified ``lower`` is
    ``<=`` the row's threshold ``row_thr[k]`` (float32, one per entry of ``rows``) or the
    column's threshold ``col_thr[j]``."""
    block = c.block
    out_r, out_c = [], []
    for s in range(0, len(rows), block):
        sel = rows[s : s + block]
        pad = np.zeros(block, np.int64)
        pad[: len(sel)] = sel
        xr, sqr, nr = q.x[pad], q.sq[pad], q.norm[pad]
        for c0 in range(0, c.count, block):
            lo, _ = _bounds_jit(xr, sqr, nr, c.x[c0 : c0 + block], c.sq[c0 : c0 + block],
                                c.norm[c0 : c0 + block], coef)  # fmt: skip
            width = min(block, c.count - c0)
            lo = np.asarray(lo)[: len(sel), :width]
            if row_thr is not None:
                hit = lo <= row_thr[s : s + block, None]
            else:
                hit = lo <= col_thr[None, c0 : c0 + width]
            r, j = np.nonzero(hit)
            out_r.append(sel[r])
            out_c.append(j + c0)
    if not out_r:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(out_r), np.concatenate(out_c)


def _radii(p: _Prepared, k: int, coef) -> np.ndarray:
    """Exact squared k-NN radii of a set, float64 ``[count]``."""
    keep = k + 1 + _EXTRA
    parts = [_knn_rows(r0, p.x, p.sq, p.norm, p.count, coef, block=p.block, keep=keep)
             for r0 in range(0, p.count, p.block)]  # fmt: skip
    lo = np.concatenate([np.asarray(t[0]) for t in parts])[: p.count]
    up = np.concatenate([np.asarray(t[1]) for t in parts])[: p.count]
    ix = np.concatenate([np.asarray(t[2]) for t in parts])[: p.count]
    h = np.partition(up, k, axis=1)[:, k]  # >= the (k+1)-th smallest D of the row
    covered = lo.max(axis=1) > h  # every point with lower <= h is in the kept list
    rows, pos = np.nonzero((lo <= h[:, None]) & covered[:, None])
    cols = ix[rows, pos].astype(np.int64)
    redo = np.flatnonzero(~covered)
    if redo.size:
        r2, c2 = _pairs_below(p, redo, p, coef, row_thr=h[redo])
        rows, cols = np.concatenate([rows, r2]), np.concatenate([cols, c2])
    dist = _exact_sq(p.orig, p.orig, rows, cols)
    order = np.lexsort((dist, rows))
    rows, dist = rows[order], dist[order]
    start = np.searchsorted(rows, np.arange(p.count))
    counts = np.diff(np.append(start, len(rows)))
    if np.any(counts < k + 1):  # cannot happen: the point and k certified neighbours
        raise AssertionError("precision_recall: fewer than k + 1 radius candidates")
    return dist[start + k]


def _thresholds(r: np.ndarray, padded: int) -> tuple[jnp.ndarray, jnp.ndarray]:
    """float32 ``(lo, hi)`` with ``lo <= r <= hi`` (r in tile units), normal numbers or 0 (a
    subnormal could be flushed to 0); padding gets -inf: never inside anything."""
    lo = np.full(padded, -np.inf, np.float32)
    hi = np.full(padded, -np.inf, np.float32)
    below, above = _f32_below(r), _f32_above(r)
    lo[: len(r)] = np.where(below < _TINY, np.float32(0), below)
    hi[: len(r)] = np.maximum(above, np.float32(_TINY))
    return jnp.asarray(lo), jnp.asarray(hi)


def _membership(xr: _Prepared, r_real: np.ndarray, xf: _Prepared, r_fake: np.ndarray, coef,
                inclusive: bool) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``(fake inside the real manifold [M], real inside the fake manifold [N])``."""
    rx_lo, rx_hi = _thresholds(r_real * xr.scale2, xr.padded)
    ry_lo, ry_hi = _thresholds(r_fake * xf.scale2, xf.padded)
    sure_f = jnp.zeros(xf.padded, bool)
    maybe_f = jnp.zeros(xf.padded, bool)
    sure_r, maybe_r = [], []
    for r0 in range(0, xr.count, xr.block):
        sure_f, maybe_f, s, mb = _cross_rows(
            r0, xr.x, xr.sq, xr.norm, rx_lo, rx_hi, xf.x, xf.sq, xf.norm, ry_lo, ry_hi,
            sure_f, maybe_f, coef, block=xr.block, inclusive=inclusive,
        )
        sure_r.append(np.asarray(s))
        maybe_r.append(np.asarray(mb))
    sure_f = np.asarray(sure_f)[: xf.count].copy()
    maybe_f = np.asarray(maybe_f)[: xf.count]
    sure_r = np.concatenate(sure_r)[: xr.count].copy()
    maybe_r = np.concatenate(maybe_r)[: xr.count]
    cmp = np.less_equal if inclusive else np.less
    # Undecided points: check every pair that may be inside with exact distances.
    for q, sure, maybe, c, radius, thr in (
        (xf, sure_f, maybe_f, xr, r_real, np.asarray(rx_hi)),
        (xr, sure_r, maybe_r, xf, r_fake, np.asarray(ry_hi)),
    ):
        open_ = np.flatnonzero(maybe & ~sure)
        if open_.size:
            rows, cols = _pairs_below(q, open_, c, coef, col_thr=thr)
            inside = cmp(_exact_sq(q.orig, c.orig, rows, cols), radius[cols])
            sure[rows[inside]] = True
    return sure_f, sure_r
