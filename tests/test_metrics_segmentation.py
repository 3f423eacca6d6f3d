"""Segmentation scores: known labellings (perfect, permuted, hand-counted), scikit-learn's
ARI, the two assignments, one-line errors."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from jaxaware.metrics import segmentation_scores
from jaxaware.metrics.segmentation import (
    NO_PART,
    adjusted_rand_index,
    assign_greedy,
    assign_hungarian,
    mean_iou,
)
from jaxaware.toyworld import render
from helpers import raises


@pytest.fixture(scope="module")
def parts():
    """Ground-truth part maps of three rendered world images (several parts each)."""
    return render(["cat", "bus", "castle"], seed=0, resolution=32)[1]


def test_perfect_and_permuted_labellings_score_one(parts):
    rng = np.random.default_rng(0)
    permuted = rng.permutation(40)[parts] + 3  # cluster ids unrelated to the part ids
    for pred in (parts, permuted):
        s = segmentation_scores(pred, parts)
        assert s["miou_greedy"] == 1.0 and s["miou_hungarian"] == 1.0
        assert s["ari"] == pytest.approx(1.0)
        assert len(s["ari_per_image"]) == 3


def test_hand_counted_map():
    # truth: background (0) left half, part 5 right half of a 2x4 map.
    truth = np.array([[0, 0, 5, 5], [0, 0, 5, 5]])
    # clusters: 0 covers the left half and one right pixel, 1 the other three right pixels.
    pred = np.array([[0, 0, 0, 1], [0, 0, 1, 1]])
    # greedy: cluster 0 -> background (4 of 5 pixels), 1 -> part 5.
    # IoU(0) = 4 / 5, IoU(5) = 3 / 4.
    np.testing.assert_array_equal(assign_greedy(pred, truth), [[0, 0, 0, 5], [0, 0, 5, 5]])
    assert mean_iou(assign_greedy(pred, truth), truth) == pytest.approx((4 / 5 + 3 / 4) / 2)
    # three clusters for two parts: greedy merges two of them, Hungarian leaves one out.
    pred3 = np.array([[0, 1, 2, 2], [0, 1, 2, 2]])
    assert mean_iou(assign_greedy(pred3, truth), truth) == 1.0
    hung = assign_hungarian(pred3, truth)
    # clusters 0 and 1 both hold 2 background pixels; the tie goes to the first (cluster 0).
    np.testing.assert_array_equal(hung, [[0, NO_PART, 5, 5], [0, NO_PART, 5, 5]])
    assert mean_iou(hung, truth) == pytest.approx((2 / 4 + 1) / 2)


def test_fewer_clusters_than_parts():
    truth = np.array([[0, 1, 2, 3]])
    pred = np.array([[0, 0, 1, 1]])
    # greedy: 0 -> part 0 (tie with 1: lowest), 1 -> part 2. IoUs: 1/2, 0, 1/2, 0.
    s = segmentation_scores(pred, truth)
    assert s["miou_greedy"] == pytest.approx(0.25)
    assert s["miou_hungarian"] == pytest.approx(0.25)


def test_ari_is_sklearns(parts):
    rng = np.random.default_rng(1)
    pred = rng.integers(0, 5, parts.shape)
    pred[:, :16] = parts[:, :16]  # half right, half noise
    for p, t in zip(pred, parts):
        assert adjusted_rand_index(p, t) == pytest.approx(adjusted_rand_score(t.ravel(),
                                                                              p.ravel()))
    s = segmentation_scores(pred, parts)
    assert 0.0 < s["ari"] < 1.0
    assert s["miou_hungarian"] <= s["miou_greedy"] + 1e-12  # one-to-one is the stricter


def test_bad_input():
    good = np.zeros((4, 4), np.int64)
    with raises("predicted and reference labels must have the same shape; got (1, 4, 4) and "
                "(1, 3, 4)"):
        segmentation_scores(good, good[:3])
    with raises("predicted labels must be integer label maps [H, W] or [N, H, W]; got dtype "
                "float64"):
        segmentation_scores(good + 0.5, good)
    with raises("reference labels must be non-empty label maps [H, W] or [N, H, W]; got "
                "shape (4,)"):
        segmentation_scores(good, good[0])
    with raises("reference labels must be >= 0 (0 = background); got -1"):
        segmentation_scores(good, good - 1)
