"""The training library (jaxaware/train) on a tiny config: a few steps only.

One compiled step is shared by every run here (same compute config, ``fast_compile``);
runs differ only in their output directory, so the whole file stays well under a minute.
"""

from __future__ import annotations

import dataclasses
import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import TRAIN_TINY as TINY

from jaxaware.environment import cpu_model, environment, environment_differences
from jaxaware.generate import generate
from jaxaware.model import load
from jaxaware.toyworld import WORLD, load_classifier
from jaxaware.train import TrainConfig, train
from jaxaware.train import checkpoint as ckpt
from jaxaware.metrics import frechet_distance
from jaxaware.toyworld.quality import evaluate_world_model, format_table, real_images
from jaxaware.toyworld.sheet import sheet_image
from jaxaware.train.spectral import (
    fold_spectral_norm,
    generator_filter,
    power_iteration,
    spectral_normalize,
)
from jaxaware.errors import JaxawareError
from jaxaware.toyworld import render
from jaxaware.train.discriminator import (
    MINIBATCH_GROUP,
    Discriminator,
    class_group_layout,
    default_dconfig,
    layout_view,
    minibatch_std,
    pack_samples,
)
from jaxaware.train.init import init_discriminator
from jaxaware.train.trainer import (
    edge_view,
    init_state,
    mode_seeking_ratio,
    model_from_checkpoint,
    real_batch,
)
from jaxaware.truncation import truncated_noise
from jaxaware.weights_io import load_weights

TC = TrainConfig(TINY, d_ch=4, batch_size=8, steps=5, checkpoint_every=2, log_every=1,
                 standing_batches=2, standing_batch_size=16, fast_compile=True)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """An uninterrupted 5-step run: (directory, final model)."""
    out = tmp_path_factory.mktemp("run")
    return out, train(TC, out, progress=False)


def _log(directory):
    lines = (directory / "log.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(x).items() if k != "steps_per_s"} for x in lines]


def test_smoke_run_has_finite_losses(run):
    out, model = run
    log = _log(out)
    assert [r["step"] for r in log] == [1, 2, 3, 4, 5]
    assert set(log[0]) == {"step", "d_loss", "g_loss", "d_real", "d_fake"}  # no ms_ratio
    for r in log:
        assert all(np.isfinite(v) for v in r.values()), r
    assert ckpt.exists(out / "checkpoint")
    assert model.config == TINY


def test_resume_equals_uninterrupted(run, tmp_path):
    out, model = run
    assert train(TC, tmp_path, progress=False, stop_after=3) is None  # "killed" after 3
    meta = json.loads((tmp_path / "checkpoint" / "config.json").read_text())
    assert meta["extra"]["step"] == 2
    resumed = train(TC, tmp_path, progress=False)
    template = init_state(TC)
    a = ckpt.load(out / "checkpoint", template, TC)
    b = ckpt.load(tmp_path / "checkpoint", template, TC)
    assert int(b["step"]) == TC.steps
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    for x, y in zip(jax.tree_util.tree_leaves(model.variables),
                    jax.tree_util.tree_leaves(resumed.variables)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert _log(tmp_path) == _log(out)
    # Each sitting's machine and software, from the step it began at: the first sitting
    # stopped after step 3, but its steps from the step-2 checkpoint were recomputed.
    here = environment()
    sittings = _records(tmp_path / "environment.jsonl")
    assert sittings == [{"from_step": 0, **here}, {"from_step": 2, **here}]
    assert _records(out / "environment.jsonl") == [{"from_step": 0, **here}]
    _, meta = load_weights(str(tmp_path / "model"))
    assert meta["extra"]["environment"] == sittings


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_resuming_on_another_machine_warns(run, tmp_path):
    out, _ = run
    import shutil

    shutil.copytree(out / "checkpoint", tmp_path / "checkpoint")
    here = environment()
    other = {**here, "cpu": "Another CPU", "jaxlib": "0.0.1"}
    stale = {**here, "from_step": TC.steps}  # a sitting at the step we resume: recomputed
    (tmp_path / "environment.jsonl").write_text(
        json.dumps({"from_step": 0, **other}) + "\n" + json.dumps(stale) + "\n")
    message = (f"resuming at step {TC.steps} on another machine or software "
               f"(cpu: Another CPU -> {here['cpu']}; jaxlib: 0.0.1 -> {here['jaxlib']}): "
               "from here the run will not match an uninterrupted one bit for bit")
    with pytest.warns(UserWarning, match=re.escape(message)):
        train(TC, tmp_path, progress=False)
    assert _records(tmp_path / "environment.jsonl") == [
        {"from_step": 0, **other}, {"from_step": TC.steps, **here}]


def test_environment_names_this_machine():
    env = environment()
    assert env["jax"] == jax.__version__ and env["numpy"] == np.__version__
    assert env["backend"] == jax.default_backend() == "cpu"
    assert env["cpu"] == cpu_model() and env["cpu"]
    assert environment_differences(env, dict(env)) == []
    assert environment_differences({"from_step": 0, "a": 1, "b": 2}, {"from_step": 7, "a": 1,
                                                                      "c": 3}) == [
        "b: 2 -> None", "c: None -> 3"]


def test_checkpoint_of_another_config_is_refused(run):
    out, _ = run
    other = dataclasses.replace(TC, lr_g=3e-4)
    with pytest.raises(ValueError, match="another training config"):
        ckpt.load(out / "checkpoint", init_state(TC), other)


def test_checkpoint_from_before_a_new_field_resumes(run, tmp_path):
    # A checkpoint written before a config field existed (here: mode_seeking) is the same
    # config when the field has its default.
    out, _ = run
    import shutil

    shutil.copytree(out / "checkpoint", tmp_path / "checkpoint")
    meta_path = tmp_path / "checkpoint" / "config.json"
    meta = json.loads(meta_path.read_text())
    del meta["extra"]["train_config"]["mode_seeking"]
    meta_path.write_text(json.dumps(meta))
    state = ckpt.load(tmp_path / "checkpoint", init_state(TC), TC)
    assert int(state["step"]) == TC.steps


def test_mode_seeking_ratio_closed_form():
    images = jnp.stack([jnp.zeros((2, 2, 3)), jnp.full((2, 2, 3), 0.5),
                        jnp.ones((2, 2, 3)), jnp.full((2, 2, 3), -0.5)])
    z = jnp.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0], [1.0, 3.0]])
    # pairs (0, 2) and (1, 3): image differences 1 and 1, latent differences (2+0, 0+2)/2
    assert float(mode_seeking_ratio(images, z)) == pytest.approx(1.0 / 1.0)
    z = z.at[2].set(jnp.array([4.0, 4.0]))  # |z0 - z2| = 4, 4: mean latent gap (8+2)/4
    assert float(mode_seeking_ratio(images, z)) == pytest.approx(1.0 / 2.5)


