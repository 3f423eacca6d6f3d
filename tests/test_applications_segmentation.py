"""Awareness-weighted K-Means segmentation: a one-hot awareness clusters its channel alone,
the jitted K-Means finds separated blobs as scikit-learn does, the weights' formula, scores
of a hand-made segmentation against rendered part maps, one-line errors.

The generator is the shipped toy-world model (32 px: 1024 pixels per image; the shapes of
tests/test_applications_cli.py, so the compiled programs are shared)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from helpers import raises
from jaxaware.applications import segmentation as sg
from jaxaware.applications.clustering import kmeans
from jaxaware.applications.figures import by_size
from jaxaware.awareness import Awareness
from jaxaware.model import load
from jaxaware.sites import site_table, total_channels
from jaxaware.toyworld import render
from jaxaware.truncation import truncated_noise

R = 32  # the image size: 1024 pixels per image


@pytest.fixture(scope="module")
def model():
    return load()


@pytest.fixture(scope="module")
def inputs(model):
    return truncated_noise(2, model.config.z_dim, 1.0, seed=1), np.array([1, 4])


def one_hot_awareness(config, column: int) -> Awareness:
    sites = site_table(config)
    cat = np.zeros((config.num_classes, total_channels(config)), np.float32)
    cat[:, column] = 1.0
    return Awareness(cat, np.zeros_like(cat), np.zeros_like(cat),
                     np.arange(config.num_classes), tuple(s.name for s in sites),
                     np.array([[s.offset, s.offset + s.channels] for s in sites]), 10, 1.0, 0,
                     "one-hot")


def test_one_hot_awareness_clusters_that_channel_alone(model, inputs):
    z, y = inputs
    site = site_table(model.config)[-5]  # a late site: a varied feature map
    column = site.offset + 2
    seg = sg.segment(model, z, y, ks=(3,), layers="all", weightings=("awareness",),
                     awareness=one_hot_awareness(model.config, column))
    _, feats = sg.pixel_features(model, z, y, site_table(model.config))
    alone = feats[..., column:column + 1].reshape(2, R * R, 1)
    assert np.ptp(alone) > 0  # the channel is not constant: the test can fail
    labels, _ = kmeans(alone, 3)
    want = np.stack([by_size(m) for m in labels.reshape(2, R, R)])
    np.testing.assert_array_equal(seg.labels[("all", "awareness", 3)], want)
    unweighted = sg.segment(model, z, y, ks=(3,), layers="all",
                            weightings=("none",)).labels[("all", "none", 3)]
    assert not np.array_equal(unweighted, want)  # all channels cluster differently


def test_awareness_weights_formula():
    got = sg.awareness_weights([-2.0, 0.0, 1.0, 3703.0])
    np.testing.assert_allclose(got, [0.0, 0.0, math.erf(1 / math.sqrt(2)), 1.0], rtol=1e-6)


def test_jax_kmeans_finds_blobs_like_sklearn():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 10, (4, 5))
    truth = rng.integers(0, 4, (2, 200))
    x = (centres[truth] + rng.normal(0, 0.3, (2, 200, 5))).astype(np.float32)
    lab_jax, inertia_jax = kmeans(x, 4, backend="jax")
    lab_skl, inertia_skl = kmeans(x, 4, backend="sklearn")
    for i in range(2):
        assert adjusted_rand_score(truth[i], lab_jax[i]) == 1.0
        assert adjusted_rand_score(lab_skl[i], lab_jax[i]) == 1.0
    np.testing.assert_allclose(inertia_jax, inertia_skl, rtol=1e-3)


def test_scores_of_a_hand_made_segmentation():
    images, parts = render(["cat", "house"], seed=3, resolution=32)
    perfect = np.stack([by_size(p) for p in parts])  # the parts, renamed
    merged = np.where(parts > 0, 1, 0)  # object vs background only
    seg = sg.Segmentation(images, np.array([0, 12]),
                          {("all", "none", 3): perfect, ("all", "none", 2): merged}, {}, 32,
                          "jax")
    scores = sg.score_segmentations(seg, parts)
    assert scores[("all", "none", 3)]["miou_hungarian"] == 1.0
    assert scores[("all", "none", 3)]["ari"] == pytest.approx(1.0)
    s = scores[("all", "none", 2)]
    assert s["miou_greedy"] < 1.0 and s["miou_hungarian"] <= s["miou_greedy"]


def test_bad_input(model, inputs):
    z, y = inputs
    for k in (1, R * R + 1):
        with raises(f"k-means k must be an integer in 2..{R * R} (the pixels of an image); "
                    f"got {k}"):
            sg.segment(model, z, y, ks=(k,), weightings=("none",))
    with raises("unknown weighting 'softmax'; use none or awareness"):
        sg.segment(model, z, y, weightings=("softmax",))
    with raises("cluster resolution must divide the image size 32 (1..32); got 12"):
        sg.segment(model, z, y, weightings=("none",), resolution=12)
    with pytest.raises(sg.JaxawareError, match="^unknown site 'block7.bn0'; CCBN sites are "):
        sg.segment(model, z, y, layers="block7.bn0", weightings=("none",))
    with raises("k-means points must be finite real numbers"):
        kmeans(np.full((1, 4, 2), np.nan), 2)
