"""``jaxaware edit / hybridize / segment`` on the shipped toy-world model, the experiments'
``--quick`` runs, and one-line errors with exit status 2.

Everything runs in this process with the same shapes (2 latents per class for edits, 16 per
hybrid call, 2 images x 1024 pixels for K-Means), so the commands and the experiments share
their compiled programs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from PIL import Image

from jaxaware.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run_experiment(name: str, argv: list[str]) -> int:
    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(argv)


def read(path: Path) -> dict:
    with Image.open(path) as im:
        assert im.size[0] > 200  # a real figure
    return json.loads(path.with_suffix(".json").read_text())


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("applications")


def test_edit(out, capsys):
    path = out / "edit.png"
    assert main(["edit", "--classes", "cat,bunny", "--per-class", "2", "--num-channels", "1",
                 "--strengths", "4", "--out", str(path), "--quiet"]) == 0
    data = read(path)
    assert data["strengths"] == [-4.0, 0.0, 4.0]
    assert [r["class_name"] for r in data["results"]] == ["cat", "bunny"]
    groups = [c["group"] for c in data["results"][0]["channels"]]
    assert groups == ["category", "latent"]
    summary = data["summary"]["add"]
    assert set(summary) == {"category", "latent"}
    assert 0 < summary["category"]["both"]["magnitude"]
    assert 0 <= summary["category"]["both"]["p_class"] <= 1  # the world's classifier scored
    assert "wrote" in capsys.readouterr().out


def test_hybridize(out):
    path = out / "hybrid.png"
    assert main(["hybridize", "cat", "car", "--k", "8,all", "--per-class", "2",
                 "--out", str(path), "--quiet"]) == 0
    data = read(path)
    assert data["sites"] == ["block0.out"] and data["style_from"] == 1  # 3 blocks
    assert len(data["channels"]["8"]["block0.out"]) == 8
    s = data["scores"]
    # k = all at a block output is the reference synthesis itself
    assert s["channel_kall"]["p_reference"] == pytest.approx(s["reference"]["p_reference"],
                                                             abs=1e-4)


def test_segment(out):
    path = out / "segment.png"
    assert main(["segment", "--classes", "cat,bus", "--per-class", "1", "--k", "3",
                 "--layers", "all", "--out", str(path), "--quiet"]) == 0
    data = read(path)
    assert data["ks"] == [3] and data["layers"] == ["all"] and data["cluster_resolution"] == 32
    assert {(r["layers"], r["weighting"], r["k"]) for r in data["seconds"]} == {
        ("all", "none", 3), ("all", "awareness", 3)}


@pytest.mark.parametrize("name", ["edit_channels", "hybridize_classes", "segment_clusters"])
def test_experiment_quick(name, out, capsys):
    folder = out / name
    assert run_experiment(name, ["--quick", "--out-dir", str(folder)]) == 0
    short = {"edit_channels": "edit", "hybridize_classes": "hybridize",
             "segment_clusters": "segment"}[name]
    assert read(folder / f"applications_{short}.png")["command"].endswith("--quick --out-dir "
                                                                         + str(folder))
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["edit", "--strengths", "1,nan"], "strengths must be finite numbers; got nan"),
    (["edit", "--strengths", "1,x"],
     "--strengths must be numbers separated by commas, e.g. 2,4,8; got '1,x'"),
    (["edit", "--strengths=-2"], "--strengths are magnitudes, applied in both directions: "
     "give positive numbers; got '-2'"),
    (["edit", "--channels", "block2.bn1:99"],
     "channel of block2.bn1 must be an integer in 0..63; got 99"),
    (["edit", "--classes", "dragon"], None),
    (["hybridize", "cat", "car", "--k", "65"],
     "k at block0.out must be an integer in 0..64; got 65"),
    (["hybridize", "cat", "car", "--classes", "bus"],
     "hybridize takes its two classes as INPUT_CLASS REFERENCE_CLASS, not --classes"),
    (["hybridize", "cat", "car", "--style-from", "7"],
     "style-mixing block must be an integer in 0..3; got 7"),
    (["segment", "--k", "1"],
     "k-means k must be an integer in 2..1024 (the pixels of an image); got 1"),
    (["segment", "--weighting", "softmax"], "unknown weighting 'softmax'; use none or awareness"),
    (["segment", "--layers", "block9.bn0"], None),
])
def test_bad_input(argv, message, out, capsys):
    path = out / "bad" / "x.png"
    assert main(argv + ["--out", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    if message is not None:
        assert err == f"error: {message}\n"
    else:
        assert "unknown" in err or "closest" in err
    assert not path.exists() and not path.with_suffix(".json").exists()