def test_edge_view_is_the_laplacian_of_the_binomial_blur_and_blind_to_the_backgrounds():
    from scipy.signal import convolve2d, correlate2d

    rng = np.random.default_rng(0)
    images = rng.normal(size=(2, 12, 10, 3)).astype(np.float32)
    binomial = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
    laplacian = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float64)
    kernel = convolve2d(binomial, laplacian)  # 5x5, symmetric
    want = np.stack([np.stack([correlate2d(images[b, :, :, c], kernel, mode="valid")
                               for c in range(3)], axis=-1) for b in range(2)])
    got = np.asarray(edge_view(jnp.asarray(images)))
    assert got.shape == (2, 8, 6, 3)
    np.testing.assert_allclose(got, want, atol=1e-5)
    # The world's backgrounds (flat colours and linear gradients) leave nothing.
    from jaxaware.toyworld import background, factors

    bg = 2.0 * background(factors(32, seed=3), 32) - 1.0
    assert np.ptp(bg) > 0.5
    assert float(np.abs(edge_view(jnp.asarray(bg))).max()) < 1e-5


def test_mode_seeking_ratio_on_edges_ignores_what_the_backgrounds_differ_by():
    from jaxaware.toyworld import background, factors

    bg = jnp.asarray(2.0 * background(factors(8, seed=1), 16) - 1.0)
    shape = np.zeros((8, 16, 16, 3), np.float32)
    shape[:4, 4:9, 4:9] = 0.8  # first halves: a square; second halves: one a pixel lower
    shape[4:, 5:10, 4:9] = 0.8
    images = bg + jnp.asarray(shape)
    z = jnp.asarray(np.random.default_rng(1).normal(size=(8, 5)), jnp.float32)
    edges = float(mode_seeking_ratio(images, z, "edges"))
    assert edges == pytest.approx(float(mode_seeking_ratio(edge_view(images), z)), rel=1e-6)
    assert edges == pytest.approx(float(mode_seeking_ratio(edge_view(jnp.asarray(shape)),
                                                           z)), rel=1e-4)
    assert float(mode_seeking_ratio(bg, z, "edges")) < 1e-5 < float(mode_seeking_ratio(bg, z))
    # Coarse: the edge view of 2x2 means (8 px here), where a one-pixel shift is half a pixel.
    pooled = jnp.asarray(images).reshape(8, 8, 2, 8, 2, 3).mean(axis=(2, 4))
    coarse = float(mode_seeking_ratio(images, z, "coarse_edges"))
    assert coarse == pytest.approx(float(mode_seeking_ratio(edge_view(pooled), z)), rel=1e-6)
    assert float(mode_seeking_ratio(bg, z, "coarse_edges")) < 1e-5 < coarse
    # Relative: the share of the edges the pairs differ by; contrast does not change it.
    ea, eb = jnp.split(edge_view(images), 2)
    mz = float(jnp.mean(jnp.abs(z[:4] - z[4:])))
    want = float(jnp.mean(jnp.abs(ea - eb)) / (jnp.mean(jnp.abs(ea)) + jnp.mean(jnp.abs(eb))))
    relative = float(mode_seeking_ratio(images, z, "relative_edges"))
    assert relative == pytest.approx(want / mz, rel=1e-5)
    assert float(mode_seeking_ratio(bg + 3.0 * jnp.asarray(shape), z, "relative_edges")) == (
        pytest.approx(relative, rel=1e-4))
    assert float(mode_seeking_ratio(bg + 3.0 * jnp.asarray(shape), z, "edges")) == (
        pytest.approx(3.0 * edges, rel=1e-4))
    same = jnp.concatenate([images[:4], images[:4]])  # identical pairs: no share at all
    assert float(mode_seeking_ratio(same, z, "relative_edges")) == 0.0
    far = np.zeros((8, 16, 16, 3), np.float32)  # pairs whose edges never meet: share 1
    far[:4, 1:5, 1:5] = 1.0
    far[4:, 10:14, 10:14] = 1.0
    assert float(mode_seeking_ratio(jnp.asarray(far), z, "relative_edges")) == pytest.approx(
        1.0 / mz, rel=1e-5)
    with pytest.raises(JaxawareError, match="^view must be one of pixels, edges, coarse_edges, "
                                            "relative_edges; got 'x'$"):
        mode_seeking_ratio(images, z, "x")


