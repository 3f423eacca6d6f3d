"""Channel overlap (Fig. 5a) and class-shared channels (Tab. 1) on constructed awareness,
where the answer is known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import raises
from jaxaware.analysis import channel_overlap, family_means, shared_channels
from jaxaware.analysis.overlap import overlap_matrix, top_channels
from jaxaware.analysis.shared import CRITERIA
from test_analysis_models import TINY, fake_awareness

# TINY's sites: L0 block0.bn0 [0:16], L1..L3 4 channels each, L4 block1.bn0 [28:44], ...


def _ranked(k_classes, width, tops, base_seed=0):
    """Scores ``[K, width]`` whose top entries of row i are ``tops[i]`` (in that order)."""
    rng = np.random.RandomState(base_seed)
    out = rng.uniform(0, 1, (k_classes, width))
    for i, t in enumerate(tops):
        out[i, list(t)] = 10 + np.arange(len(t))[::-1]
    return out


def test_identical_sets_overlap_one_disjoint_sets_zero():
    sets = np.array([[0, 1, 2], [2, 1, 0], [3, 4, 5], [0, 1, 9]])
    m = overlap_matrix(sets, 3)
    np.testing.assert_allclose(m, [[1, 1, 0, 2 / 3], [1, 1, 0, 2 / 3], [0, 0, 1, 0],
                                   [2 / 3, 2 / 3, 0, 1]])
    assert family_means(m, ["a", "a", "b", "b"]) == pytest.approx(
        {"within_family": (1 + 0) / 2, "between_family": (0 + 2 / 3 + 0 + 2 / 3) / 4})


def test_channel_overlap_of_constructed_awareness():
    category = np.zeros((4, 56))
    category[:, :16] = _ranked(4, 16, [(0, 1, 2), (0, 1, 3), (7, 8, 9), (0, 1, 2)])
    aw = fake_awareness(TINY, category)
    r = channel_overlap(aw, "L0", 3)
    np.testing.assert_allclose(r.matrix, [[1, 2 / 3, 0, 1], [2 / 3, 1, 0, 2 / 3],
                                          [0, 0, 1, 0], [1, 2 / 3, 0, 1]])
    assert r.k == 3 and r.chance == pytest.approx(3 / 16) and r.sites == ("block0.bn0",)
    data = r.to_json(families=["x", "x", "y", "y"])
    assert data["within_family"] == pytest.approx((2 / 3 + 0) / 2)
    # two sites: the union of each site's top k, divided by the summed k
    category[:, 28:44] = _ranked(4, 16, [(5, 6), (5, 7), (5, 6), (1, 2)], 1)
    r2 = channel_overlap(fake_awareness(TINY, category), ["L0", "L4"], 2)
    assert r2.k == 4 and r2.matrix[0, 1] == pytest.approx((2 + 1) / 4)
    assert r2.matrix[0, 2] == pytest.approx((0 + 2) / 4)
    assert r2.chance == pytest.approx((4 / 16 + 4 / 16) / 4)


def test_default_k_is_the_papers_share_and_class_subsets():
    aw = fake_awareness(TINY, np.random.RandomState(0).randn(4, 56))
    r = channel_overlap(aw)
    assert r.per_site_k == {s: 1 for s in aw.site_names}  # round(100/1536 * 16) = 1
    assert channel_overlap(aw, "L0", fraction=0.5).per_site_k == {"block0.bn0": 8}
    sub = channel_overlap(aw, "L0", 4, classes=[3, 1])
    full = channel_overlap(aw, "L0", 4)
    np.testing.assert_array_equal(sub.matrix, full.matrix[np.ix_([3, 1], [3, 1])])


def test_top_channels_breaks_ties_by_index():
    np.testing.assert_array_equal(top_channels([[1, 3, 3, 0]], 2), [[1, 2]])
    np.testing.assert_array_equal(top_channels([[1, 3, 3, 0]], 2, lowest=True), [[3, 0]])


def test_shared_channels_keep_exactly_the_constructed_intersection():
    k_classes = 5
    category = np.random.RandomState(0).randn(k_classes, 56)
    latent = np.random.RandomState(1).rand(k_classes, 56)
    # L0: channels 3 and 7 are in every class's top 4 of latent awareness, other picks vary
    others = [(0, 1), (1, 2), (8, 9), (10, 11), (12, 0)]
    latent[:, :16] = _ranked(k_classes, 16, [(3, 7) + o for o in others], 2)
    # category: each class's top 4 and bottom 4 disjoint from the next class's
    for i in range(k_classes):
        category[i, :16] = 0.0
        category[i, [(4 * i + j) % 16 for j in range(4)]] = 5.0
        category[i, [(4 * i + 8 + j) % 16 for j in range(4)]] = -5.0
    aw = fake_awareness(TINY, category, latent)
    r = shared_channels(aw, 4, ["L0", "L4"])
    assert r.channels["latent_high"]["block0.bn0"].tolist() == [3, 7]
    assert r.channels["category_high"]["block0.bn0"].tolist() == []
    assert r.channels["category_low"]["block0.bn0"].tolist() == []
    assert r.survivors["latent_high"]["block0.bn0"].tolist()[-1] == 2
    assert r.survivors["latent_high"]["block0.bn0"][0] == 4
    assert r.counts("latent_high")[0] == 2 and r.labels == ("L0", "L4")
    assert r.chance["block0.bn0"] == pytest.approx(16 * (4 / 16) ** k_classes)
    assert r.table().splitlines()[0].split() == ["criterion", "L0", "L4"]
    assert set(r.to_json()["counts"]) == set(CRITERIA)


def test_shared_channels_default_sites_skip_narrow_ones():
    aw = fake_awareness(TINY, np.random.RandomState(0).randn(3, 56))
    r = shared_channels(aw, 4)
    assert r.sites == ("block0.bn0", "block1.bn0")
    assert r.skipped == ("block0.bn1", "block0.bn2", "block0.bn3", "block1.bn1", "block1.bn2",
                         "block1.bn3")
    full = shared_channels(aw, 4, "L1")  # k = C: every channel survives every criterion
    assert all(full.channels[c]["block0.bn1"].tolist() == [0, 1, 2, 3] for c in CRITERIA)


def test_bad_input_is_one_line():
    aw = fake_awareness(TINY, np.zeros((3, 56)))
    with raises("k=5 is larger than site block0.bn1 (4 channels); give k <= 4 or choose wider "
                "sites"):
        shared_channels(aw, 5, "L0,L1")
    with raises("k=17 is larger than site block0.bn0 (16 channels); give k <= 16 or choose "
                "wider sites"):
        channel_overlap(aw, "L0", 17)
    with raises("every site has at most k=16 channels; give a smaller k"):
        shared_channels(aw, 16)
    with raises("unknown site 'L9'; CCBN sites are block0.bn0..block1.bn3 (L0..L7)"):
        channel_overlap(aw, "L9")
    with raises("the awareness has no row for class 5; compute it for the classes you analyse"):
        channel_overlap(aw, "L0", classes=[0, 5])
    with raises("shared channels need at least 2 classes to intersect; got 1"):
        shared_channels(aw, 2, classes=[1])
    with raises("k must be a positive integer; got 0"):
        shared_channels(aw, 0)
    with raises("fraction must be a number in (0, 1]; got 1.5"):
        channel_overlap(aw, fraction=1.5)
