"""Improved precision and recall: equal to prdc (``<``) and to the official rule (``<=``)
written out with a full distance matrix, on data with duplicates, exact ties and float32
cancellation; independent of the tile size; a hand-checked case; one-line errors."""

import re

import numpy as np
import pytest

from jaxaware.errors import JaxawareError
from jaxaware.metrics import precision_recall

prdc = pytest.importorskip("prdc")


@pytest.fixture(autouse=True)
def one_blas_thread():
    """numpy/scipy's BLAS on one thread: on a shared 2-core machine its spinning threads can
    make small LAPACK calls 100x slower."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        yield


def official(real, fake, k, inclusive=True):
    """The official rule (kynkaat/improved-precision-and-recall-metric) in plain numpy: full
    squared-distance matrices in float64, radius = k-th neighbour besides the point itself
    (the (k+1)-th smallest of its row, its own 0 included), ``<=`` (or ``<``)."""
    real, fake = real.astype(np.float64), fake.astype(np.float64)

    def sq(a, b):
        return ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)

    r_real = np.partition(sq(real, real), k, axis=1)[:, k]
    r_fake = np.partition(sq(fake, fake), k, axis=1)[:, k]
    d = sq(real, fake)  # [real, fake]
    cmp = np.less_equal if inclusive else np.less
    precision = cmp(d, r_real[:, None]).any(axis=0).mean()
    recall = cmp(d, r_fake[None, :]).any(axis=1).mean()
    return float(precision), float(recall)


def with_duplicates(rng, n=70, m=60, d=8, quantum=None):
    """Random features with duplicates inside each set (some repeated more than k times, so
    their radius is 0; one point 17 times, more than the neighbours kept per point) and
    across the sets; one far-off real point 7 times, and once in fake, where only ``<=``
    counts it as inside. With ``quantum`` the values are multiples of it: every distance is
    exact in float64 and ties between different pairs are common."""
    real = rng.standard_normal((n, d))
    fake = rng.standard_normal((m, d)) * 1.2 + 0.3
    if quantum:
        real, fake = np.round(real / quantum) * quantum, np.round(fake / quantum) * quantum
    fake[:8] = real[:8]  # across the sets
    real[30] += 40.0
    real[20:26] = real[30]  # 7 copies, far from everything else
    fake[8] = real[30]
    fake[30:46] = fake[50]  # 17 copies
    real[60:62] = fake[5]  # 2 copies of a point of fake
    return real.astype(np.float32), fake.astype(np.float32)


def prdc_pr(real, fake, k):
    out = prdc.compute_prdc(real, fake, k)
    return float(out["precision"]), float(out["recall"])


@pytest.mark.parametrize("k", [1, 3, 5])
def test_equals_prdc_exclusive(k):
    rng = np.random.default_rng(k)
    for quantum in (0.25, None):
        real, fake = with_duplicates(rng, quantum=quantum)
        assert precision_recall(real, fake, k, inclusive=False) == prdc_pr(real, fake, k)
    # no duplicates, wider features, unequal sizes
    real = rng.standard_normal((90, 32)).astype(np.float32)
    fake = (rng.standard_normal((75, 32)) * 0.9 + 0.1).astype(np.float32)
    assert precision_recall(real, fake, k, inclusive=False) == prdc_pr(real, fake, k)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_equals_official_rule_inclusive(k):
    rng = np.random.default_rng(10 + k)
    real, fake = with_duplicates(rng, quantum=0.5)
    got = precision_recall(real, fake, k)
    assert got == official(real, fake, k)
    assert precision_recall(real, fake, k, inclusive=False) == official(real, fake, k, False)
    # the data has ties at the radius, so the two rules really differ here
    assert official(real, fake, k) != official(real, fake, k, inclusive=False)


def test_float32_cancellation_is_handled():
    """Two tight clusters far from each other and from the origin: squared distances of
    ~1e-6 next to squared norms of ~1e6, far below what float32 ||a||^2 + ||b||^2 - 2ab can
    resolve. The certified bounds mark every pair undecided and the float64 recheck decides;
    the answer equals the float64 matrix, and a plain float32 Gram computation gets it
    wrong."""
    rng = np.random.default_rng(5)
    centre = np.full(16, 300.0)
    real = np.concatenate([centre + 1e-3 * rng.standard_normal((30, 16)),
                           -centre + 1e-3 * rng.standard_normal((30, 16))])  # fmt: skip
    fake = np.concatenate([centre + 1.5e-3 * rng.standard_normal((25, 16)),
                           -centre + 0.7e-3 * rng.standard_normal((25, 16))])  # fmt: skip
    want = official(real, fake, 3)
    assert precision_recall(real, fake, 3) == want
    assert precision_recall(real.astype(np.float32), fake.astype(np.float32), 3) == official(
        real.astype(np.float32), fake.astype(np.float32), 3
    )
    assert 0.2 < want[0] < 1.0 and 0.2 < want[1] < 1.0
    # huge and tiny magnitudes (powers of two: the float64 answer is the same)
    assert precision_recall(real * 2.0**100, fake * 2.0**100, 3) == want
    assert precision_recall(real * 2.0**-100, fake * 2.0**-100, 3) == want

    x, y = real.astype(np.float32), fake.astype(np.float32)  # the naive way, for contrast

    def n2(a):
        return (a * a).sum(1)

    rr = np.maximum(n2(x)[:, None] + n2(x)[None] - 2 * x @ x.T, 0)
    ff = np.maximum(n2(y)[:, None] + n2(y)[None] - 2 * y @ y.T, 0)
    rf = np.maximum(n2(x)[:, None] + n2(y)[None] - 2 * x @ y.T, 0)
    naive = ((rf <= np.partition(rr, 3, 1)[:, 3:4]).any(0).mean(),
             (rf <= np.partition(ff, 3, 1)[:, 3][None]).any(1).mean())  # fmt: skip
    assert naive != want


def test_batch_size_does_not_change_the_result():
    rng = np.random.default_rng(7)
    real = np.round(rng.standard_normal((23, 5)) * 2) / 2
    fake = np.round(rng.standard_normal((19, 5)) * 2 + 0.5) / 2
    fake[:3] = real[:3]
    real[10:14] = real[20]
    fake[10:17] = fake[3]
    want = precision_recall(real, fake, 3)
    assert want == official(real, fake, 3)
    assert precision_recall(real, fake, 3, batch_size=1) == want
    assert precision_recall(real, fake, 3, inclusive=False, batch_size=3) == official(
        real, fake, 3, inclusive=False
    )


def test_points_on_a_line():
    # Real points 0..9 on a line: with k = 1 every radius is 1.
    real = np.zeros((10, 3))
    real[:, 0] = np.arange(10)
    fake = np.zeros((5, 3))
    fake[:, 0] = [0.5, 5.0, 10.5, 12.0, -1.0]
    # 0.5 and 5 are inside; -1 is exactly on the ball of 0 (inside only with <=);
    # 10.5 and 12 are outside. Fake radii (k = 1): 1.5, 4.5, 1.5, 1.5, 1.5; the ball of 5
    # (radius 4.5) holds 1..9 and the ball of 0.5 holds 0, 1, 2: recall is 1.
    assert precision_recall(real, fake, 1) == (3 / 5, 1.0)
    assert precision_recall(real, fake, 1, inclusive=False) == (2 / 5, 1.0)
    # k = 2: radius 2 at the ends (0 and 9), 1 inside; 10.5 is now inside the ball of 9.
    assert precision_recall(real, fake, 2) == (4 / 5, 1.0) == official(real, fake, 2)
    # Far apart: nothing is inside anything.
    assert precision_recall(real, fake + [100.0, 0, 0], 1) == (0.0, 0.0)
    # The same set: everything is inside.
    assert precision_recall(real, real, 1) == (1.0, 1.0)


def raises(message):
    return pytest.raises(JaxawareError, match="^" + re.escape(message) + "$")


def test_bad_input():
    rng = np.random.default_rng(0)
    real, fake = rng.standard_normal((10, 4)), rng.standard_normal((8, 4))
    with raises("real_features has 3 samples; k=3 needs at least 4 "
                "(each point's k nearest neighbours besides itself)"):  # fmt: skip
        precision_recall(real[:3], fake)
    with raises("fake_features has 2 samples; k=2 needs at least 3 "
                "(each point's k nearest neighbours besides itself)"):  # fmt: skip
        precision_recall(real, fake[:2], 2)
    with raises("real_features and fake_features have different widths (4 and 5); "
                "both must have the same feature dimension"):  # fmt: skip
        precision_recall(real, rng.standard_normal((8, 5)))
    with raises("real_features must be a 2-D array [samples, features]; got shape (10,)"):
        precision_recall(real[:, 0], fake)
    with raises("fake_features must be a 2-D array [samples, features]; got shape (8, 4, 1)"):
        precision_recall(real, fake[..., None])
    bad = fake.copy()
    bad[3, 1] = np.nan
    with raises("fake_features contain NaN or inf values; features must be finite"):
        precision_recall(real, bad)
    bad[3, 1] = np.inf
    with raises("fake_features contain NaN or inf values; features must be finite"):
        precision_recall(real, bad)
    for k in (0, -1, True, 2.0):
        with raises(f"k must be an integer >= 1; got {k!r}"):
            precision_recall(real, fake, k)
    with raises("batch_size must be an integer >= 1; got 0"):
        precision_recall(real, fake, batch_size=0)
    with raises("real_features must be an array of real numbers; got dtype <U1"):
        precision_recall(np.array([["a"] * 4] * 10), fake)
    with raises("real_features have no feature columns; got shape (10, 0)"):
        precision_recall(np.zeros((10, 0)), np.zeros((8, 0)))
