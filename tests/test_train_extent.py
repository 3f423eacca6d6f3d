"""The extent term (jaxaware/train/extent.py): its target against scipy's distributions,
its error in closed form, its regressor on held-out renders, and the term in a tiny
training run (it reaches G's loss, branches from a plain checkpoint, refuses bad config).
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxaware.errors import JaxawareError
from jaxaware.toyworld import WORLD, render
from jaxaware.toyworld.diversity import object_factors
from jaxaware.train import checkpoint as ckpt
from jaxaware.train import train
from jaxaware.train.extent import (
    EXTENT_WORLD_SEED,
    QUANTILES,
    area_quantiles,
    area_targets,
    calibration,
    extent_error,
    extent_regressor,
    latent_cdf,
    real_extents,
)
from jaxaware.train.trainer import init_state
from test_train import TC, _log

K = WORLD.num_classes
Z0 = np.array([-3.0, -2.0, -0.5, 0.0, 0.7, 1.9, 3.0], np.float32)
Y = np.array([0, 1, 2, 3, 4, 5, K - 1])


@pytest.mark.parametrize("law, cdf", [
    ("normal", stats.norm.cdf),
    ("truncnorm", lambda z: stats.truncnorm.cdf(z, -2.0, 2.0)),
])
def test_targets_are_the_class_quantile_at_the_latent_quantile(law, cdf):
    np.testing.assert_allclose(latent_cdf(jnp.asarray(Z0), law), cdf(Z0), atol=1e-6)
    # Linear quantile rows: the target is the row's offset plus its slope times F(z0).
    linear = (0.01 * np.arange(K)[:, None] + 0.1 * np.linspace(0, 1, QUANTILES)[None, :])
    np.testing.assert_allclose(area_targets(jnp.asarray(Z0), jnp.asarray(Y),
                                            jnp.asarray(linear, jnp.float32), law),
                               0.01 * Y + 0.1 * cdf(Z0), atol=1e-6)
    # Any sorted rows: linear interpolation between quantile points, as numpy's.
    rows = np.sort(np.random.default_rng(0).uniform(0.05, 0.4, (K, QUANTILES)), axis=1)
    want = [np.interp(p * (QUANTILES - 1), np.arange(QUANTILES), rows[y])
            for p, y in zip(cdf(Z0), Y)]
    np.testing.assert_allclose(area_targets(jnp.asarray(Z0), jnp.asarray(Y),
                                            jnp.asarray(rows, jnp.float32), law),
                               want, atol=1e-6)


def test_extent_error_is_the_mean_squared_miss_in_class_spreads():
    rows = jnp.asarray(np.sort(np.random.default_rng(1).uniform(0.05, 0.4, (K, QUANTILES)),
                               axis=1), jnp.float32)
    sd = jnp.asarray(np.linspace(0.01, 0.05, K), jnp.float32)
    target = area_targets(jnp.asarray(Z0), jnp.asarray(Y), rows, "normal")
    assert float(extent_error(target, Z0, Y, rows, sd, "normal")) == pytest.approx(0.0, abs=1e-9)
    miss = np.array([1.0, -2.0, 0.5, 0.0, 3.0, -1.0, 2.0], np.float32)
    predicted = target + miss * sd[Y]
    assert float(extent_error(predicted, Z0, Y, rows, sd, "normal")) == pytest.approx(
        float(np.mean(miss ** 2)), rel=1e-5)


def test_real_extents_are_the_world_part_maps_areas():
    images, classes, areas = real_extents(2, start=32)
    assert np.bincount(classes, minlength=K).tolist() == [2] * K
    again, maps = render(classes, seed=EXTENT_WORLD_SEED, start=32)
    np.testing.assert_array_equal(images, again)
    np.testing.assert_allclose(areas, (maps > 0).mean(axis=(1, 2)), rtol=1e-6)
    np.testing.assert_allclose(areas, object_factors(images, maps)["area"], rtol=1e-6)


def test_area_quantiles_are_per_class_and_sorted():
    quant, sd = area_quantiles(per_class=50)
    assert quant.shape == (K, QUANTILES) and sd.shape == (K,)
    assert np.all(np.diff(quant, axis=1) >= 0) and np.all(sd > 0)
    _, classes, areas = real_extents(50, start=10_000_000)
    for c in (0, K - 1):
        mine = areas[classes == c]
        assert quant[c, 0] == mine.min() and quant[c, -1] == mine.max()
        assert quant[c, 50] == pytest.approx(np.median(mine))
        assert sd[c] == pytest.approx(mine.std(), rel=1e-5)


def test_calibration_is_the_least_squares_line_per_class():
    rng = np.random.default_rng(0)
    classes = np.repeat(np.arange(K), 40)
    areas = rng.uniform(0.05, 0.4, len(classes))
    exact = 0.01 * classes + (0.5 + 0.02 * classes) * areas  # a line of its own per class
    intercept, slope = calibration(areas, exact, classes)
    np.testing.assert_allclose(slope, 0.5 + 0.02 * np.arange(K), rtol=1e-9)
    np.testing.assert_allclose(intercept, 0.01 * np.arange(K), atol=1e-12)
    noisy = exact + rng.normal(0, 0.05, len(classes))
    intercept, slope = calibration(areas, noisy, classes)
    for c in (0, 7, K - 1):
        ref_slope, ref_intercept = np.polyfit(areas[classes == c], noisy[classes == c], 1)
        assert slope[c] == pytest.approx(ref_slope) and intercept[c] == pytest.approx(
            ref_intercept)


def test_calibrated_quantiles_go_through_the_readers_line():
    # Any reader of the images: the true quantiles and spreads put through the line of its
    # readings on the true areas, class by class; the reader sees 500 images at a time.
    seen = []

    def read(images, classes):
        seen.append(len(images))
        return np.asarray(images).mean(axis=(1, 2, 3)) + classes

    quant, sd = area_quantiles(per_class=50, read=read)
    true_quant, true_sd = area_quantiles(per_class=50)
    assert seen == [500, 300]  # 800 renders
    images, classes, areas = real_extents(50, start=10_000_000)
    readings = images.mean(axis=(1, 2, 3)) + classes
    for c in (0, 5, K - 1):
        slope, intercept = np.polyfit(areas[classes == c], readings[classes == c], 1)
        np.testing.assert_allclose(quant[c], intercept + slope * true_quant[c], rtol=1e-4,
                                   atol=1e-5)
        assert sd[c] == pytest.approx(slope * true_sd[c], rel=1e-4)


def test_the_regressor_reads_sizes_within_a_class():
    # A short training already reads more than the class: within every class its held-out
    # R^2 is well above the 0 of a regressor that predicts each class's mean area.
    apply, params, record = extent_regressor(steps=600, per_class=300)
    assert record["steps"] == 600 and set(record["r2_per_class"]) == set(WORLD.class_names)
    assert record["r2"] > 0.9
    assert np.mean(list(record["r2_per_class"].values())) > 0.3
    images, classes, areas = real_extents(20, start=20_000_000)
    pred = np.asarray(apply(params, images, classes))
    assert np.sqrt(np.mean((pred - areas) ** 2)) < 0.5 * areas.std()
    assert extent_regressor(steps=600, per_class=300) is not None  # cached: no retraining


def _extent(tc=TC, **kwargs):
    return dataclasses.replace(tc, extent_regressor_steps=20, **kwargs)


def test_the_extent_term_adds_its_weighted_error_to_the_generator_loss(tmp_path):
    logs = {}
    for w in (0.5, 2.0):
        train(_extent(steps=1, extent=w), tmp_path / str(w), progress=False)
        logs[w] = _log(tmp_path / str(w))[0]
    err = logs[0.5]["extent_err"]
    assert err > 0 and logs[2.0]["extent_err"] == pytest.approx(err, rel=1e-6)
    assert logs[2.0]["g_loss"] - logs[0.5]["g_loss"] == pytest.approx(1.5 * err, rel=1e-4)
    record = json.loads((tmp_path / "0.5" / "extent_regressor.json").read_text())
    assert record["steps"] == 20 and 0 < record["rmse"]


def test_the_calibrated_target_reads_the_quantiles_renders_with_the_term_regressor(monkeypatch):
    # Building the step (no compile) asks area_quantiles for the targets: through the term's
    # own regressor with the calibrated target, through nothing with the world's.
    import jaxaware.train.trainer as trainer

    calls = []

    def recording(resolution, read=None):
        calls.append(read)
        return area_quantiles(resolution, per_class=5, read=read)

    monkeypatch.setattr(trainer, "area_quantiles", recording)
    for target in ("world", "calibrated"):
        trainer.compiled_step.__wrapped__(_extent(extent=0.5, extent_target=target))
    assert calls[0] is None and calls[1] is not None
    apply, params, _ = extent_regressor(32, 20)
    images, classes, _ = real_extents(1, start=7)
    np.testing.assert_array_equal(np.asarray(calls[1](images, classes)),
                                  np.asarray(apply(params, images, classes)))


def test_a_late_extent_term_branches_from_a_plain_run(tmp_path):
    train(TC, tmp_path / "plain", progress=False)  # 5 plain steps, checkpoint at 5
    late = _extent(steps=6, extent=0.5, extent_start=5)
    # From scratch: the plain run's 5 steps, then one with the term.
    train(late, tmp_path / "scratch", progress=False)
    log = _log(tmp_path / "scratch")
    assert "extent_err" not in log[4] and log[5]["extent_err"] > 0
    assert log[:5] == _log(tmp_path / "plain")
    # Branching: the plain run's checkpoint resumes into the late run and ends the same.
    shutil.copytree(tmp_path / "plain" / "checkpoint", tmp_path / "branch" / "checkpoint")
    train(late, tmp_path / "branch", progress=False)
    template = init_state(TC)
    a = ckpt.load(tmp_path / "scratch" / "checkpoint", template, late)
    b = ckpt.load(tmp_path / "branch" / "checkpoint", template, late)
    assert int(a["step"]) == 6 and all(
        np.array_equal(np.asarray(x), np.asarray(y))
        for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))
    assert _log(tmp_path / "branch") == log[5:]
    assert late.phase(6).compute_key() == _extent(extent=0.5).phase(1).compute_key()
    assert late.phase(5).compute_key() == TC.compute_key()  # the plain step itself
    # ... but not from a plain checkpoint past the term's start.
    with pytest.raises(JaxawareError, match="another training config"):
        ckpt.load(tmp_path / "plain" / "checkpoint", template,
                  _extent(extent=0.5, extent_start=3))


@pytest.mark.parametrize("kwargs, message", [
    ({"extent": -1.0}, "extent must be >= 0; got -1.0"),
    ({"extent": 1.0, "extent_start": -2}, "extent_start must be >= 0; got -2"),
    ({"extent_start": 10}, "extent_start and extent_stop bound the extent term; set "
                           "extent > 0 too"),
    ({"extent_stop": 10}, "extent_start and extent_stop bound the extent term; set "
                          "extent > 0 too"),
    ({"extent": 1.0, "extent_start": 10, "extent_stop": 5},
     "extent_stop must be 0 (never) or past extent_start (10); got 5"),
    ({"extent": 1.0, "extent_regressor_steps": 0}, "extent_regressor_steps must be >= 1; got 0"),
    ({"extent": 1.0, "extent_target": "segmenter"},
     "extent_target must be one of world, calibrated; got 'segmenter'"),
    ({"extent_target": "calibrated"}, "extent_target sets the extent term's targets; set "
                                     "extent > 0 too"),
    ({"extent": 1.0, "mode_seeking": 1.0}, "the extent term and mode seeking cannot be "
                                           "combined (each has its own window); choose one"),
])
def test_extent_bad_config(kwargs, message):
    with pytest.raises(JaxawareError, match="^" + re.escape(message) + "$"):
        dataclasses.replace(TC, **kwargs)