def test_mode_seeking_on_edges_reaches_the_generator_loss_and_branches_from_a_plain_run(
        run, tmp_path):
    ratios = {}
    for view in ("pixels", "edges"):
        tc = dataclasses.replace(TC, steps=1, mode_seeking=1.0, mode_seeking_view=view)
        train(tc, tmp_path / view, progress=False)
        ratios[view] = _log(tmp_path / view)[0]["ms_ratio"]
    # The same first fakes, compared in two views: both positive, and not the same number.
    assert ratios["edges"] > 0 and ratios["pixels"] > 0
    assert ratios["edges"] != pytest.approx(ratios["pixels"], rel=1e-3)
    out, _ = run  # a plain run's checkpoint resumes into a late edge-view phase
    late = dataclasses.replace(TC, mode_seeking=0.5, mode_seeking_start=5,
                               mode_seeking_view="edges")
    assert int(ckpt.load(out / "checkpoint", init_state(TC), late)["step"]) == 5


def test_mode_seeking_adds_its_term_to_the_generator_loss(tmp_path):
    # Two weights, same seed: the first step's hinge part and ratio are the same, so the
    # losses differ by exactly the difference of the terms.
    logs = {}
    for w in (0.5, 2.0):
        tc = dataclasses.replace(TC, steps=1, mode_seeking=w)
        train(tc, tmp_path / str(w), progress=False)
        logs[w] = _log(tmp_path / str(w))[0]
    ratio = logs[0.5]["ms_ratio"]
    assert ratio > 0 and logs[2.0]["ms_ratio"] == pytest.approx(ratio, rel=1e-6)
    assert logs[2.0]["g_loss"] - logs[0.5]["g_loss"] == pytest.approx(
        1.5 / (ratio + 1e-5), rel=1e-4)


