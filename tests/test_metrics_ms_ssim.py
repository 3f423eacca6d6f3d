"""MS-SSIM: equal to pytorch-msssim (>= 161 px, random and structured images, odd sizes),
the small-image rule checked against a direct numpy computation, identical images give
exactly 1, the diversity mean equals the explicit double loop, one-line errors."""

import importlib
import re

import numpy as np
import pytest

from jaxaware.errors import JaxawareError
from jaxaware.metrics import max_scales, ms_ssim, ms_ssim_diversity, scale_weights

torch = pytest.importorskip("torch")
pytorch_msssim = pytest.importorskip("pytorch_msssim")


def reference(a, b, dtype=torch.float64):
    """pytorch_msssim.ms_ssim on (x + 1) / 2, NCHW, data_range 1, one value per pair."""

    def to_torch(x):
        return torch.from_numpy(((x.astype(np.float64) + 1) / 2).transpose(0, 3, 1, 2))

    x, y = to_torch(a).to(dtype), to_torch(b).to(dtype)
    out = pytorch_msssim.ms_ssim(x, y, data_range=1.0, size_average=False)
    return out.numpy().astype(np.float64)


def structured(rng, n, h, w):
    """Smooth gradients, a rectangle and a disc of random colours, and a little noise."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    out = np.empty((n, h, w, 3))
    for i in range(n):
        c = rng.uniform(-1, 1, (4, 3))
        img = c[0] + (c[1] - c[0]) * (xx[..., None] * rng.uniform(0.2, 1)
                                      + yy[..., None] * rng.uniform(0, 0.8)) / 2  # fmt: skip
        y0, x0 = rng.integers(0, h // 2), rng.integers(0, w // 2)
        img[y0 : y0 + h // 3, x0 : x0 + w // 4] = c[2]
        cy, cx, r = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w, h / 6
        img[(np.mgrid[0:h, 0:w][0] - cy) ** 2 + (np.mgrid[0:h, 0:w][1] - cx) ** 2 < r * r] = c[3]
        out[i] = img + rng.normal(0, 0.02, img.shape)
    return np.clip(out, -1, 1).astype(np.float32)


@pytest.mark.parametrize("size", [(176, 176), (181, 193)])
def test_equals_pytorch_msssim(size, one_torch_thread):
    rng = np.random.default_rng(sum(size))
    h, w = size
    noise = rng.uniform(-1, 1, (4, h, w, 3)).astype(np.float32)
    shapes = structured(rng, 4, h, w)
    noisy_copy = np.clip(shapes + rng.normal(0, 0.1, shapes.shape), -1, 1).astype(np.float32)
    # independent noise (cs near 0 at the fine scales), different structured images, copies
    # with noise added, structure against noise
    a = np.concatenate([noise[:2], shapes[:2], shapes[2:], shapes[2:]])
    b = np.concatenate([noise[2:], shapes[2:], noisy_copy[2:], noise[2:]])
    got = ms_ssim(a, b)
    assert got.shape == (len(a),) and got.dtype == np.float32
    np.testing.assert_allclose(got, reference(a, b), rtol=0, atol=1e-5)
    np.testing.assert_allclose(got, reference(a, b, torch.float32), rtol=0, atol=1e-5)
    # the cases span the range: near 0 for noise, near 1 for the noisy copies
    assert got[:2].max() < 0.2 and got[4:6].min() > 0.8


def test_identical_images_give_exactly_one():
    rng = np.random.default_rng(1)
    for shape in [(3, 176, 176, 3), (2, 32, 32, 1), (1, 11, 15, 2)]:
        x = np.clip(rng.normal(0, 0.5, shape), -1, 1).astype(np.float32)
        np.testing.assert_array_equal(ms_ssim(x, x.copy()), np.ones(shape[0], np.float32))


def test_scale_rule():
    assert [max_scales(s, s) for s in (10, 11, 20, 21, 40, 41, 80, 81, 160, 161, 256)] == [
        0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]  # fmt: skip
    assert max_scales(32, 200) == 2 and max_scales(64, 64) == 3  # the toy world
    np.testing.assert_allclose(scale_weights(2), [0.0448 / 0.3304, 0.2856 / 0.3304])
    np.testing.assert_allclose(scale_weights(3).sum(), 1.0)
    np.testing.assert_array_equal(scale_weights(5), [0.0448, 0.2856, 0.3001, 0.2363, 0.1333])


# -- a direct numpy computation, float64, for the sizes pytorch-msssim refuses ------------


def numpy_ms_ssim(a, b, weights):
    """MS-SSIM written out: valid separable Gaussian (the reference's taps), 2x2 average
    pool with a zero row/column in front of an odd side, relu(cs) at the finer scales and
    relu(ssim) at the coarsest, product of powers, mean over channels."""
    taps = importlib.import_module("pytorch_msssim.ssim")._fspecial_gauss_1d(11, 1.5)
    taps = taps.flatten().double().numpy()

    def blur(x):  # [N, H, W, C]
        h, w = x.shape[1] - 10, x.shape[2] - 10
        x = sum(taps[t] * x[:, t : t + h] for t in range(11))
        return sum(taps[t] * x[:, :, t : t + w] for t in range(11))

    def pool(x):
        x = np.pad(x, ((0, 0), (x.shape[1] % 2, 0), (x.shape[2] % 2, 0), (0, 0)))
        n, h, w, c = x.shape
        return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))

    x, y = (a.astype(np.float64) + 1) / 2, (b.astype(np.float64) + 1) / 2
    value = 1.0
    for j, wj in enumerate(weights):
        mx, my = blur(x), blur(y)
        sxx, syy, sxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
        cs = (2 * sxy + 0.03**2) / (sxx + syy + 0.03**2)
        lum = (2 * mx * my + 0.01**2) / (mx**2 + my**2 + 0.01**2)
        if j < len(weights) - 1:
            value = value * np.maximum(cs.mean(axis=(1, 2)), 0) ** wj
            x, y = pool(x), pool(y)
        else:
            value = value * np.maximum((lum * cs).mean(axis=(1, 2)), 0) ** wj
    return value.mean(axis=-1)


@pytest.mark.parametrize("size,scales", [((32, 32), 2), ((64, 64), 3), ((45, 37), 2),
                                         ((99, 90), 4)])  # fmt: skip
def test_small_images_against_numpy(size, scales):
    rng = np.random.default_rng(size[0])
    a = structured(rng, 4, *size)
    b = np.clip(a[::-1] * 0.5 + rng.normal(0, 0.2, a.shape), -1, 1).astype(np.float32)
    assert max_scales(*size) == scales
    weights = list(np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333][:scales]) /
                   sum([0.0448, 0.2856, 0.3001, 0.2363, 0.1333][:scales]))  # fmt: skip
    for x, y in [(a, b), (a, a[::-1].copy()), (a, np.clip(a + 0.05, -1, 1))]:
        np.testing.assert_allclose(ms_ssim(x, y), numpy_ms_ssim(x, y, weights), atol=2e-6)
        if scales == 3:  # fewer scales on request, renormalised the same way
            w2 = [0.0448 / 0.3304, 0.2856 / 0.3304]
            np.testing.assert_allclose(ms_ssim(x, y, scales=2), numpy_ms_ssim(x, y, w2),
                                       atol=2e-6)  # fmt: skip


def test_one_scale_is_ssim_with_relu():
    rng = np.random.default_rng(4)
    a, b = structured(rng, 3, 32, 40), structured(rng, 3, 32, 40)
    ssim = importlib.import_module("pytorch_msssim.ssim").ssim
    x, y = (torch.from_numpy(((v.astype(np.float64) + 1) / 2).transpose(0, 3, 1, 2))
            for v in (a, b))  # fmt: skip
    want = ssim(x, y, data_range=1.0, size_average=False, nonnegative_ssim=True).numpy()
    np.testing.assert_allclose(ms_ssim(a, b, scales=1), want, atol=2e-6)


def test_diversity_is_the_mean_over_distinct_pairs():
    rng = np.random.default_rng(2)
    x = structured(rng, 9, 32, 32)
    x[5] = x[2]  # a duplicate pair counts as the pair it is (MS-SSIM 1)
    pairs = []
    for i in range(9):
        for j in range(i + 1, 9):
            pairs.append((i, j))
    first, second = map(list, zip(*pairs))
    loop = ms_ssim(x[first], x[second])  # the explicit double loop, evaluated in one batch
    assert len(loop) == 36 and loop[pairs.index((2, 5))] == 1.0
    np.testing.assert_allclose(ms_ssim_diversity(x), loop.mean(dtype=np.float64), rtol=1e-6)
    # self pairs are excluded: two images give exactly their one pair
    np.testing.assert_allclose(ms_ssim_diversity(x[:2]), loop[0], rtol=1e-6)
    # a cap on the pairs: a uniform sample of distinct pairs from the seed
    pick = np.sort(np.random.default_rng(3).choice(36, 10, replace=False))
    np.testing.assert_allclose(ms_ssim_diversity(x, max_pairs=10, seed=3),
                               loop[pick].mean(dtype=np.float64), rtol=1e-6)  # fmt: skip
    assert ms_ssim_diversity(x, max_pairs=10, seed=4) != ms_ssim_diversity(x, max_pairs=10)
    assert ms_ssim_diversity(x, max_pairs=36) == ms_ssim_diversity(x, max_pairs=1000)


def raises(message):
    return pytest.raises(JaxawareError, match="^" + re.escape(message) + "$")


def test_bad_input():
    x = np.zeros((2, 32, 32, 3), np.float32)
    with raises("images_a must be a 4-D array [N, H, W, C] (NHWC); got shape (32, 32, 3)"):
        ms_ssim(x[0], x[0])
    with raises("images_a and images_b have different shapes (2, 32, 32, 3) and "
                "(2, 64, 64, 3); MS-SSIM compares pairs of images of the same shape"):  # fmt: skip
        ms_ssim(x, np.zeros((2, 64, 64, 3), np.float32))
    with raises("images are 10x32 px; MS-SSIM needs at least 11x11 px (the Gaussian window)"):
        ms_ssim(x[:, :10], x[:, :10])
    with raises("images_b have values in [0, 255]; images must be in [-1, 1] "
                "(map uint8 images with x / 127.5 - 1)"):  # fmt: skip
        ms_ssim(x, np.full((2, 32, 32, 3), 255, np.uint8) * (np.arange(2) > 0)[:, None, None,
                                                                                None])  # fmt: skip
    with raises("images_a have values in [-1.5, 0]; images must be in [-1, 1] "
                "(map uint8 images with x / 127.5 - 1)"):  # fmt: skip
        ms_ssim(np.where(np.arange(32) == 3, -1.5, 0.0)[None, None, :, None] + x, x)
    bad = x.copy()
    bad[1, 2, 3, 0] = np.nan
    with raises("images_a contain NaN or inf values; images must be finite"):
        ms_ssim(bad, x)
    with raises("32x32 px images allow at most 2 scales (each scale needs a side of at least "
                "11 px after halving); got scales=3"):  # fmt: skip
        ms_ssim(x, x, scales=3)
    for s in (0, 6, 2.0, True):
        with raises(f"scales must be an integer from 1 to 5 or None; got {s!r}"):
            ms_ssim(x, x, scales=s)
    with raises("ms_ssim_diversity needs at least 2 images (one distinct pair); got 1"):
        ms_ssim_diversity(x[:1])
    with raises("max_pairs must be an integer >= 1 or None; got 0"):
        ms_ssim_diversity(x, max_pairs=0)
    with raises("images must hold at least one image with at least one channel; "
                "got shape (0, 32, 32, 3)"):  # fmt: skip
        ms_ssim_diversity(x[:0])
