"""Channel-classifier response: the exact sweep against a loop of single-edit generations,
the first-order estimate where it must be exact, dead channels, the Fig. 4 correlation and
its settings, and bad input. Expected values are computed here with plain generate calls,
NumPy and SciPy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import savgol_filter
from scipy.stats import pearsonr, spearmanr

from helpers import SMALL_BIGGAN, forward_traces, random_model, raises
from jaxaware.analysis import (
    as_classifier,
    exact_response,
    first_order_response,
    pearson,
    response_correlation,
    savgol_window,
    site_columns,
    spearman,
)
from jaxaware.generate import generate
from jaxaware.interventions import flat_zero
from jaxaware.sites import site_table
from test_analysis_models import (
    TINY,
    fake_awareness,
    linear_classifier,
    tiny_model,
    with_dead_channel,
    with_linear_tail,
)

M = 3


def _scores(logits, labels):
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return p[np.arange(len(labels)), labels]


def _loop_drop(model, fn, k, groups, num_latents=M, seed=1):
    """The straightforward answer: one generate call per edit, then score each image."""
    z = model.family.sample_latents(num_latents, model.config, 1.0, seed)
    y = np.full(num_latents, k)
    base = _scores(np.asarray(fn(generate(model, z, y, 1.0))), y)
    out = []
    for cols in groups:
        img = generate(model, z, y, 1.0, interventions=flat_zero(model.config, cols))
        out.append((base - _scores(np.asarray(fn(img)), y)).mean())
    return np.array(out)


@pytest.mark.parametrize("which", ["deep", "biggan"])
def test_exact_sweep_equals_a_loop_of_single_edit_generations(which):
    model = tiny_model() if which == "deep" else random_model(SMALL_BIGGAN)
    fn = linear_classifier(model.config)
    sites = site_table(model.config)
    # single channels at a first, a middle and the last site, and groups spanning blocks
    groups = [[sites[0].offset], [sites[0].offset + 3], [sites[len(sites) // 2].offset + 1],
              [sites[-1].offset + 2], [sites[1].offset, sites[-1].offset],
              [sites[-2].offset, sites[-2].offset + 1]]
    padded = [g + [g[0]] * (2 - len(g)) for g in groups]  # [E, 2]; a repeat zeroes nothing new
    got = exact_response(model, fn, [0, 2], np.array(padded), num_latents=M, batch_size=2,
                         edit_batch=4)
    for i, k in enumerate([0, 2]):
        np.testing.assert_allclose(got.drop[i], _loop_drop(model, fn, k, groups), atol=2e-6)
    assert got.drop.shape == (2, len(groups)) and got.sem.shape == (2, len(groups))
    assert np.abs(got.drop).max() > 1e-4  # not trivially zero
    assert got.images == 2 * M * (len(groups) + len({s.block for s in sites
                                                     if any(s.offset <= g[0] < s.offset
                                                            + s.channels for g in groups)}))


def test_dead_channel_has_zero_response_exact_and_first_order():
    model = with_dead_channel(tiny_model(), "block1.bn1", 2)
    fn = linear_classifier(TINY)
    cols = site_columns(TINY, "block1.bn1")
    exact = exact_response(model, fn, [1, 3], cols, num_latents=M)
    first = first_order_response(model, fn, [1, 3], cols, num_latents=M)
    assert np.all(exact.drop[:, 2] == 0) and np.all(first.drop[:, 2] == 0)
    assert np.all(np.abs(exact.drop[:, [0, 1, 3]]).max(axis=1) > 1e-5)


@pytest.mark.parametrize("score", ["logit", "prob"])
def test_first_order_is_exact_where_the_score_is_linear_in_the_channels(score):
    """With an output ReLU that never clips and a classifier linear in arctanh(image), the
    target logit is affine in the last site's channel scales: the linearisation is exact,
    for single channels and for groups (a sum). The probability is not linear: there the
    first order only approximates, and must still rank the channels like the exact sweep."""
    model = with_linear_tail(tiny_model())
    fn = linear_classifier(TINY, undo_tanh=True)
    last = site_table(TINY)[-1]
    for group in (1, 2):
        cols = site_columns(TINY, last, group=group)
        exact = exact_response(model, fn, [0, 1, 2], cols, num_latents=M, score=score)
        first = first_order_response(model, fn, [0, 1, 2], cols, num_latents=M, score=score)
        if score == "logit":
            assert np.abs(exact.drop).min() > 1e-3  # every channel matters
            np.testing.assert_allclose(first.drop, exact.drop, rtol=1e-3, atol=5e-5)
        else:
            assert np.abs(exact.drop).min() > 1e-5
            assert not np.allclose(first.drop, exact.drop, rtol=1e-4, atol=1e-8)
            np.testing.assert_allclose(first.drop, exact.drop, rtol=0.3, atol=2e-4)


def test_first_order_covers_every_channel_and_matches_a_finite_difference():
    model = tiny_model()
    fn = linear_classifier(TINY)
    first = first_order_response(model, fn, [2], num_latents=M)
    assert first.drop.shape == (1, 56) and first.sem is None
    # central difference of the mean score in the scale of one channel (float64 on host)
    from jaxaware.interventions import flat_multiply

    z = model.family.sample_latents(M, TINY, 1.0, 1)
    y = np.full(M, 2)
    col, eps = 45, 1e-2

    def s(a):
        return _scores(np.asarray(fn(generate(model, z, y, 1.0,
                                              interventions=flat_multiply(TINY, [col], a)))),
                       y).astype(np.float64).mean()

    np.testing.assert_allclose(first.drop[0, col], (s(1 + eps) - s(1 - eps)) / (2 * eps),
                               rtol=2e-2, atol=1e-6)


def test_a_numpy_classifier_runs_on_the_host_with_the_same_result():
    model = tiny_model()
    fn = linear_classifier(TINY)
    host = lambda x: np.asarray(fn(np.asarray(x)))  # noqa: E731
    host_clf = as_classifier(lambda x: np.asarray(host(np.asarray(x))), model)
    assert not host_clf.traceable
    cols = site_columns(TINY, "L5")
    np.testing.assert_allclose(exact_response(model, host_clf, [0], cols, num_latents=M).drop,
                               exact_response(model, fn, [0], cols, num_latents=M).drop,
                               atol=1e-6)
    with raises(f"the first-order estimate needs a classifier JAX can differentiate; "
                f"{host_clf.name} is not (use the exact sweep)"):
        first_order_response(model, host_clf, [0], num_latents=M)


def test_response_correlation_sorts_groups_and_correlates_smoothed_curves():
    model = tiny_model()
    fn = linear_classifier(TINY)
    rng = np.random.RandomState(0)
    category = rng.randn(4, 56)
    aw = fake_awareness(TINY, category)
    r = response_correlation(model, fn, [0, 3], "L0", group=2, num_latents=M, awareness=aw,
                             window=5, polyorder=2)
    site = category[:, :16]
    for i, k in enumerate([0, 3]):
        order = np.argsort(site[k], kind="stable")
        np.testing.assert_array_equal(r.channels[i].ravel(), order)
        np.testing.assert_allclose(r.awareness[i], site[k][order].reshape(8, 2).mean(1),
                                   rtol=1e-6)
        exact = exact_response(model, fn, [k], order.reshape(8, 2), num_latents=M, seed=1)
        np.testing.assert_allclose(r.drop[i], exact.drop[0], atol=1e-7)
        np.testing.assert_allclose(r.smoothed[i], savgol_filter(r.drop[i], 5, 2), atol=1e-12)
        assert r.pearson[i] == pytest.approx(pearsonr(r.awareness[i], r.smoothed[i])[0])
        assert r.spearman[i] == pytest.approx(spearmanr(r.awareness[i], r.smoothed[i])[0])
    assert r.mean_pearson == pytest.approx(np.mean(r.pearson))
    assert np.all(np.diff(r.awareness, axis=1) >= 0)
    data = r.to_json()
    assert {"mean_pearson", "mean_spearman", "pearson", "awareness", "drop", "smoothed",
            "window", "polyorder", "channels", "site", "group", "base"} <= set(data)


def test_correlations_against_scipy_and_flat_input():
    a, b = np.array([1.0, 2, 3, 5, 4]), np.array([2.0, 1, 4, 4, 9])
    assert pearson(a, b) == pytest.approx(pearsonr(a, b)[0])
    assert spearman(a, b) == pytest.approx(spearmanr(a, b)[0])
    assert np.isnan(pearson(a, np.ones(5)))


@pytest.mark.parametrize("n, window, polyorder, want", [
    (1536, None, 2, 51), (2048, None, 2, 51), (1000, None, 2, 33), (400, None, 2, 13),
    (128, None, 2, 5), (32, None, 2, 5), (16, None, 3, 5), (16, None, 1, 3), (5, None, 2, 5),
    (4, None, 2, 0), (2, None, 2, 0), (100, 7, 2, 7), (100, 0, 2, 0), (8, 9, 2, 7),
    (4, 9, 2, 0)])
def test_savgol_window(n, window, polyorder, want):
    assert savgol_window(n, window, polyorder) == want


def test_bad_input_is_one_line():
    model = tiny_model()
    fn = linear_classifier(TINY)
    with raises("group size 3 does not divide the 16 channels of block0.bn0; use a divisor of "
                "16"):
        response_correlation(model, fn, [0], "L0", group=3, num_latents=M)
    with raises("num_latents (M latent pairs) must be an integer >= 2; got 1"):
        response_correlation(model, fn, [0], "L0", num_latents=1)
    with raises("num_latents (M latent pairs) must be an integer >= 2; got 1"):
        exact_response(model, fn, [0], site_columns(TINY, "L0"), num_latents=1)
    with raises("unknown site 'L8'; CCBN sites are block0.bn0..block1.bn3 (L0..L7); closest: "
                "block1.bn3, block1.bn2, block1.bn1"):
        response_correlation(model, fn, [0], "L8", num_latents=M)
    with raises("class index 4 is out of range; this model has classes 0..3"):
        response_correlation(model, fn, [4], "L0", num_latents=M)
    with raises("window must be odd and larger than polyorder 2 (or 0: no smoothing); got 4"):
        response_correlation(model, fn, [0], "L0", num_latents=M, window=4)
    with raises("method must be one of exact, first-order; got 'second-order'"):
        response_correlation(model, fn, [0], "L0", num_latents=M, method="second-order")
    with raises("score must be one of prob, logit; got 'margin'"):
        exact_response(model, fn, [0], site_columns(TINY, "L0"), num_latents=M,
                       score="margin")
    with raises("column 56 is out of range; the flat channel axis has columns 0..55"):
        exact_response(model, fn, [0], np.array([[56]]), num_latents=M)
    with raises("give a classifier (a function images [B, H, W, 3] in [-1, 1] -> logits "
                "[B, K]; on the command line --classifier FILE.py:NAME); the toy world's "
                "classifier fits only models of the toy world's 16 classes"):
        exact_response(model, None, [0], site_columns(TINY, "L0"), num_latents=M)


def test_compiles_once_per_start_block_across_classes_and_calls():
    """Edits at sites of blocks 0 and 1: one suffix program per start block and one prefix
    (blocks 0..0), traced for the first class; the second class and a second call with
    other classes reuse them (no trace at all)."""
    model = tiny_model(1)
    clf = as_classifier(linear_classifier(TINY, 1), model)
    cols = np.concatenate([site_columns(TINY, "L0"), site_columns(TINY, "L4")])
    assert [site_table(TINY)[i].block for i in (0, 4)] == [0, 1]  # L0, L4

    def programs(calls):  # what each trace built: the suffix from block b, the prefix to b
        return sorted(
            ("suffix", c["start"]) if "start" in c else ("prefix", c["stop"]) for c in calls
        )

    with forward_traces("jaxaware.analysis.sweep") as calls:
        exact_response(model, clf, [0, 1], cols, num_latents=4, batch_size=4)
        assert programs(calls) == [("prefix", 1), ("suffix", 0), ("suffix", 1)]
        calls.clear()
        exact_response(model, clf, [2, 3], cols, num_latents=4, batch_size=4)
        assert calls == []


def test_site_scan_equals_first_order_correlation_site_by_site():
    from jaxaware.analysis import scan_sites

    model, fn = tiny_model(), linear_classifier(TINY)
    aw = fake_awareness(TINY, np.random.RandomState(3).randn(4, 56))
    scan = scan_sites(model, fn, [0, 2], None, group=2, num_latents=M, awareness=aw)
    assert scan.sites == ("block0.bn0", "block1.bn0")  # the 4-channel sites: < 3 groups
    for i, name in enumerate(scan.sites):
        one = response_correlation(model, fn, [0, 2], name, group=2, num_latents=M,
                                   awareness=aw, method="first-order")
        np.testing.assert_allclose(scan.pearson[i], one.pearson, atol=1e-9)
        assert scan.windows[i] == one.window
    with raises("no chosen site has a multiple of group size 3 channels (and at least 3 "
                "groups)"):
        scan_sites(model, fn, [0], "L0,L1", group=3, num_latents=M, awareness=aw)
