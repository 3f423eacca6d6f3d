"""The world-model scripts' command lines: train_world_models.py's config overrides
(``--set``) that make a variant of a shipped training config, and their errors;
evaluate_world_model.py's ``--raw``. Training itself is tested in tests/test_train.py."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import pytest

from jaxaware.errors import JaxawareError

ROOT = Path(__file__).resolve().parent.parent


def _script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


script = _script("train_world_models")


def test_set_overrides_fields_with_their_types():
    base = script.CONFIGS["toyworld-biggan"]
    tc = script.override(base, ["mode_seeking=1", "d_ch=32", "augment=translation",
                                "d_coords=false"])
    assert (tc.mode_seeking, tc.d_ch, tc.augment, tc.d_coords) == (1.0, 32, "translation",
                                                                   False)
    assert isinstance(tc.mode_seeking, float) and tc.model == base.model
    assert script.override(base, []) == base


def test_set_overrides_generator_fields():
    base = script.CONFIGS["toyworld-biggan"]
    tc = script.override(base, ["model.channel_width=24", "d_ch=32", "model.eps=0.001"])
    assert tc.model == dataclasses.replace(base.model, channel_width=24, eps=1e-3)
    assert tc.d_ch == 32 and tc.steps == base.steps
    # the family config still checks the result: 30-wide latent chunks need z_dim % 4 == 0
    with pytest.raises(JaxawareError, match="^z_dim 121 does not split into 4 equal chunks"):
        script.override(base, ["model.z_dim=121"])


@pytest.mark.parametrize("item, message", [
    ("x=1", "--set takes FIELD=VALUE with FIELD one of "),
    ("d_ch", "--set takes FIELD=VALUE with FIELD one of "),
    ("model=1", "--set takes FIELD=VALUE with FIELD one of "),
    ("model.attention=16", "--set takes FIELD=VALUE with FIELD one of "),
    ("model.nope=1", "--set takes FIELD=VALUE with FIELD one of "),
    ("model.channel_width=wide", "--set model.channel_width takes an integer; got 'wide'"),
    ("d_ch=abc", "--set d_ch takes an integer; got 'abc'"),
    ("d_ch=1.5", "--set d_ch takes an integer; got '1.5'"),
    ("d_coords=1", "--set d_coords takes true or false; got '1'"),
    ("lr_g=true", "--set lr_g takes a number; got 'true'"),
    ("augment=3", "--set augment takes a string; got '3'"),
])
def test_set_errors(item, message):
    with pytest.raises(JaxawareError, match="^" + message.replace("(", r"\(")):
        script.override(script.CONFIGS["toyworld-biggan"], [item])


def test_bad_set_exits_2_before_training(tmp_path, capsys):
    out = tmp_path / "run"
    assert script.main(["toyworld-biggan", "--set", "d_ch=abc", "--out", str(out)]) == 2
    assert capsys.readouterr().err == "error: --set d_ch takes an integer; got 'abc'\n"
    assert not out.exists()


def test_raw_generator_needs_a_checkpoint(capsys):
    evaluate = _script("evaluate_world_model")
    assert evaluate.main(["toyworld-biggan", "--raw"]) == 2
    assert capsys.readouterr().err == ("error: --raw takes a training run directory: give "
                                       "--checkpoint too (a shipped model holds only the EMA "
                                       "generator)\n")


tries = _script("plot_world_model_tries")


def _evaluation(accuracies, area, centre=1.0, background=1.0, frechet=3.0):
    """An evaluation JSON as evaluate_world_model.py writes it (the fields the table reads)."""
    classes = [{"name": f"class{i}", "accuracy": a, "area_ratio": area[i],
                "centre_ratio": centre, "background_ratio": background}
               for i, a in enumerate(accuracies)]
    return {"accuracy": sum(accuracies) / len(accuracies), "frechet_over_floor": frechet,
            "classes": classes}


def test_tries_table_and_figure_read_the_evaluations(tmp_path):
    import json

    (tmp_path / "a.json").write_text(json.dumps(_evaluation([1.0, 0.9], [0.5, 1.2])))
    (tmp_path / "b.json").write_text(json.dumps(_evaluation([1.0, 0.96], [0.8, 0.69], 0.6)))
    entry = {"family": "biggan", "run": "r", "overrides": {}, "machine": "cpu",
             "cpu_minutes": None, "per_class": 200}
    (tmp_path / "tries.json").write_text(json.dumps(
        [dict(entry, file="a.json", step=1000), dict(entry, file="b.json", step=2500)]))
    rows = [tries.summarize(e, json.loads((tmp_path / e["file"]).read_text()))
            for e in json.loads((tmp_path / "tries.json").read_text())]
    assert (rows[0]["worst_class"], rows[0]["classes_below_95"], rows[0]["area_min"],
            rows[0]["area_below"]) == ("class1", 1, 0.5, 1)
    assert (rows[1]["area_min"], rows[1]["area_below"], rows[1]["centre_below"]) == (0.69, 1, 2)
    assert tries.main(["--dir", str(tmp_path)]) == 0
    assert (tmp_path / "tradeoff.png").stat().st_size > 0
    assert "| biggan | r | 2,500 | cpu |  | 200 | 98.0% | class1 96.0% | 3.0× | 0.69 (1) " \
        "| 0.60 (2) | 1.00 | — |" in tries.table(rows)
    rows[1]["verdicts"] = {"every_class_accuracy": "met", "overall_accuracy": "within noise",
                           "diversity_every_class": "missed"}
    assert tries.table(rows).splitlines()[-1].endswith("| 1.00 | met / noise / missed |")


def test_tries_without_a_manifest_is_an_error(tmp_path, capsys):
    assert tries.main(["--dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith(f"error: cannot read the tries in {tmp_path}: ")


def test_device_sweep_variants_are_valid_configs_of_the_training_script():
    """Each variant device_sweep.sh trains is a shipped config with valid --set overrides
    (so the sweep cannot rot into configs the CPU script does not have)."""
    import re
    import subprocess

    path = ROOT / "experiments" / "device_sweep.sh"
    assert subprocess.run(["bash", "-n", str(path)]).returncode == 0
    text = path.read_text()
    packs = dict(re.findall(r'^([A-Z][A-Z0-9]*)="([^"]*)"', text, re.M))
    variants = re.findall(r'^  "([^|"]+)\|([^|"]+)\|([^|"]*)\|(\d+)\|(\d+)(?:\|([^|"]+))?"$',
                          text, re.M)
    assert len(variants) == len(re.findall(r'^  "', text, re.M)) >= 2  # none left unread
    for name, model, sets, steps, resume, branch in variants:
        for var, value in packs.items():
            sets = sets.replace(f"${var}", value)
        assert "$" not in sets, name  # every shell variable it uses is one defined above
        items = re.findall(r"--set (\S+)", sets)
        tc = script.override(script.CONFIGS[model], items)
        assert tc != script.CONFIGS[model] and tc.d_pack in (1, 4, 8), name  # a variant
        assert int(steps) > 0 and (tc.d_pack > 1 or tc.extent), name
        assert int(resume) == 0 or int(resume) > int(steps), name
        if branch:  # a training checkpoint of this project's runs, branched from before its end
            assert re.fullmatch(r"runs/[\w.-]+/checkpoint", branch), name
            assert tc.mode_seeking_start < int(steps) or not tc.mode_seeking, name
            assert tc.extent_start < int(steps) or not tc.extent, name


def test_tries_trade_is_scipys_spearman_per_family(tmp_path):
    import json

    from scipy.stats import spearmanr

    acc = [0.90, 0.975, 0.98, 0.99, 0.995]
    area = [0.9, 0.7, 0.75, 0.5, 0.4]
    fid = [30.0, 12.0, 9.0, 10.0, 8.0]
    entry = {"run": "r", "overrides": {}, "machine": "cpu", "cpu_minutes": None,
             "per_class": 200}
    rows = [tries.summarize(dict(entry, family="biggan", file=f"{i}.json", step=i),
                            _evaluation([a, a], [v, 1.0], frechet=f))
            for i, (a, v, f) in enumerate(zip(acc, area, fid))]
    rows.append(tries.summarize(dict(entry, family="deep", file="d.json", step=1),
                                _evaluation([0.99], [0.3])))
    result = tries.trade(rows)
    # The row's accuracy is the mean of its two classes, the area min the smaller ratio.
    expected = spearmanr(acc, area)
    assert result["biggan"]["accuracy_vs_area_min"]["n"] == 5
    assert abs(result["biggan"]["accuracy_vs_area_min"]["spearman"]
               - expected.statistic) < 1e-12
    assert expected.statistic < -0.8
    # Only the four rows at >= 97% enter the Frechet correlation.
    sharp = spearmanr(fid[1:], area[1:])
    assert result["biggan"]["frechet_vs_area_min_at_97"]["n"] == 4
    assert abs(result["biggan"]["frechet_vs_area_min_at_97"]["spearman"]
               - sharp.statistic) < 1e-12
    assert result["deep"]["accuracy_vs_area_min"] == {"n": 1, "spearman": None, "p": None}

    evaluations = [_evaluation([a, a], [v, 1.0], frechet=f) for a, v, f in zip(acc, area, fid)]
    for i, ev in enumerate(evaluations):
        (tmp_path / f"{i}.json").write_text(json.dumps(ev))
    (tmp_path / "tries.json").write_text(json.dumps(
        [dict(entry, family="biggan", file=f"{i}.json", step=i) for i in range(5)]))
    assert tries.main(["--dir", str(tmp_path)]) == 0
    written = json.loads((tmp_path / "trade.json").read_text())
    assert written == json.loads(json.dumps({"biggan": result["biggan"]}))
    assert not (tmp_path / "trade.json.tmp").exists()
