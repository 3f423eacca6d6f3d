"""experiments/latent_size.py: how well z_0 orders a model's object sizes, read by the
reference segmenter, against scipy and constructed answers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from jaxaware.toyworld import WORLD
from jaxaware.train.extent import QUANTILES, area_targets

from helpers import load_experiment

K = WORLD.num_classes


def _script():
    return load_experiment("latent_size")


def test_size_agreement_against_scipy_and_the_term():
    rng = np.random.default_rng(0)
    quantiles = np.sort(rng.uniform(0.05, 0.4, (K, QUANTILES)), axis=1).astype(np.float32)
    spreads = rng.uniform(0.01, 0.05, K).astype(np.float32)
    classes = np.repeat([2, 5, 9], 40)
    z0 = rng.normal(size=len(classes)).astype(np.float32)
    exact = np.asarray(area_targets(z0, classes, quantiles, "normal"))
    miss = rng.normal(size=len(classes)).astype(np.float32)
    noisy = exact + miss * spreads[classes]
    agree = _script().size_agreement
    for r in agree(z0, classes, exact, quantiles, spreads, "normal"):
        assert r["spearman"] == pytest.approx(1.0) and r["error"] == pytest.approx(0, abs=1e-8)
    rows = agree(z0, classes, noisy, quantiles, spreads, "normal")
    assert [r["class"] for r in rows] == [2, 5, 9] and [r["n"] for r in rows] == [40] * 3
    for r in rows:
        m = classes == r["class"]
        assert r["spearman"] == pytest.approx(stats.spearmanr(z0[m], noisy[m]).statistic)
        assert r["error"] == pytest.approx(float(np.mean(miss[m] ** 2)), rel=1e-4)


def test_quick_run_writes_what_its_points_say(tmp_path):
    out = tmp_path / "size.json"
    record = _script().main(["--quick", "--out", str(out)])
    assert (tmp_path / "size.png").read_bytes()[:4] == b"\x89PNG"
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(record)) and saved["quick"] is True
    (model,) = saved["models"].values()
    n = saved["per_class"]
    pts = model["points"]
    assert len(pts["quantile"]) == K * n == len(pts["standardized_area"])
    # Within a class both points are monotone in z_0 and in the area: the same ranks.
    for r in model["classes"]:
        sl = slice(r["class"] * n, (r["class"] + 1) * n)
        want = stats.spearmanr(pts["quantile"][sl], pts["standardized_area"][sl]).statistic
        assert r["spearman"] == pytest.approx(want, abs=0.02)  # points are rounded
    assert model["spearman_mean"] == pytest.approx(np.mean([r["spearman"]
                                                            for r in model["classes"]]))


@pytest.mark.parametrize("args, message", [
    (["--per-class", "2", "--out", "x.json"], "error: --per-class must be >= 3 (a rank "
                                              "correlation per class); got 2"),
    (["--out", "x.txt"], "error: --out must name a .json file; got 'x.txt'"),
])
def test_bad_input_exits_2(tmp_path, capsys, args, message):
    args = [a if not a.startswith("x.") else str(tmp_path / a) for a in args]
    with pytest.raises(SystemExit) as e:
        _script().main(args)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == message.replace("'x.txt'", repr(str(tmp_path / "x.txt")))
    assert not list(tmp_path.iterdir())


def test_instrument_error_is_the_rms_in_class_spreads():
    truth = np.array([0.1, 0.2, 0.3, 0.4])
    classes = np.array([0, 0, 1, 1])
    spreads = np.array([0.01, 0.1])
    read = truth + np.array([0.01, -0.02, 0.1, 0.0])  # 1, -2, 1, 0 class sd
    assert _script().instrument_error(truth, read, classes, spreads) == pytest.approx(
        np.sqrt((1 + 4 + 1 + 0) / 4))


def test_regressor_reads_the_same_samples(tmp_path, monkeypatch):
    import jaxaware.train.extent as extent

    real = extent.extent_regressor  # a short training stands in for the 3-minute one
    monkeypatch.setattr(extent, "extent_regressor",
                        lambda res, progress=False: real(res, steps=100, per_class=50))
    record = _script().main(["--quick", "--regressor", "--out", str(tmp_path / "s.json")])
    (model,) = record["models"].values()
    assert model["error_regressor_mean"] == pytest.approx(
        np.mean([r["error_regressor"] for r in model["classes"]]))
    assert all(-1 <= r["spearman_regressor"] <= 1 for r in model["classes"])
    scores = record["instruments_on_real_renders"]["32"]
    assert scores["regressor_record"]["steps"] == 100
    # On real renders the segmenter (mIoU 0.95) reads areas well inside a class's spread.
    assert scores["segmenter_rms_in_class_sd"] < 0.5
    assert scores["segmenter_rms_in_class_sd"] < scores["regressor_rms_in_class_sd"]  # 100 steps
    assert model["segmenter_vs_regressor_rms_in_class_sd"] > 0
