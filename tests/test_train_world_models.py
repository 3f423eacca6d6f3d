"""The world-model scripts' command lines: train_world_models.py's config overrides
(``--set``) that make a variant of a shipped training config, and their errors;
evaluate_world_model.py's ``--raw``. Training itself is tested in tests/test_train.py."""

from __future__ import annotations

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


@pytest.mark.parametrize("item, message", [
    ("x=1", "--set takes FIELD=VALUE with FIELD one of "),
    ("d_ch", "--set takes FIELD=VALUE with FIELD one of "),
    ("model=1", "--set takes FIELD=VALUE with FIELD one of "),
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
