"""experiments/extent_calibration.py: the extent regressor's calibration line per class
against numpy's least squares, the comparison against scipy, and a quick run's files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from jaxaware.toyworld import WORLD
from jaxaware.train.extent import real_extents

from helpers import load_experiment

K = WORLD.num_classes


def _script():
    return load_experiment("extent_calibration")


def test_reader_calibration_is_the_least_squares_line_of_the_readings():
    def apply(params, images, classes):  # a reader of its own: brightness, class offset
        return params * np.asarray(images).mean(axis=(1, 2, 3)) + 0.01 * classes

    rows = _script().reader_calibration(apply, 2.0, per_class=30)
    images, classes, areas = real_extents(30, start=10_000_000)
    readings = 2.0 * images.mean(axis=(1, 2, 3)) + 0.01 * classes
    assert [r["name"] for r in rows] == list(WORLD.class_names)
    for c in (0, 9, K - 1):
        a, r = areas[classes == c], readings[classes == c]
        slope, intercept = np.polyfit(a, r, 1)
        row = rows[c]
        assert row["slope"] == pytest.approx(slope, rel=1e-4)
        assert row["intercept"] == pytest.approx(intercept, rel=1e-4, abs=1e-6)
        assert row["predicted_ratio"] == pytest.approx(1.0 / slope, rel=1e-4)
        assert row["r2"] == pytest.approx(1 - np.mean((r - a) ** 2) / np.var(a), rel=1e-4)


def _evaluation(path, ratios):
    path.write_text(json.dumps({"classes": [{"class": c, "area_ratio": float(x)}
                                            for c, x in enumerate(ratios)]}))
    return str(path)


def test_measured_ratios_and_the_comparison(tmp_path):
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0.5, 2.0, (2, K))
    paths = [_evaluation(tmp_path / "a.json", a), _evaluation(tmp_path / "b.json", b)]
    np.testing.assert_array_equal(_script().measured_ratios(paths, K), np.stack([a, b]))
    predicted = rng.uniform(1.0, 1.5, K)
    c = _script().compare(predicted, a)
    assert c["spearman"] == pytest.approx(stats.spearmanr(predicted, a).statistic)
    assert c["measured_over_predicted"] == pytest.approx(np.median(a / predicted))
    assert _script().compare(predicted, 1.3 * predicted) == pytest.approx(
        {"spearman": 1.0, "measured_over_predicted": 1.3})


def test_quick_run_writes_the_numbers_it_prints(tmp_path, capsys):
    rng = np.random.default_rng(2)
    ratios = rng.uniform(0.8, 2.0, (2, K))
    paths = [_evaluation(tmp_path / f"e{i}.json", r) for i, r in enumerate(ratios)]
    out = tmp_path / "cal.json"
    record = _script().main(["--quick", "--out", str(out), *paths])
    assert (tmp_path / "cal.png").read_bytes()[:4] == b"\x89PNG"
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(record)) and saved["quick"] is True
    assert saved["evaluations"] == ["e0.json", "e1.json"]
    rows = saved["classes"]
    assert [r["measured_ratio"] for r in rows] == pytest.approx(ratios.mean(axis=0).tolist())
    assert [r["measured_max"] for r in rows] == pytest.approx(ratios.max(axis=0).tolist())
    assert saved["comparison"] == pytest.approx(_script().compare(
        [r["predicted_ratio"] for r in rows], ratios.mean(axis=0)))
    assert saved["regressor"]["steps"] == _script().QUICK["steps"]
    printed = capsys.readouterr().out
    assert f"Spearman {saved['comparison']['spearman']:.2f}" in printed


def test_a_missing_evaluation_is_an_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        _script().main(["--quick", "--out", str(tmp_path / "x.json"),
                        str(tmp_path / "none.json")])
    assert exit_.value.code == 2 and not (tmp_path / "x.json").exists()
    assert capsys.readouterr().err == (f"error: no evaluation JSON at {tmp_path / 'none.json'}; "
                                       "give the files experiments/evaluate_world_model.py "
                                       "wrote\n")


@pytest.mark.parametrize("content, message", [
    ("not json", "{path} is not an evaluation JSON with every class's area_ratio; give the "
                 "files experiments/evaluate_world_model.py wrote"),
    (json.dumps({"accuracy": 0.9}), "{path} is not an evaluation JSON with every class's "
                                    "area_ratio; give the files "
                                    "experiments/evaluate_world_model.py wrote"),
    (json.dumps({"classes": [{"class": 0, "area_ratio": 1.0}]}),
     f"{{path}} lacks the area ratio of {K - 1} of the {K} classes; give evaluations of all "
     "the world's classes"),
])
def test_a_file_that_is_not_an_evaluation_is_an_error_before_any_training(tmp_path, capsys,
                                                                          content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(SystemExit) as exit_:
        _script().main(["--out", str(tmp_path / "x.json"), str(path)])  # full size: no time
    assert exit_.value.code == 2 and not (tmp_path / "x.json").exists()
    assert capsys.readouterr() == ("", "error: " + message.format(path=path) + "\n")


def test_steps_below_one_is_an_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        _script().main(["--steps", "0", "--out", str(tmp_path / "x.json")])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == "error: --steps must be >= 1; got 0\n"


def test_the_seed_is_the_regressors(tmp_path):
    from jaxaware.train.extent import extent_regressor

    quick = _script().QUICK
    record = _script().main(["--quick", "--seed", "1", "--out", str(tmp_path / "s1.json")])
    assert record["seed"] == 1 and "comparison" not in record
    assert (tmp_path / "s1.png").read_bytes()[:4] == b"\x89PNG"  # the bar chart
    for seed, differs in ((1, False), (0, True)):
        apply, params, _ = extent_regressor(32, quick["steps"], per_class=quick["train_per_class"],
                                            seed=seed)
        rows = _script().reader_calibration(apply, params, quick["per_class"])
        slopes = [r["slope"] for r in rows]
        assert (slopes != pytest.approx([r["slope"] for r in record["classes"]])) == differs
