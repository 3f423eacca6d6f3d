"""MS-SSIM (Wang, Simoncelli and Bovik, 2003) with pytorch-msssim's conventions, in JAX.

Reference: Z. Wang, E. P. Simoncelli, A. C. Bovik, *Multi-scale structural similarity for
image quality assessment*, Asilomar 2003; conventions of ``pytorch_msssim.ms_ssim`` 1.0.0
(github.com/VainF/pytorch-msssim), which ``tests/test_metrics_ms_ssim.py`` checks against.
The paper under study (He et al., App. B) scores the intra-class diversity of a class by
the mean MS-SSIM over pairs of 100 generated images.

For images ``x, y`` mapped from [-1, 1] to [0, 1] (``(v + 1) / 2``, data range ``L = 1``),
per channel and scale ``j``, with ``mu``, ``sigma^2`` and ``sigma_xy`` from an 11-tap Gaussian
window (sigma 1.5, divided by its sum; separable, *valid*: no padding), computed as
``G*(x^2) - mu_x^2`` and ``G*(xy) - mu_x mu_y``:

    cs_j   = mean over pixels of (2 sigma_xy + C2) / (sigma_x^2 + sigma_y^2 + C2)
    ssim_j = mean over pixels of (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1) * (cs map)
    MS-SSIM = mean over channels of  prod_{j < M} relu(cs_j)^w_j * relu(ssim_M)^w_M

``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``, weights ``(0.0448, 0.2856, 0.3001, 0.2363,
0.1333)`` from the finest scale to the coarsest. Between scales both images are 2x2
average-pooled; a side of odd length gets one zero row/column in front, and the zeros count
in the average (``avg_pool2d(kernel 2, padding = side % 2)``, ``count_include_pad``).

Scales for small images. Each scale needs a side of at least 11 px (the window) *after* the
halvings, so a smallest side ``s`` allows ``M = max{m <= 5 : s > 10 * 2^(m-1)}`` scales:

    side (px)   11-20  21-40  41-80  81-160  >= 161
    scales        1      2      3      4       5

(pytorch-msssim demands ``s > 160``, i.e. exactly the 5-scale row.) With ``M < 5`` the
first ``M`` weights (the finest scales) are used, renormalised to sum to 1; one scale is
plain SSIM with the relu. The toy world's 32 px images get 2 scales (weights 0.1356,
0.8644) and 64 px images 3 (0.0711, 0.4530, 0.4760). Below 11 px there is no MS-SSIM. With
5 scales the weights are used as published, as the reference does (they sum to 1.0001;
renormalising them would move results by ~2e-5).

Values outside [-1, 1] are an error, not clipped: the constants assume data range 1 after
the mapping, and out-of-range input is almost always a [0, 255] image passed by mistake.

Numerics (float32, agreeing with the float64 reference to ~1e-7):

* the Gaussian taps are the reference's float32 numbers bit for bit (:func:`_window`);
* the filter is 11 shifted, weighted slices per axis (22 multiply-adds per pixel, cheaper
  than a matmul, and the same operations for every pixel, so identical images give
  exactly 1);
* second moments are taken of ``x - 1/2``, which removes most of the float32 cancellation
  in ``G*(x^2) - mu^2``, with an exact correction for the taps' sum (:func:`_cov`);
* pixel means are summed one axis at a time.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxaware.errors import JaxawareError
from jaxaware.metrics import _checks

WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WINDOW = 11
SIGMA = 1.5
K1, K2 = 0.01, 0.03
_PIXELS_PER_STEP = 2**18  # images (or pairs) per jitted step: about this many values


def max_scales(height: int, width: int) -> int:
    """Scales the MS-SSIM of ``height x width`` images can use: the largest ``m <= 5`` with
    ``min(height, width) > 10 * 2^(m-1)`` (0 when the smaller side is under 11 px)."""
    side = min(height, width)
    return max([m for m in range(1, len(WEIGHTS) + 1) if side > (WINDOW - 1) * 2 ** (m - 1)],
               default=0)  # fmt: skip


def scale_weights(scales: int) -> np.ndarray:
    """The weights of ``scales`` scales (float64): the five standard weights as published
    (and as pytorch-msssim uses them; they sum to 1.0001) for 5 scales, otherwise the first
    ``scales`` of them divided by their sum."""
    w = np.asarray(WEIGHTS[:scales], np.float64)
    return w if scales == len(WEIGHTS) else w / w.sum()


def ms_ssim(images_a, images_b, *, scales: int | None = None) -> np.ndarray:
    """MS-SSIM of each pair ``(images_a[i], images_b[i])``.

    Formula, conventions and the rule for small images: see the module docstring (the
    reference is ``pytorch_msssim.ms_ssim(a, b, data_range=1.0, size_average=False)`` on
    ``(a + 1) / 2``, matched within 1e-5 in the tests).

    Args:
        images_a, images_b: ``[N, H, W, C]`` (NHWC) float images in [-1, 1], same shape,
            ``min(H, W) >= 11``.
        scales: number of scales, 1 to 5; ``None`` takes the most the size allows.

    Returns:
        float32 ``[N]``; identical images give 1.
    """
    a = _images(images_a, "images_a")
    b = _images(images_b, "images_b")
    if a.shape != b.shape:
        raise JaxawareError(
            f"images_a and images_b have different shapes {tuple(a.shape)} and "
            f"{tuple(b.shape)}; MS-SSIM compares pairs of images of the same shape"
        )
    scales = _scales(a.shape, scales)
    n = a.shape[0]
    chunk = _chunk(a.shape)
    out = np.empty(n, np.float32)
    run = _pairs_fn(a.shape[1:], scales)
    for s in range(0, n, chunk):
        pa, pb, size = _padded(a, s, chunk), _padded(b, s, chunk), min(chunk, n - s)
        out[s : s + size] = np.asarray(run(pa, pb))[:size]
    return out


def ms_ssim_diversity(images, max_pairs: int | None = None, seed: int = 0, *,
                      scales: int | None = None) -> float:  # fmt: skip
    """Mean MS-SSIM over the distinct pairs of a set: ``2 / (N (N - 1)) sum_{i<j}
    MS-SSIM(x_i, x_j)``; lower means more diverse.

    The diversity protocol of the paper's App. B (100 generated images of a class). Self
    pairs ``(i, i)`` (always 1) and the repeated order ``(j, i)`` are excluded: 100 images
    give 4,950 pairs. (App. B speaks of 10,000 pairs, i.e. all ordered pairs with the self
    pairs, whose mean is ``0.99 * ours + 0.01``.) With ``max_pairs`` smaller than the number
    of distinct pairs, that many distinct pairs are drawn uniformly without replacement
    (``numpy.random.default_rng(seed)``).

    Each image's pyramid and its windowed means and squares are computed once; per pair only
    the cross term ``G*(x_i x_j)`` is. Formula and small-image rule: module docstring.

    Args:
        images: ``[N, H, W, C]`` float images in [-1, 1], ``N >= 2``, ``min(H, W) >= 11``.
        max_pairs: cap on the number of pairs, ``>= 1``, or None for all.
        seed: seed of the pair sample (used only when pairs are capped).
        scales: as in :func:`ms_ssim`.

    Returns:
        The mean as a Python float.
    """
    x = _images(images, "images")
    if x.shape[0] < 2:
        raise JaxawareError(
            f"ms_ssim_diversity needs at least 2 images (one distinct pair); got {x.shape[0]}"
        )
    max_pairs = _checks.positive_int(max_pairs, "max_pairs", allow_none=True)
    scales = _scales(x.shape, scales)
    n = x.shape[0]
    first, second = np.triu_indices(n, 1)
    if max_pairs is not None and max_pairs < len(first):
        pick = np.sort(np.random.default_rng(seed).choice(len(first), max_pairs, replace=False))
        first, second = first[pick], second[pick]
    chunk = _chunk(x.shape)
    stats_fn = _stats_fn(x.shape[1:], scales)
    per_image = [stats_fn(_padded(x, s, chunk)) for s in range(0, n, chunk)]
    prepared = jax.tree_util.tree_map(lambda *p: jnp.concatenate(p), *per_image)
    cross = _cross_fn(x.shape[1:], scales)
    total = 0.0
    for s in range(0, len(first), chunk):
        i, j = first[s : s + chunk], second[s : s + chunk]
        size = len(i)
        i = np.pad(i, (0, chunk - size)).astype(np.int32)
        j = np.pad(j, (0, chunk - size), constant_values=1).astype(np.int32)
        total += float(np.asarray(cross(prepared, i, j), np.float64)[:size].sum())
    return total / len(first)


# -- checks --------------------------------------------------------------------------------


def _images(x, name: str) -> np.ndarray:
    a = _checks.as_real_array(x, name)
    if a.ndim != 4:
        raise JaxawareError(
            f"{name} must be a 4-D array [N, H, W, C] (NHWC); got shape {tuple(a.shape)}"
        )
    if a.shape[0] == 0 or a.shape[3] == 0:
        raise JaxawareError(
            f"{name} must hold at least one image with at least one channel; "
            f"got shape {tuple(a.shape)}"
        )
    _checks.check_finite(a, name, "images")
    lo, hi = float(a.min()), float(a.max())
    if lo < -1.0 or hi > 1.0:
        raise JaxawareError(
            f"{name} have values in [{lo:.6g}, {hi:.6g}]; images must be in [-1, 1] "
            "(map uint8 images with x / 127.5 - 1)"
        )
    if min(a.shape[1], a.shape[2]) < WINDOW:
        raise JaxawareError(
            f"images are {a.shape[1]}x{a.shape[2]} px; MS-SSIM needs at least "
            f"{WINDOW}x{WINDOW} px (the Gaussian window)"
        )
    return a.astype(np.float32, copy=False)


def _scales(shape, scales) -> int:
    allowed = max_scales(shape[1], shape[2])
    if scales is None:
        return allowed
    ok = isinstance(scales, (int, np.integer)) and not isinstance(scales, (bool, np.bool_))
    if not ok or not 1 <= scales <= len(WEIGHTS):
        raise JaxawareError(f"scales must be an integer from 1 to 5 or None; got {scales!r}")
    if scales > allowed:
        raise JaxawareError(
            f"{shape[1]}x{shape[2]} px images allow at most {allowed} scales (each scale "
            f"needs a side of at least {WINDOW} px after halving); got scales={scales}"
        )
    return int(scales)


def _chunk(shape) -> int:
    """Images (or pairs) per jitted step, padded to it whatever their number (one compiled
    program per image size): about ``_PIXELS_PER_STEP`` values, 4 to 16 (larger steps were
    slower on a 2-core CPU: their intermediates leave the cache)."""
    return int(np.clip(_PIXELS_PER_STEP // (shape[1] * shape[2] * shape[3]), 4, 16))


def _padded(x: np.ndarray, start: int, chunk: int) -> np.ndarray:
    """Images ``start .. start + chunk``, zero-padded to a full chunk (fixed jit shapes)."""
    part = x[start : start + chunk]
    if len(part) < chunk:
        part = np.concatenate([part, np.zeros((chunk - len(part),) + x.shape[1:], x.dtype)])
    return part


# -- the computation -----------------------------------------------------------------------


def _window() -> np.ndarray:
    """The float32 Gaussian taps of pytorch-msssim, bit for bit: ``exp(-r^2 / 4.5)`` of the
    float32 arguments, rounded to float32, divided by their sum rounded to float32. They sum
    to 1 - 3e-8 rather than 1, which moves the MS-SSIM of noise images by ~2e-5 (their cs
    terms are near 0), so we use the same numbers."""
    r = np.arange(WINDOW, dtype=np.float32) - np.float32(WINDOW // 2)
    arg = -(r * r) / np.float32(2 * SIGMA**2)
    g = np.exp(arg.astype(np.float64)).astype(np.float32)
    return g / np.float32(g.astype(np.float64).sum())


def _pool(x):
    """2x2 average pool of ``[N, C, H, W]``; an odd side gets a zero row/column in front,
    counted in the average (as ``avg_pool2d(padding=side % 2)``)."""
    n, c, h, w = x.shape
    x = jnp.pad(x, ((0, 0), (0, 0), (h % 2, 0), (w % 2, 0)))
    h2, w2 = x.shape[2] // 2, x.shape[3] // 2
    return x.reshape(n, c, h2, 2, w2, 2).sum(axis=(3, 5)) * 0.25


def _blur(x):
    """Valid separable Gaussian filter of ``[N, C, H, W]``: 11 shifted, weighted slices per
    axis (the same float32 operations for every pixel, so equal inputs give equal bits)."""
    g = [np.float32(v) for v in _window()]
    h = x.shape[2] - WINDOW + 1
    x = sum(g[t] * x[:, :, t : t + h] for t in range(WINDOW))
    w = x.shape[3] - WINDOW + 1
    # The barrier keeps XLA from fusing the 11-tap sum into every consumer (recomputing it).
    return lax.optimization_barrier(sum(g[t] * x[:, :, :, t : t + w] for t in range(WINDOW)))


def _window_sums() -> tuple[np.float32, np.float32]:
    """``S``, the total weight of the 2-D window (``(sum g)^2``), and ``1 - S``."""
    total = float(_window().astype(np.float64).sum()) ** 2
    return np.float32(total), np.float32(1.0 - total)


def _prepare(images, scales: int):
    """Per scale: the image ``x`` (in [0, 1], pooled), shifted to ``x' = x - 1/2``, with
    ``G*x'`` and ``G*(x'^2)``; ``[N, C, H_j, W_j]`` each (planes: W is the fast axis)."""
    x = (jnp.moveaxis(images, 3, 1) + 1.0) * 0.5
    levels = []
    for j in range(scales):
        if j:
            x = _pool(x)
        xs = x - 0.5
        c = x.shape[1]
        moments = _blur(jnp.concatenate([xs, xs * xs], axis=1))
        levels.append((xs, moments[:, :c], moments[:, c:]))
    return levels


def _cov(e_ab, g_a, g_b):
    """The reference's ``G*(ab) - (G*a)(G*b)`` from the shifted moments. With ``a = a' + 1/2``,
    ``b = b' + 1/2`` and window weight ``S = 1 - delta`` it is exactly
    ``G*(a'b') - (G*a')(G*b') + delta ((G*a' + G*b') / 2 + S / 4)``: the shift removes most
    of the float32 cancellation of ``E[x^2] - mu^2``, the delta term keeps the reference's
    value (its window sums to ``1 - 3e-8``)."""
    total, delta = _window_sums()
    return (e_ab - g_a * g_b) + delta * (0.5 * (g_a + g_b) + 0.25 * total)


def _scale_terms(g_a, g_b, e_aa, e_bb, e_ab):
    """Per (image, channel) ``(ssim, cs)`` of one scale from the shifted moments."""
    c1, c2 = K1**2, K2**2  # data range 1
    total, _ = _window_sums()
    mu_a, mu_b = g_a + 0.5 * total, g_b + 0.5 * total  # = G*a, G*b
    s_aa = _cov(e_aa, g_a, g_a)
    s_bb = _cov(e_bb, g_b, g_b)
    s_ab = _cov(e_ab, g_a, g_b)
    cs_map = (2.0 * s_ab + c2) / (s_aa + s_bb + c2)
    ssim_map = (2.0 * mu_a * mu_b + c1) / (mu_a * mu_a + mu_b * mu_b + c1) * cs_map
    return _mean_hw(ssim_map), _mean_hw(cs_map)


def _mean_hw(x):
    """Mean over height and width of ``[N, C, H, W]``, one axis at a time (short sums)."""
    return x.sum(axis=3).sum(axis=2) / (x.shape[2] * x.shape[3])


def _combine(ssims, css, scales: int):
    w = scale_weights(scales).astype(np.float32)
    val = jnp.maximum(ssims[-1], 0.0) ** w[-1]
    for j in range(scales - 1):
        val = val * jnp.maximum(css[j], 0.0) ** w[j]
    return val.mean(axis=-1)  # over channels


@functools.cache
def _pairs_fn(shape, scales):
    """MS-SSIM of ``(a[i], b[i])``. Both sets go through one ``_prepare`` and the five
    moments of a scale through one filter call, so equal images take the same float32
    operations and give exactly 1."""

    @jax.jit
    def run(a, b):
        n, c = a.shape[0], a.shape[3]
        ssims, css = [], []
        for xs, _, _ in _prepare(jnp.concatenate([a, b]), scales):
            xa, xb = xs[:n], xs[n:]
            z = _blur(jnp.concatenate([xa, xb, xa * xa, xb * xb, xa * xb], axis=1))
            s, cs = _scale_terms(*(z[:, k * c : (k + 1) * c] for k in range(5)))
            ssims.append(s)
            css.append(cs)
        return _combine(ssims, css, scales)

    return run


@functools.cache
def _stats_fn(shape, scales):
    return jax.jit(functools.partial(_prepare, scales=scales))


@functools.cache
def _cross_fn(shape, scales):
    """MS-SSIM of the pairs ``(i[p], j[p])`` from the per-image statistics of ``_prepare``."""

    @jax.jit
    def run(levels, i, j):
        ssims, css = [], []
        for xs, g, e2 in levels:
            s, c = _scale_terms(g[i], g[j], e2[i], e2[j], _blur(xs[i] * xs[j]))
            ssims.append(s)
            css.append(c)
        return _combine(ssims, css, scales)

    return run
