"""Every paper-reproduction script runs in its --quick mode on the shipped world model and
writes its figure and its JSON record (in-process: the scripts share compilations)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = {
    "ablation_fig3.py": ("ablation", {"summary", "sites"}),
    "response_fig4.py": ("response", {"fig4", "appendix", "paper"}),
    "overlap_fig5a.py": ("overlap", {"all_sites", "L0"}),
    "transfer_fig5b.py": ("transfer", {"cat/add"}),
    "shared_channels_tab1.py": ("shared", {"counts", "paper", "channels"}),
}


def _load(name):
    spec = importlib.util.spec_from_file_location(name[:-3], ROOT / "experiments" / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_quick_mode_writes_figure_and_record(script, tmp_path):
    name, keys = SCRIPTS[script]
    module = _load(script)
    assert isinstance(module.CONFIG, dict) and isinstance(module.QUICK, dict)
    record = module.main(["--quick", "--out-dir", str(tmp_path)])
    png, js = tmp_path / f"analysis_{name}.png", tmp_path / f"analysis_{name}.json"
    assert png.read_bytes()[:4] == b"\x89PNG"
    saved = json.loads(js.read_text())
    assert saved["quick"] is True and saved["experiment"] == name
    assert keys <= set(saved["results"]) and saved["config"] == record["config"]
