"""Frechet distance: equal to the sqrtm formula (pytorch-fid's) where that is well
conditioned, exact closed forms where it is not (fewer samples than dimensions, singular
covariances), symmetric, one-line errors."""

import re
import warnings

import numpy as np
import pytest
import scipy.linalg

from jaxaware.errors import JaxawareError
from jaxaware.metrics import frechet, frechet_distance


@pytest.fixture(autouse=True)
def one_blas_thread():
    """numpy/scipy's BLAS on one thread: on a shared 2-core machine its spinning threads can
    make small LAPACK calls 100x slower."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        yield


def sqrtm_formula(a, b):
    """pytorch-fid's calculate_frechet_distance without its eps retry: np.cov (ddof 1) and
    scipy.linalg.sqrtm of S_a S_b (no ``disp`` argument: scipy >= 1.18 removed it)."""
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(s_a @ s_b)
    if np.iscomplexobj(root):
        root = root.real
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(s_a) + np.trace(s_b) - 2 * np.trace(root))


def gaussian(rng, n, d, scale=1.0, shift=0.0):
    mix = rng.standard_normal((d, d)) / np.sqrt(d)
    return (rng.standard_normal((n, d)) @ mix) * scale + shift


@pytest.mark.parametrize("n_a,n_b,d", [(400, 300, 8), (2000, 1500, 64), (300, 450, 120)])
def test_equals_sqrtm_formula(n_a, n_b, d, monkeypatch):
    rng = np.random.default_rng(d)
    a = gaussian(rng, n_a, d)
    b = gaussian(rng, n_b, d, scale=1.3, shift=rng.normal(0, 0.3, d))
    want = sqrtm_formula(a, b)
    assert want > 0.1
    np.testing.assert_allclose(frechet_distance(a, b), want, rtol=1e-9)
    a32, b32 = a.astype(np.float32), b.astype(np.float32)  # float32 in, float64 inside
    np.testing.assert_allclose(frechet_distance(a32, b32),
                               sqrtm_formula(a32.astype(np.float64), b32.astype(np.float64)),
                               rtol=1e-9)  # fmt: skip
    # both ways to the nuclear norm: SVD (small) and eigenvalues of the Gram (large)
    for limit in (0, 10**6):
        monkeypatch.setattr(frechet, "_SVD_MAX", limit)
        np.testing.assert_allclose(frechet_distance(a, b), want, rtol=1e-9)


def test_symmetric():
    rng = np.random.default_rng(1)
    for n_a, n_b, d in [(300, 200, 10), (20, 35, 50)]:
        a, b = gaussian(rng, n_a, d), gaussian(rng, n_b, d, 0.7, 1.0)
        np.testing.assert_allclose(frechet_distance(a, b), frechet_distance(b, a), rtol=1e-12)


def test_fewer_samples_than_dimensions():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((30, 200))
    shift = np.linspace(-1, 1, 200)
    # a translated copy: the covariances are equal (rank 29 of 200), FD = ||shift||^2
    np.testing.assert_allclose(frechet_distance(a, a + shift), shift @ shift, rtol=1e-12)
    # identical sets: 0 (rounding below 0 is returned as 0, never negative)
    assert 0.0 <= frechet_distance(a, a) < 1e-10
    assert frechet_distance(a, a.copy()) == frechet_distance(a, a)
    # sets living in a 12-dim subspace of 300 dims: the same FD as in the subspace, where
    # n >> d and the sqrtm formula is well conditioned
    basis, _ = np.linalg.qr(rng.standard_normal((300, 12)))
    x, y = gaussian(rng, 80, 12), gaussian(rng, 60, 12, 1.4, 0.5)
    want = sqrtm_formula(x, y)
    np.testing.assert_allclose(frechet_distance(x, y), want, rtol=1e-10)
    for limit in (0, 10**6):  # both ways to the nuclear norm
        frechet._SVD_MAX, saved = limit, frechet._SVD_MAX
        try:
            got = frechet_distance(x @ basis.T, y @ basis.T)
        finally:
            frechet._SVD_MAX = saved
        np.testing.assert_allclose(got, want, rtol=1e-6 if limit == 0 else 1e-10)
    # there the sqrtm formula itself is unreliable (S_a S_b is singular)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isfinite(frechet_distance(x @ basis.T, y @ basis.T))


def test_singular_covariance_with_many_samples():
    """n > d but constant or duplicated features: the covariance is singular (Cholesky fails,
    the pivoted one takes over). A constant feature adds (c_a - c_b)^2 to the FD of the
    other features; a duplicated feature is a rotation of a scaled one."""
    rng = np.random.default_rng(3)
    x, y = gaussian(rng, 500, 6), gaussian(rng, 400, 6, 1.2, 0.3)
    want = sqrtm_formula(x, y)
    xa = np.column_stack([x, np.full(500, 2.0), x[:, :1]])
    ya = np.column_stack([y, np.full(400, -1.0), y[:, :1]])
    # the duplicated column (v, v) is sqrt(2) (v, 0) after a rotation: scale it back
    xs = np.column_stack([x[:, 1:], np.sqrt(2) * x[:, 0]])
    ys = np.column_stack([y[:, 1:], np.sqrt(2) * y[:, 0]])
    np.testing.assert_allclose(frechet_distance(xa, ya), sqrtm_formula(xs, ys) + 9.0,
                               rtol=1e-9)  # fmt: skip
    assert want != pytest.approx(sqrtm_formula(xs, ys))
    np.testing.assert_allclose(frechet_distance(xa, xa + 1.0), 8.0, rtol=1e-9)


def raises(message):
    return pytest.raises(JaxawareError, match="^" + re.escape(message) + "$")


def test_bad_input():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((10, 4)), rng.standard_normal((8, 4))
    with raises("features_a and features_b have different widths (4 and 3); "
                "both must have the same feature dimension"):  # fmt: skip
        frechet_distance(a, b[:, :3])
    with raises("features_b must be a 2-D array [samples, features]; got shape (8,)"):
        frechet_distance(a, b[:, 0])
    with raises("features_a has 1 sample; the covariance (ddof=1) needs at least 2"):
        frechet_distance(a[:1], b)
    with raises("features_b has 0 samples; the covariance (ddof=1) needs at least 2"):
        frechet_distance(a, b[:0])
    bad = b.copy()
    bad[0, 0] = np.inf
    with raises("features_b contain NaN or inf values; features must be finite"):
        frechet_distance(a, bad)
    bad[0, 0] = np.nan
    with raises("features_b contain NaN or inf values; features must be finite"):
        frechet_distance(a, bad)
