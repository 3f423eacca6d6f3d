"""Object factors and their spreads, on constructed maps and on real renders."""

import numpy as np
import pytest

from jaxaware.errors import JaxawareError
from jaxaware.toyworld import render
from jaxaware.toyworld.diversity import diversity_table, object_factors, spreads


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
