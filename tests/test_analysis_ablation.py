"""Ablation groups (Fig. 3) and transfer (Fig. 5b) on constructed models: the groups are the
channels the awareness says, zeroing dead channels changes nothing, and the numbers
reported are the ones recomputed here from plain generate calls."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import raises
from jaxaware import Capture
from jaxaware.analysis import ablation_groups, channel_transfer
from jaxaware.generate import generate
from jaxaware.interventions import flat_add, flat_zero
from test_analysis_models import (
    TINY,
    fake_awareness,
    linear_classifier,
    tiny_model,
    with_dead_channel,
)


def _awareness_with_order(order_l0):
    """Category awareness whose ranking at L0 (ascending) is ``order_l0`` for every class."""
    category = np.random.RandomState(0).randn(4, 56)
    category[:, np.asarray(order_l0)] = np.arange(16.0)
    return fake_awareness(TINY, category)


def test_groups_follow_awareness_and_dead_lowest_channels_change_nothing():
    order = [5, 9, 0, 1, 2, 3, 4, 6, 7, 8, 10, 11, 12, 13, 14, 15]  # 5, 9 lowest; 14, 15 top
    model = with_dead_channel(with_dead_channel(tiny_model(), "L0", 5), "L0", 9)
    fn = linear_classifier(TINY)
    r = ablation_groups(model, fn, 2, "L0", count=2, num_latents=3,
                        awareness=_awareness_with_order(order), group_seed=7)
    assert r.channels["lowest"]["block0.bn0"].tolist() == [5, 9]
    assert r.channels["highest"]["block0.bn0"].tolist() == [14, 15]
    want_random = np.sort(np.random.default_rng(7).choice(16, 2, replace=False))
    assert r.channels["random"]["block0.bn0"].tolist() == want_random.tolist()
    np.testing.assert_array_equal(r.images[1], r.images[0])  # dead channels: no change
    np.testing.assert_array_equal(r.prob[1], r.prob[0])
    assert np.abs(r.images[3] - r.images[0]).max() > 1e-3
    # the reported numbers are those of plain generate calls with the same edits
    z = model.family.sample_latents(3, TINY, 1.0, 1)
    edited = generate(model, z, np.full(3, 2), 1.0, interventions=flat_zero(TINY, [14, 15]))
    np.testing.assert_allclose(r.images[3], edited, atol=1e-6)
    logits = np.asarray(fn(edited))
    p = np.exp(logits - logits.max(-1, keepdims=True))
    np.testing.assert_allclose(r.prob[3], (p / p.sum(-1, keepdims=True))[:, 2], rtol=1e-5)
    np.testing.assert_array_equal(r.correct[3], logits.argmax(-1) == 2)
    s = r.summary()
    assert s["lowest"]["pixel_change"] == 0 and s["highest"]["pixel_change"] > 0
    assert set(r.to_json()) >= {"summary", "prob", "correct", "channels", "sites"}


def test_fraction_per_site_and_every_site():
    aw = fake_awareness(TINY, np.random.RandomState(1).randn(4, 56))
    r = ablation_groups(tiny_model(), linear_classifier(TINY), 0, None, fraction=0.25,
                        num_latents=2, awareness=aw)
    assert len(r.sites) == 8
    assert [len(r.channels["highest"][s]) for s in r.sites] == [4, 1, 1, 1, 4, 1, 1, 1]


def test_ablation_bad_input():
    model, fn = tiny_model(), linear_classifier(TINY)
    aw = fake_awareness(TINY, np.zeros((4, 56)))
    with raises("count 5 is larger than site block0.bn1 (4 channels); give count <= 4 or a "
                "fraction"):
        ablation_groups(model, fn, 0, "L0,L1", count=5, awareness=aw)
    with raises("fraction must be a number in (0, 1]; got 0"):
        ablation_groups(model, fn, 0, "L0", fraction=0, awareness=aw)
    with raises("class index 9 is out of range; this model has classes 0..3"):
        ablation_groups(model, fn, 9, "L0", awareness=aw)
    with raises("the awareness has no row for class 3; it has classes 0..1; compute it for the "
                "classes you analyse"):
        ablation_groups(model, fn, 3, "L0", awareness=fake_awareness(TINY, np.zeros((2, 56))))


def test_transfer_reports_what_plain_generate_gives():
    model, fn = tiny_model(), linear_classifier(TINY)
    category = np.zeros((4, 56))
    category[1, 28 + 6] = 1.0  # class 1's top channel at L4 is channel 6
    aw = fake_awareness(TINY, category)
    r = channel_transfer(model, fn, 1, None, "L4", op="add", strength=2.0, num_latents=3,
                         awareness=aw)
    assert r.channel == 6 and r.targets.tolist() == [0, 1, 2, 3]
    z = model.family.sample_latents(3, TINY, 1.0, 1)
    _, cap = generate(model, z, np.full(3, 1), 1.0,
                      capture=Capture(probes=False, features=True))
    rms = np.sqrt(np.mean(np.square(np.asarray(cap["block1.bn0"]["features"])[..., 6])))
    assert r.amount == pytest.approx(2.0 * rms, rel=1e-5)
    for i, t in enumerate(range(4)):
        y = np.full(3, t)
        before = np.asarray(generate(model, z, y, 1.0))
        after = np.asarray(generate(model, z, y, 1.0, interventions=flat_add(TINY, [34],
                                                                             r.amount)))
        np.testing.assert_allclose(r.edited[i], after, atol=1e-6)
        assert r.pixel_change[i] == pytest.approx(np.abs(after - before).mean(), rel=1e-4)
    summary = r.family_summary(["a", "a", "b", "b"])
    assert summary["same_family"]["targets"] == 1 and summary["other_family"]["targets"] == 2
    assert summary["same_family"]["pixel_change"] == pytest.approx(r.pixel_change[0])


def test_transfer_of_a_dead_channel_or_a_unit_factor_changes_nothing():
    model = with_dead_channel(tiny_model(), "block1.bn2", 1)
    fn = linear_classifier(TINY)
    r = channel_transfer(model, fn, 0, [0, 2], "block1.bn2", channel=1, op="multiply",
                         strength=5.0, num_latents=2)
    assert np.all(r.pixel_change == 0) and r.amount == 6.0
    r = channel_transfer(tiny_model(), fn, 0, [0, 2], "L0", channel=3, op="multiply",
                         strength=0.0, num_latents=2)
    assert np.all(r.pixel_change == 0)


def test_transfer_bad_input():
    model, fn = tiny_model(), linear_classifier(TINY)
    with raises("channel 16 is out of range; block0.bn0 has channels 0..15"):
        channel_transfer(model, fn, 0, None, "L0", channel=16)
    with raises("op must be one of add, multiply; got 'scale'"):
        channel_transfer(model, fn, 0, None, "L0", channel=1, op="scale")
    with raises("strength must be a finite number; got nan"):
        channel_transfer(model, fn, 0, None, "L0", channel=1, strength=float("nan"))