def _states_equal(a, b):
    return all(np.array_equal(np.asarray(x), np.asarray(y))
               for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def test_late_mode_seeking_runs_the_plain_steps_first_and_branches_from_a_plain_run(
        run, tmp_path):
    out, _ = run  # the plain 5-step run; its checkpoint is at step 5
    late = dataclasses.replace(TC, steps=6, mode_seeking=0.5, mode_seeking_start=5,
                               checkpoint_every=1)
    template = init_state(TC)
    plain = ckpt.load(out / "checkpoint", template, TC)
    # From scratch: the first 5 steps are bit for bit the plain run's, then the term acts.
    assert train(late, tmp_path / "scratch", progress=False, stop_after=5) is None
    at5 = ckpt.load(tmp_path / "scratch" / "checkpoint", template, late)
    assert int(at5["step"]) == 5 and _states_equal(at5, plain)
    train(late, tmp_path / "scratch", progress=False)
    log = _log(tmp_path / "scratch")
    assert "ms_ratio" not in log[4] and log[5]["ms_ratio"] > 0
    assert [r for r in log[:5]] == _log(out)
    # Branching: the plain run's checkpoint resumes into the late run and ends the same.
    import shutil

    shutil.copytree(out / "checkpoint", tmp_path / "branch" / "checkpoint")
    train(late, tmp_path / "branch", progress=False)
    a = ckpt.load(tmp_path / "scratch" / "checkpoint", template, late)
    b = ckpt.load(tmp_path / "branch" / "checkpoint", template, late)
    assert int(a["step"]) == 6 and _states_equal(a, b)
    # ... and step 6 differs from a plain step 6 (the term changed G's update).
    plain6 = train(dataclasses.replace(TC, steps=6), tmp_path / "plain6", progress=False)
    assert not _states_equal(plain6.variables, train(late, tmp_path / "branch",
                                                     progress=False).variables)


def test_a_late_mode_seeking_phase_shares_the_compiled_step_of_a_run_with_the_term():
    late = dataclasses.replace(TC, mode_seeking=0.5, mode_seeking_start=5)
    early = dataclasses.replace(TC, mode_seeking=0.5)
    assert late.phase(6).compute_key() == early.phase(1).compute_key()
    assert late.phase(5).compute_key() == TC.compute_key()  # the plain phase: the plain step
    assert late.compute_key() != dataclasses.replace(TC, mode_seeking=2.0).compute_key()


def test_mode_seeking_stop_runs_the_plain_step_after_it_and_branches_from_a_run_that_kept_it(
        tmp_path):
    window = dataclasses.replace(TC, steps=6, mode_seeking=0.5, mode_seeking_start=3,
                                 mode_seeking_stop=5)
    kept = dataclasses.replace(window, steps=5, mode_seeking_stop=0)
    template = init_state(TC)
    train(window, tmp_path / "scratch", progress=False)
    log = _log(tmp_path / "scratch")
    assert ["ms_ratio" in r for r in log] == [False, False, False, True, True, False]
    # The same window, run as a run that kept the term to 5 steps, then resumed with a stop.
    train(kept, tmp_path / "branch", progress=False)
    train(window, tmp_path / "branch", progress=False)
    a = ckpt.load(tmp_path / "scratch" / "checkpoint", template, window)
    b = ckpt.load(tmp_path / "branch" / "checkpoint", template, window)
    assert int(a["step"]) == 6 and _states_equal(a, b)
    assert _log(tmp_path / "branch") == log
    # Past its stop the phase is the plain step; inside its window, the term's.
    assert window.phase(6).compute_key() == TC.compute_key()
    assert window.phase(4).compute_key() == kept.phase(4).compute_key() != TC.compute_key()
    # A checkpoint of the kept run past the stop is not this run's state.
    longer = dataclasses.replace(kept, steps=6)
    train(longer, tmp_path / "longer", progress=False)
    with pytest.raises(JaxawareError, match="another training config"):
        ckpt.load(tmp_path / "longer" / "checkpoint", template, window)


def test_a_plain_checkpoint_past_the_mode_seeking_start_is_refused(run):
    out, _ = run  # its 5 steps ran without the term; a run starting it at 3 did not
    late = dataclasses.replace(TC, mode_seeking=0.5, mode_seeking_start=3)
    with pytest.raises(JaxawareError, match="another training config"):
        ckpt.load(out / "checkpoint", init_state(TC), late)
    assert int(ckpt.load(out / "checkpoint", init_state(TC),
                         dataclasses.replace(late, mode_seeking_start=5))["step"]) == 5


@pytest.mark.parametrize("kwargs, message", [
    ({"mode_seeking": 1.0, "mode_seeking_start": -1}, "mode_seeking_start must be >= 0; got -1"),
    ({"mode_seeking_start": 10}, "mode_seeking_start is the step mode seeking starts at; set "
                                 "mode_seeking > 0 too"),
    ({"mode_seeking_view": "edges"}, "mode_seeking_view is what the mode-seeking term "
                                     "compares; set mode_seeking > 0 too"),
    ({"mode_seeking_stop": 10}, "mode_seeking_stop is the step mode seeking stops at; set "
                                "mode_seeking > 0 too"),
    ({"mode_seeking": 1.0, "mode_seeking_start": 10, "mode_seeking_stop": 10},
     "mode_seeking_stop must be 0 (never) or past mode_seeking_start (10); got 10"),
    ({"mode_seeking": 1.0, "mode_seeking_view": "texture"},
     "mode_seeking_view must be one of pixels, edges, coarse_edges, relative_edges; "
     "got 'texture'"),
])
def test_mode_seeking_start_bad_config(kwargs, message):
    with pytest.raises(JaxawareError, match="^" + re.escape(message) + "$"):
        dataclasses.replace(TC, **kwargs)


@pytest.mark.parametrize("field, value, message", [
    ("mode_seeking", -1.0, "mode_seeking must be >= 0; got -1.0"),
    ("batch_size", 7, "mode_seeking pairs the samples of a G batch; batch_size must be even, "
                      "got 7"),
])
def test_mode_seeking_bad_config(field, value, message):
    kwargs = {"mode_seeking": 1.0, field: value}
    with pytest.raises(JaxawareError, match="^" + re.escape(message) + "$"):
        dataclasses.replace(TC, **kwargs)


def test_minibatch_std_matches_numpy_groups():
    h = np.random.default_rng(0).normal(size=(8, 3, 3, 5)).astype(np.float32)
    out = np.asarray(minibatch_std(jnp.asarray(h)))
    assert out.shape == (8, 3, 3, 6)
    np.testing.assert_array_equal(out[..., :5], h)
    for j in range(2):  # group j: samples j, j + 2, j + 4, j + 6
        members = h[j::2]
        want = np.sqrt(members.var(axis=0) + 1e-8).mean()
        for i in range(j, 8, 2):
            np.testing.assert_allclose(out[i, ..., 5], want, rtol=1e-5)


def test_class_group_layout_puts_one_class_in_each_minibatch_std_group():
    groups = np.array([[3, 7], [1, 0]])
    layout = class_group_layout(groups)
    np.testing.assert_array_equal(layout, [[3, 7] * 4, [1, 0] * 4])
    np.testing.assert_array_equal(class_group_layout(jnp.asarray(groups)), layout)
    # features that depend on the class only: no spread inside any group
    h = jnp.asarray(layout[0], jnp.float32)[:, None, None, None] * jnp.ones((8, 2, 2, 3))
    assert float(minibatch_std(h)[0, 0, 0, -1]) == pytest.approx(1e-4)
    mixed = jnp.asarray(np.array([3, 7, 7, 3, 3, 7, 7, 3]), jnp.float32)  # groups mix
    h = mixed[:, None, None, None] * jnp.ones((8, 2, 2, 3))
    assert float(minibatch_std(h)[0, 0, 0, -1]) == pytest.approx(2.0, rel=1e-6)


def test_class_grouped_real_batches():
    tc = dataclasses.replace(TC, d_minibatch_std=True, d_class_groups=True, d_steps=2)
    images, labels = real_batch(tc, 3)
    assert images.shape == (2, 8, 32, 32, 3) and labels.shape == (2, 8)
    g = 8 // MINIBATCH_GROUP
    for row in labels:  # each minibatch-std group (j, j + g, ...) holds one class
        for j in range(g):
            assert len(set(row[j::g].tolist())) == 1
    # the world's images 3 * 16 ... of the data seed, rendered in those classes
    want, _ = render(labels.reshape(-1), seed=tc.data_seed, start=3 * 16)
    np.testing.assert_array_equal(images.reshape(want.shape), want)
    # over steps the groups' classes are balanced: 16 groups cover every class once
    seen = np.concatenate([real_batch(tc, s)[1][:, :g].reshape(-1) for s in range(4)])
    assert sorted(seen.tolist()) == list(range(16))


def test_larger_class_groups_fill_every_pack_with_one_class():
    tc = dataclasses.replace(TC, batch_size=16, d_class_groups=True, d_group=8, d_pack=8)
    _, labels = real_batch(tc, 2)
    packed = np.asarray(pack_samples(jnp.asarray(labels[0], jnp.float32)[:, None, None, None],
                                     8))
    assert packed.shape == (2, 1, 1, 8)
    for p in packed[:, 0, 0]:  # every member of a pack has the pack's class
        assert len(set(p.tolist())) == 1
    # balanced over steps: 2 groups a step, 8 steps cover each class once
    seen = np.concatenate([real_batch(tc, s)[1][0, :2] for s in range(8)])
    assert sorted(seen.tolist()) == list(range(16))


def test_class_grouped_training_runs(tmp_path):
    tc = dataclasses.replace(TC, steps=2, d_minibatch_std=True, d_class_groups=True)
    train(tc, tmp_path, progress=False)
    assert all(np.isfinite(v) for row in _log(tmp_path) for v in row.values())


@pytest.mark.parametrize("changes, message", [
    ({"d_minibatch_std": False}, "d_class_groups arranges the batches for the minibatch "
                                 "standard deviation or packing; set d_minibatch_std or "
                                 "d_pack too"),
    ({"batch_size": 6}, "d_class_groups draws groups of 4 samples of one class; batch_size "
                        "must be a multiple of 4, got 6"),
])
def test_class_groups_bad_config(changes, message):
    kwargs = {"d_minibatch_std": True, "d_class_groups": True, **changes}
    with pytest.raises(JaxawareError, match="^" + re.escape(message) + "$"):
        dataclasses.replace(TC, **kwargs)


def test_pack_samples_concatenates_samples_a_pack_apart():
    x = np.random.default_rng(1).normal(size=(8, 2, 3, 3)).astype(np.float32)
    for pack in (2, 4):
        out = np.asarray(pack_samples(jnp.asarray(x), pack))
        n = 8 // pack
        assert out.shape == (n, 2, 3, 3 * pack)
        for p in range(n):  # pack p: samples p, p + n, ... on channels, in that order
            want = np.concatenate([x[p + i * n] for i in range(pack)], axis=-1)
            np.testing.assert_array_equal(out[p], want)
    with pytest.raises(ValueError, match="^a batch of 8 does not divide into packs of 3$"):
        pack_samples(jnp.asarray(x), 3)


def test_packed_discriminator_gives_one_logit_per_pack():
    cfg = default_dconfig(32, 4, 16, coords=True, pack=2)
    d = Discriminator(cfg)
    params = init_discriminator(cfg, 32, seed=3)
    x = jnp.asarray(np.random.default_rng(2).uniform(-1, 1, (8, 32, 32, 3)), jnp.float32)
    y = jnp.asarray(class_group_layout(np.array([5, 9])))  # [5, 9, 5, 9, ...]
    logits = np.asarray(d.apply({"params": params}, x, y))
    assert logits.shape == (4,)
    # pack p is samples p and p + 4: changing sample 5 moves pack 1's logit only
    moved = np.asarray(d.apply({"params": params}, x.at[5].set(-x[5]), y))
    changed = ~np.isclose(moved, logits, rtol=0, atol=1e-6)
    assert changed.tolist() == [False, True, False, False]
    # the first layer sees 2 x 3 image channels and the 2 coordinates
    assert params["block0"]["conv1"]["kernel"].shape == (3, 3, 8, 4)
    # a pack is labelled by its first sample; the projection term reads that class
    other = y.at[1].set(2)
    assert not np.allclose(np.asarray(d.apply({"params": params}, x, other))[1], logits[1])
    np.testing.assert_array_equal(d.apply({"params": params}, x, y.at[5].set(2)), logits)


@pytest.mark.parametrize("changes, message", [
    ({"d_pack": 3}, "d_pack must divide the class groups of 4 samples (d_group); got 3"),
    ({"d_pack": 0}, "d_pack must divide the class groups of 4 samples (d_group); got 0"),
    ({"d_group": 6, "d_pack": 4}, "d_pack must divide the class groups of 6 samples "
                                  "(d_group); got 4"),
    ({"d_group": 0}, "d_group must be >= 1; got 0"),
    ({"d_group": 8, "d_class_groups": False},
     "d_group sizes the class groups; set d_class_groups too"),
    ({"d_group": 8, "d_pack": 1, "d_minibatch_std": True},
     "the minibatch standard deviation works on groups of 4; d_group must stay 4 with "
     "d_minibatch_std, got 8"),
    ({"d_group": 8, "batch_size": 12}, "d_class_groups draws groups of 8 samples of one "
                                       "class; batch_size must be a multiple of 8, got 12"),
    ({"d_class_groups": False}, "d_pack packs samples of one class; set d_class_groups too"),
    ({"d_minibatch_std": True}, "d_pack and d_minibatch_std cannot be combined: the "
                                "minibatch groups of packs would mix classes; choose one"),
])
def test_pack_bad_config(changes, message):
    kwargs = {"d_class_groups": True, "d_pack": 2, **changes}
    with pytest.raises(JaxawareError, match="^" + re.escape(message) + "$"):
        dataclasses.replace(TC, **kwargs)


def test_layout_view_is_the_mean_of_each_square():
    x = np.random.default_rng(4).normal(size=(2, 32, 32, 3)).astype(np.float32)
    out = np.asarray(layout_view(jnp.asarray(x), 8))
    assert out.shape == (2, 8, 8, 3)
    np.testing.assert_allclose(out[1, 2, 5], x[1, 8:12, 20:24].mean(axis=(0, 1)), atol=1e-6)
    np.testing.assert_allclose(np.asarray(layout_view(jnp.asarray(x), 4))[0, 3, 0],
                               x[0, 24:32, 0:8].mean(axis=(0, 1)), atol=1e-6)
    with pytest.raises(ValueError, match="^a layout view of 5 px needs square images whose "
                                         "side it divides; got 32x32$"):
        layout_view(jnp.asarray(x), 5)


def test_packed_training_with_a_layout_discriminator_runs(tmp_path):
    # packs of 4 from class groups of 8 for the main D; packs of 8 for the layout D
    tc = dataclasses.replace(TC, steps=2, checkpoint_every=1, batch_size=16,
                             d_class_groups=True, d_group=8, d_pack=4, d_coords=True,
                             d_layout=0.5, d_layout_pack=8)
    train(tc, tmp_path, progress=False, stop_after=1)
    rows = _log(tmp_path)
    assert {"dl_loss", "g_layout"} <= set(rows[0])
    assert all(np.isfinite(v) for row in rows for v in row.values())
    start = init_state(tc)
    state = ckpt.load(tmp_path / "checkpoint", start, tc)
    # its own parameters, packs of 8 of the 8-px view (3 x 8 image channels + 2 coordinates)
    assert state["dl"]["block0"]["conv1"]["kernel"].shape == (3, 3, 26, 4)
    moved = jax.tree_util.tree_map(lambda a, b: not np.allclose(a, b), state["dl"], start["dl"])
    assert all(jax.tree_util.tree_leaves(moved))  # one update moved every layout-D weight
    # a run without it keeps the state it always had (old checkpoints still load)
    assert "dl" not in init_state(TC)


@pytest.mark.parametrize("changes, message", [
    ({"d_layout": -1.0}, "d_layout must be >= 0; got -1.0"),
    ({"d_layout": 0.0}, "d_layout_size and d_layout_pack shape the layout discriminator; "
                        "set d_layout > 0 too"),
    ({"d_layout_pack": 3}, "d_layout_pack must divide the class groups of 4 samples "
                           "(d_group); got 3"),
    ({"d_layout_pack": 2, "d_class_groups": False, "d_pack": 1},
     "d_layout_pack packs samples of one class; set d_class_groups too"),
    ({"d_layout_size": 32}, "d_layout_size must be >= 4, below the resolution 32 and divide "
                            "it; got 32"),
    ({"d_layout_size": 6}, "d_layout_size must be >= 4, below the resolution 32 and divide "
                           "it; got 6"),
    ({"d_layout_size": 2}, "d_layout_size must be >= 4, below the resolution 32 and divide "
                           "it; got 2"),
])
def test_layout_bad_config(changes, message):
    kwargs = {"d_class_groups": True, "d_pack": 2, "d_layout": 1.0, "d_layout_pack": 4,
              **changes}
    with pytest.raises(JaxawareError, match="^" + re.escape(message) + "$"):
        dataclasses.replace(TC, **kwargs)


def test_model_from_checkpoint_gives_the_ema_or_the_trained_generator(run):
    out, _ = run
    state = ckpt.load(out / "checkpoint", init_state(TC), TC)
    ema = model_from_checkpoint(out, standing_batches=1)
    raw = model_from_checkpoint(out, standing_batches=1, use_ema=False)
    for model, which in ((ema, "ema"), (raw, "g")):
        want = fold_spectral_norm(jax.device_get(state[which]), generator_filter)
        for x, y in zip(jax.tree_util.tree_leaves(want),
                        jax.tree_util.tree_leaves(model.variables["params"])):
            np.testing.assert_allclose(np.asarray(y), np.asarray(x), rtol=1e-5, atol=1e-6)
    gap = max(float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in zip(
        jax.tree_util.tree_leaves(ema.variables["params"]),
        jax.tree_util.tree_leaves(raw.variables["params"])))
    assert gap > 1e-4  # after 5 steps the EMA has not caught up


def test_standing_stats_fill_all_rows(run):
    _, model = run
    leaves = jax.tree_util.tree_leaves_with_path(model.variables["stats"])
    assert len(leaves) == 2 * (4 * len(TINY.layers) + 1)
    for path, leaf in leaves:
        leaf = np.asarray(leaf)
        assert leaf.shape[0] == 51 and leaf.dtype == np.float32
        assert np.all(np.isfinite(leaf))
        if "var" in jax.tree_util.keystr(path):
            assert np.all(leaf > 0)
        assert len({row.tobytes() for row in leaf}) == 51, jax.tree_util.keystr(path)


def test_saved_model_loads_and_generates_deterministically(run):
    out, model = run
    loaded = load(str(out / "model"))
    _, meta = load_weights(str(out / "model"))
    assert meta["extra"]["class_names"] == list(WORLD.class_names)
    assert loaded.class_names == WORLD.class_names
    assert loaded.resolve_classes("cat,castle") == [0, 15]
    for x, y in zip(jax.tree_util.tree_leaves(model.variables),
                    jax.tree_util.tree_leaves(loaded.variables)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    z = truncated_noise(4, TINY.z_dim, 1.0, seed=3)
    a = np.asarray(generate(loaded, z, [0, 5, 10, 15], 1.0))
    b = np.asarray(generate(load(str(out / "model")), truncated_noise(4, TINY.z_dim, 1.0, 3),
                            [0, 5, 10, 15], 1.0))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (4, 32, 32, 3) and np.all(np.isfinite(a)) and np.abs(a).max() <= 1.0


def test_saved_generator_is_spectrally_normalised(run):
    _, model = run
    params = model.params
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        name = jax.tree_util.keystr(path)
        leaf = np.asarray(leaf)
        if generator_filter(str(path[-1].key), leaf.shape):
            top = np.linalg.svd(leaf.reshape(-1, leaf.shape[-1]).astype(np.float64),
                                compute_uv=False)[0]
            assert abs(top - 1.0) < 1e-5, name


def test_power_iteration_converges_to_top_singular_value():
    rng = np.random.default_rng(0)
    kernel = jnp.asarray(rng.standard_normal((3, 3, 8, 16)), jnp.float32)
    true = np.linalg.svd(np.asarray(kernel, np.float64).reshape(-1, 16), compute_uv=False)[0]
    u = jnp.asarray(rng.standard_normal(16), jnp.float32)
    step = jax.jit(lambda k, u: power_iteration(k, u, 1))
    sigmas = []
    for _ in range(200):
        sigma, u = step(kernel, u)
        sigmas.append(float(sigma))
    assert sigmas[0] < true * (1 + 1e-6)  # power iteration estimates from below
    np.testing.assert_allclose(sigmas[-1], true, rtol=1e-4)
    # one iteration per call, state carried: the normalised kernel has norm ~1
    params = {"conv": {"kernel": kernel}}
    normed, new = spectral_normalize(params, {"conv/kernel": u})
    top = np.linalg.svd(np.asarray(normed["conv"]["kernel"]).reshape(-1, 16),
                        compute_uv=False)[0]
    assert abs(top - 1.0) < 1e-4 and set(new) == {"conv/kernel"}
    # gradients flow through sigma only, not through u
    g = jax.grad(lambda k: spectral_normalize({"k": k}, {"k": u})[0]["k"].sum())(kernel)
    assert np.all(np.isfinite(np.asarray(g)))
    folded = fold_spectral_norm({"conv": {"kernel": np.asarray(kernel)}}, generator_filter)
    top = np.linalg.svd(folded["conv"]["kernel"].reshape(-1, 16).astype(np.float64),
                        compute_uv=False)[0]
    assert abs(top - 1.0) < 1e-6


def test_frechet_distance_separates_classes():
    """In the classifier's features a class is closer to itself than to another class."""
    clf = load_classifier()
    cat_a = clf.features(real_images(0, 96, seed=10, resolution=32))
    cat_b = clf.features(real_images(0, 96, seed=11, resolution=32))
    castle = clf.features(real_images(15, 96, seed=10, resolution=32))
    scale = np.trace(np.cov(cat_a, rowvar=False))
    assert frechet_distance(cat_a, cat_a) <= 1e-6 * scale
    within = frechet_distance(cat_a, cat_b)
    between = frechet_distance(cat_a, castle)
    assert 0 < within < between


def test_evaluate_reports_every_class(run):
    _, model = run
    result = evaluate_world_model(model, per_class=8, sheet_samples=2)
    assert len(result["classes"]) == 16 and 0 <= result["accuracy"] <= 1
    assert all(np.isfinite(r["frechet"]) for r in result["classes"])
    assert set(result["bars"]) == {"every_class_accuracy", "overall_accuracy",
                                   "diversity_every_class", "frechet_within_5x_floor"}
    assert result["sheet"]["images"].shape == (32, 32, 32, 3)
    assert result["sheet"]["part_maps"].shape == (32, 32, 32)
    assert "castle" in format_table(result)
    json.dumps({k: v for k, v in result.items() if k != "sheet"})


def test_evaluate_sheet_shows_at_most_the_samples_each_class_has(run):
    _, model = run
    sheet = evaluate_world_model(model, per_class=3, sheet_samples=6)["sheet"]
    assert sheet["samples"] == 3 and sheet["images"].shape[0] == 16 * 3
    assert sheet_image(sheet["images"], sheet["part_maps"], sheet["samples"], 1).size[1] > 0


def test_evaluate_with_bootstrap_gives_intervals_and_verdicts(run):
    _, model = run
    result = evaluate_world_model(model, per_class=8, bootstrap=50)
    assert result["interval_level"] == 0.9 and result["bootstrap"] == 50
    lo, hi = result["accuracy_interval"]
    assert lo <= result["accuracy"] <= hi
    for r in result["classes"]:
        assert r["accuracy_interval"][0] <= r["accuracy"] <= r["accuracy_interval"][1]
        for f in ("centre", "area", "background"):
            a, b = r[f"{f}_ratio_interval"]
            assert not (a > b)  # ordered (or NaN where a class has too few objects)
    assert set(result["bar_verdicts"]) == set(result["bars"])
    assert set(result["bar_verdicts"].values()) <= {"met", "missed", "within noise"}
    assert "90% intervals:" in format_table(result)
    json.dumps(result)


@pytest.mark.parametrize("bad", [1, -3, 2.5, True])
def test_evaluate_bootstrap_bad_input(run, bad):
    _, model = run
    with pytest.raises(JaxawareError, match=r"^bootstrap takes 0 \(no intervals\) or a number "
                                            r"of draws >= 2; got "):
        evaluate_world_model(model, per_class=2, bootstrap=bad)
