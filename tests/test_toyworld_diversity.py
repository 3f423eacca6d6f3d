"""Object factors and their spreads, on constructed maps and on real renders."""

import numpy as np
import pytest

from jaxaware.errors import JaxawareError
from jaxaware.toyworld import render
from jaxaware.toyworld.diversity import (
    diversity_table, object_factors, ratio_interval, spreads,
)
from jaxaware.toyworld.quality import bar_verdicts, wilson_interval


def test_factors_of_a_constructed_image():
    images = np.zeros((2, 8, 8, 3), np.float32)
    images[0, ..., 0] = 0.5  # background red 0.5 where not object
    maps = np.zeros((2, 8, 8), np.int32)
    maps[0, 2:4, 4:8] = 3  # rows 2-3, cols 4-7: centre x = 6/8, y = 3/8, area 8/64
    f = object_factors(images, maps)
    np.testing.assert_allclose(f["centre"][0], [6 / 8, 3 / 8])
    assert f["area"][0] == 8 / 64
    np.testing.assert_allclose(f["background"][0], [0.5, 0, 0])
    assert np.isnan(f["centre"][1]).all() and f["area"][1] == 0  # no object
    s = spreads(f)
    assert np.isnan(s["centre"])  # one image with an object: no spread
    assert s["area"] == pytest.approx(np.std([8 / 64, 0]))


def test_two_real_sets_spread_alike():
    """Ground-truth maps of two disjoint real sets of a class: ratios near 1."""

    class Truth:  # a "segmenter" that returns the renderer's own maps
        def __init__(self):
            self.maps = {}

        def predict(self, images):
            return self.maps[images.ctypes.data]

    truth = Truth()
    sets = {}
    for name, start in (("a", 0), ("b", 5000)):
        images, maps = render(np.full(300, 5), seed=3, start=start, resolution=32)
        truth.maps[images.ctypes.data] = maps
        sets[name] = images
    (row,) = diversity_table({5: sets["a"]}, {5: sets["b"]}, truth)
    for name in ("centre", "area", "background"):
        assert 0.8 < row[f"{name}_ratio"] < 1.25, (name, row)


def test_mismatched_shapes():
    with pytest.raises(JaxawareError, match=r"^images \[N, H, W, 3\] and part maps"):
        object_factors(np.zeros((2, 8, 8, 3)), np.zeros((2, 4, 4)))


@pytest.mark.parametrize("k, n", [(0, 10), (3, 10), (191, 200), (200, 200), (57, 64)])
def test_wilson_interval_matches_scipy(k, n):
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(confidence_level=0.9, method="wilson")
    np.testing.assert_allclose(wilson_interval(k, n, 0.9), (ci.low, ci.high), atol=1e-12)


@pytest.mark.parametrize("args", [(3, 2), (1, 0), (-1, 5), (1, 5, 1.0)])
def test_wilson_interval_bad_input(args):
    with pytest.raises(JaxawareError, match="^a Wilson interval takes 0 <= successes <= n"):
        wilson_interval(*args)


def test_ratio_interval_covers_a_known_ratio_and_narrows_with_more_samples():
    """Generated spread is half the real one by construction (both normal): the interval
    holds 0.5 and shrinks as the sets grow; the same seed gives the same interval."""
    rng = np.random.default_rng(0)
    widths = []
    for n in (50, 200, 2000):
        gen, real = 0.5 * rng.normal(size=n), rng.normal(size=n)
        lo, hi = ratio_interval(gen, real, draws=500, seed=1)
        point = np.std(gen) / np.std(real)
        assert lo <= point <= hi and lo <= 0.5 <= hi
        widths.append(hi - lo)
        assert ratio_interval(gen, real, draws=500, seed=1) == (lo, hi)
    assert widths[0] > widths[1] > widths[2]
    # two-coordinate factors (centre) and rows with NaN are handled as spreads() does
    pts = rng.normal(size=(100, 2))
    pts[:5] = np.nan
    lo, hi = ratio_interval(pts, pts[::-1], draws=200)
    assert lo < 1 < hi
    assert np.isnan(ratio_interval(np.ones(1), pts)[0])  # one finite row: no spread


@pytest.mark.parametrize("draws, level", [(1, 0.9), (100, 0.0), (100, 1.5)])
def test_ratio_interval_bad_input(draws, level):
    with pytest.raises(JaxawareError, match="^a bootstrap interval takes draws >= 2"):
        ratio_interval(np.ones(5), np.ones(5), draws=draws, level=level)


def _result(class_acc, overall, spread, frechet_ok=False):
    """An evaluation with given intervals: accuracy per class, overall, spread ratios."""
    rows = [{"accuracy_interval": a, **{f"{f}_ratio_interval": s
                                       for f in ("centre", "area", "background")}}
            for a, s in zip(class_acc, spread)]
    return {"classes": rows, "accuracy_interval": overall,
            "bars": {"frechet_within_5x_floor": frechet_ok}}


def test_bar_verdicts_met_missed_and_within_noise():
    met = bar_verdicts(_result([(0.96, 1.0), (0.97, 0.99)], (0.981, 0.99),
                               [(0.71, 1.2), (0.8, 0.9)], True))
    assert met == {"every_class_accuracy": "met", "overall_accuracy": "met",
                   "diversity_every_class": "met", "frechet_within_5x_floor": "met"}
    missed = bar_verdicts(_result([(0.96, 1.0), (0.8, 0.94)], (0.9, 0.97),
                                  [(0.71, 1.2), (0.2, 0.69)]))
    assert set(missed.values()) == {"missed"}
    noisy = bar_verdicts(_result([(0.93, 0.99), (0.97, 1.0)], (0.975, 0.985),
                                 [(0.65, 0.75), (0.8, 0.9)]))
    assert noisy == {"every_class_accuracy": "within noise", "overall_accuracy": "within noise",
                     "diversity_every_class": "within noise",
                     "frechet_within_5x_floor": "missed"}
    # a NaN interval (a class with too few objects) is left out
    assert bar_verdicts(_result([(0.96, 1.0)], (0.99, 1.0), [(np.nan, np.nan)], True))[
        "diversity_every_class"] == "met"
