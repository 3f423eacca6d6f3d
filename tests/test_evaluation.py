"""Per-class synthesis evaluation (jaxaware.evaluation), its CLI and the FILE.py:NAME loader.

Known answers: a real set that is the generated set itself (through a folder of PNGs and
an extractor that sees the same uint8 values) gives precision = recall = 1 and a Frechet
distance of 0; correlations of known relations; the sliding window. Then the CLI round trip
on a converted random BigGAN with a user extractor and a real-image folder, the experiment
script's --quick mode, and bad input with its exact one-line messages.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest
from PIL import Image

from jaxaware.awareness import compute_awareness
from jaxaware.cli import main
from jaxaware.errors import JaxawareError
from jaxaware.evaluation import (
    FeatureExtractor,
    WorldImages,
    correlations,
    evaluate,
    figure_paths,
    is_world_model,
    sliding_mean,
    window_size,
    within_groups,
)
from jaxaware.generate import sample
from jaxaware.metrics import ms_ssim_diversity, total_awareness
from jaxaware.model import load
from jaxaware.toyworld import render
from jaxaware.user_functions import load_function

# An extractor that sees only uint8 values (the PNG round trip of generated images is then
# exact) pooled over 8x8 blocks: 4 x 4 x 3 = 48 features at 32 px.
EXTRACTOR_SOURCE = """
import numpy as np

def features(images):
    u = np.round((np.asarray(images, np.float64) + 1.0) * 127.5)
    b, h, w, c = u.shape
    return u.reshape(b, h // 8, 8, w // 8, 8, c).mean(axis=(2, 4)).reshape(b, -1)

def flat(images):
    return np.asarray(images).reshape(len(images), -1)[:, 0]

def with_nan(images):
    f = features(images)
    f[0, 0] = np.nan
    return f

not_a_function = 3
"""


def raises(message):
    return pytest.raises(JaxawareError, match="^" + re.escape(message) + "$")


@pytest.fixture(scope="module")
def model():
    return load()


@pytest.fixture(scope="module")
def extractor_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("extractor") / "feat.py"
    path.write_text(EXTRACTOR_SOURCE)
    return path


def _write_pngs(folder, images):
    os.makedirs(folder, exist_ok=True)
    for i, x in enumerate(images):
        u = np.round((np.asarray(x, np.float64) + 1.0) * 127.5).astype(np.uint8)
        Image.fromarray(u).save(os.path.join(folder, f"{i:03d}.png"))


def _leftovers(folder):
    return [f for f in os.listdir(folder) if f.startswith(".jaxaware-")]


# -- small pieces -------------------------------------------------------------------------


def test_window_size_and_sliding_mean():
    assert [window_size(n) for n in (1, 2, 3, 16, 64, 500, 1000)] == [1, 2, 3, 3, 3, 10, 20]
    v = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(sliding_mean(v, 1), v)
    np.testing.assert_allclose(sliding_mean(v, 3), [0.5, 1.0, 2.0, 3.0, 3.5])
    # even window: (w - 1) // 2 = 0 before, w // 2 = 1 after
    np.testing.assert_allclose(sliding_mean(v, 2), [0.5, 1.5, 2.5, 3.5, 4.0])
    np.testing.assert_allclose(sliding_mean(v, 20), np.full(5, 2.0))
    with raises("window must be a positive integer; got 0"):
        sliding_mean(v, 0)


def test_correlations_of_known_relations():
    x = np.linspace(0.0, 3.0, 12)
    c = correlations(x, {"up": np.exp(x), "down": -2 * x + 1, "flat": np.ones(12)})
    assert c["up"]["spearman"] == pytest.approx(1.0)  # monotone: ranks agree exactly
    assert 0.8 < c["up"]["pearson"] < 1.0  # but not linear
    assert c["down"]["pearson"] == pytest.approx(-1.0)
    assert c["down"]["spearman"] == pytest.approx(-1.0)
    assert c["flat"] == {"pearson": None, "pearson_p": None, "spearman": None,
                         "spearman_p": None}
    assert correlations(x[:2], {"m": x[:2]})["m"]["pearson"] is None  # 2 points: always +-1


def test_within_groups_removes_each_groups_offset():
    a = np.array([1.0, 2.0, 3.0, 11.0, 12.0, 13.0])
    m = np.array([1.0, 2.0, 4.0, -10.0, -9.0, -7.0])  # up within each group, down between
    g = [0.5, 0.5, 0.5, 1.0, 1.0, 1.0]
    assert correlations(a, {"m": m})["m"]["pearson"] < -0.9
    za, zm = within_groups(a, g), within_groups(m, g)
    np.testing.assert_allclose([za[:3].mean(), za[3:].mean()], 0, atol=1e-12)
    assert correlations(za, {"m": zm})["m"]["pearson"] > 0.98
    np.testing.assert_allclose(within_groups(m, g, rank=True), within_groups(a, g))


def test_points_shown_in_fig_10():
    from jaxaware.evaluation import top_bottom_indices

    a = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0, 0.0, 6.0, 4.0, 10.0, 4.5]
    assert top_bottom_indices(a) == [10, 2, 6, 4, 8, 7, 1, 5, 3, 9]  # 5 highest, then 5 lowest
    assert top_bottom_indices([2.0, 1.0, 3.0]) == [2, 0, 1]
    assert top_bottom_indices([1.0]) == [0]


def test_figure_paths():
    assert figure_paths("figs/e") == ("figs/e_top_bottom.png", "figs/e_metrics.png")
    assert figure_paths("e.png") == ("e_top_bottom.png", "e_metrics.png")
    with raises("--figure 'figs/' must be a file-name prefix such as figs/eval (it writes "
                "figs/eval_top_bottom.png and figs/eval_metrics.png)"):
        figure_paths("figs/")


# -- known answers ------------------------------------------------------------------------


def test_generated_images_as_their_own_real_set(model, extractor_file, tmp_path):
    """Real = the generated images (a folder of their PNGs): P = R = 1, FD = 0; MS-SSIM and
    total awareness are those of the metrics module on the same images and latents."""
    classes, n, seed, t = [0, 5], 6, 3, 1.0
    fakes = {}
    for c in classes:
        fakes[c], _ = sample(model, [c], t, seed, n, batch_size=n)
        _write_pngs(tmp_path / "real" / str(c), fakes[c])
    feats = load_function(f"{extractor_file}:features", "--features")
    ev = evaluate(model, classes, per_class=n, truncation=t, seed=seed, features=feats,
                  real=str(tmp_path / "real"), ms_ssim_images=5, awareness_latents=16,
                  samples_kept=2)
    totals = total_awareness(compute_awareness(model, classes, 16, t, seed))
    assert [p["class"] for p in ev.points] == classes
    for p, total in zip(ev.points, totals):
        assert p["precision"] == 1.0 and p["recall"] == 1.0
        assert p["frechet"] < 1e-9 * 255**2
        assert p["n_real"] == p["n_fake"] == n and p["n_ms_ssim"] == 5
        assert p["ms_ssim"] == pytest.approx(ms_ssim_diversity(fakes[p["class"]][:5]),
                                             abs=1e-6)
        assert p["total_awareness"] == pytest.approx(total, rel=1e-9)
        assert p["truncation"] == t and p["label"] == p["name"]
    assert sorted(ev.samples) == [0, 1]  # both shown in Fig. 10: the top and the bottom
    assert ev.samples[0].shape == (2, 32, 32, 3) and ev.samples[0].dtype == np.uint8
    s = ev.settings
    assert (s["feature_dim"], s["per_class"], s["seed"], s["real_seed"]) == (48, n, seed, None)
    assert s["real"] == f"image folder {tmp_path / 'real'}"
    assert "by_truncation" not in ev.correlations


def test_world_model_defaults_and_several_truncations(model):
    assert is_world_model(model)
    ev = evaluate(model, "cat,bus", per_class=6, truncation="0.5,1.0", awareness_latents=16,
                  ms_ssim_images=4, samples_kept=1)
    assert [p["label"] for p in ev.points] == ["cat @ 0.5", "bus @ 0.5", "cat @ 1", "bus @ 1"]
    assert ev.settings["extractor"] == "toy-world classifier features (128-d)"
    assert ev.settings["feature_dim"] == 128 and ev.settings["real_seed"] == 12000
    assert ev.settings["truncations"] == [0.5, 1.0]
    assert set(ev.correlations) == {"all", "by_truncation", "within_truncation"}
    assert ev.correlations["all"]["n"] == 4
    assert ev.correlations["by_truncation"]["1"]["precision"]["pearson"] is None  # 2 points
    doc = json.loads(ev.to_json())
    assert set(doc) == {"format", "settings", "points", "correlations", "paper_correlations"}
    assert set(doc["points"][0]) == {"class", "name", "truncation", "label", "precision",
                                     "recall", "ms_ssim", "frechet", "total_awareness",
                                     "n_real", "n_fake", "n_ms_ssim"}
    assert "| paper (BigGAN, 1000 ImageNet classes) | 1000 |" in ev.table()
    # the real images are world renders of seed 12000, class c at images c * n ...
    want, _ = render(np.full(6, 5), seed=12000, start=30, resolution=32)
    np.testing.assert_array_equal(WorldImages(32).images(5, 6), want)


# -- the command line ---------------------------------------------------------------------


def test_cli_on_a_converted_model_with_user_extractor_and_folder(extractor_file, tmp_path,
                                                                 capsys, one_torch_thread):
    from convert import biggan_pytorch_reference as R

    ckpt, weights = tmp_path / "ckpt", tmp_path / "w"
    R.save_checkpoint_dir(R.random_generator("tiny-32-hier", 0), "tiny-32-hier", ckpt)
    assert main(["convert", str(ckpt), str(weights)]) == 0
    real = tmp_path / "real"
    rng = np.random.default_rng(0)
    for c in range(3):  # odd sizes and modes: cropped, resized, converted to RGB
        os.makedirs(real / str(c))
        for i in range(5):
            pixels = rng.integers(0, 256, (40 + 8 * c, 48, 3), dtype=np.uint8)
            im = Image.fromarray(pixels)
            if i == 0:
                im.convert("L").save(real / str(c) / "a.jpg")
            else:
                im.convert("RGBA").save(real / str(c) / f"b{i}.png")
    (real / "notes.txt").write_text("ignored")
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["evaluate", str(weights), "--classes", "0,1,2", "--per-class", "5",
                 "--features", f"{extractor_file}:features", "--real", str(real),
                 "--out", str(out / "e.json"), "--figure", str(out / "f"),
                 "--awareness-latents", "16", "--ms-ssim-images", "4", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out / 'e.json'}" in printed and "| all classes" in printed
    assert sorted(os.listdir(out)) == ["e.json", "f_metrics.png", "f_top_bottom.png"]
    doc = json.loads((out / "e.json").read_text())
    assert [p["class"] for p in doc["points"]] == [0, 1, 2]
    assert [p["name"] for p in doc["points"]] == ["0", "1", "2"]  # a converted model: no names
    assert all(p["n_real"] == p["n_fake"] == 5 for p in doc["points"])
    s = doc["settings"]
    assert s["family"] == "biggan" and s["extractor"] == f"{extractor_file}:features"
    assert s["feature_dim"] == 48 and s["weights"] == str(weights)
    assert s["real"] == f"image folder {real}"
    for name in ("f_metrics.png", "f_top_bottom.png"):
        with Image.open(out / name) as im:
            assert im.format == "PNG" and im.size[0] > 500


def test_experiment_script_quick(tmp_path, capsys):
    import importlib.util

    path = os.path.join(os.path.dirname(__file__), "..", "experiments",
                        "evaluate_awareness_correlation.py")
    spec = importlib.util.spec_from_file_location("evaluate_awareness_correlation", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--quick", "--out-prefix", str(tmp_path / "q")]) == 0
    assert sorted(os.listdir(tmp_path)) == ["q.json", "q_metrics.png", "q_top_bottom.png"]
    doc = json.loads((tmp_path / "q.json").read_text())
    assert len(doc["points"]) == 8 and doc["settings"]["truncations"] == [0.5, 1.0]
    assert set(doc["awareness_seed_stability"]) == {"0.5", "1"}
    assert "within truncation" in capsys.readouterr().out


# -- bad input ----------------------------------------------------------------------------


def _cli_error(args, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    return err[len("error: "):-1]


def test_cli_bad_extractor_leaves_nothing_behind(extractor_file, tmp_path, capsys):
    out = tmp_path / "out"
    os.makedirs(out)
    base = ["evaluate", "--classes", "cat", "--per-class", "6", "--awareness-latents", "16",
            "--ms-ssim-images", "2", "--batch-size", "8", "--quiet",
            "--out", str(out / "e.json"), "--figure", str(out / "f")]
    assert _cli_error(base + ["--features", f"{extractor_file}:flat"], capsys) == (
        f"the feature extractor {extractor_file}:flat returned shape [8]; it must return "
        "float features [8, D] for images [8, 32, 32, 3]")
    assert _cli_error(base + ["--features", f"{extractor_file}:with_nan"], capsys) == (
        f"the feature extractor {extractor_file}:with_nan returned NaN or inf features for "
        "images [8, 32, 32, 3]; features must be finite")
    assert _cli_error(base + ["--features", f"{extractor_file}:nope"], capsys) == (
        f"--features: {extractor_file} has no 'nope'; it defines: features, flat, with_nan")
    assert _cli_error(base + ["--features", f"{extractor_file}:not_a_function"], capsys) == (
        f"--features: not_a_function in {extractor_file} is not callable (an int); give the "
        "name of a function")
    assert _cli_error(base + ["--truncation", "0.5,0.5"], capsys) == (
        "truncation 0.5 is given twice; give each truncation once")
    assert _cli_error(["evaluate", "--classes", "dog", "--out", str(out / "e.json")],
                      capsys) == ("unknown class name 'dog'; no close match; give a class "
                                  "index or a name from the model's classes")
    os.makedirs(out / "g_metrics.png")  # a figure path that cannot be written: checked first
    assert _cli_error(base[:-1] + [str(out / "g")], capsys).startswith(
        f"{out / 'g_metrics.png'} is a directory")
    assert sorted(os.listdir(out)) == ["g_metrics.png"] and not _leftovers(out)


def test_a_failing_figure_writes_no_json(model, tmp_path, monkeypatch, capsys):
    import jaxaware.evaluation as E

    def broken(ev):
        raise JaxawareError("figure failed")

    monkeypatch.setattr(E, "metrics_png", broken)
    out = tmp_path / "out"
    assert _cli_error(["evaluate", "--classes", "cat", "--per-class", "6",
                       "--awareness-latents", "16", "--ms-ssim-images", "2", "--quiet",
                       "--out", str(out / "e.json"), "--figure", str(out / "f")],
                      capsys) == "figure failed"
    assert not os.path.exists(out) or os.listdir(out) == []


def test_bad_input_messages(model, extractor_file, tmp_path):
    feats = load_function(f"{extractor_file}:features")
    with raises("per_class is 3; precision and recall with k=3 need at least 4 images per "
                "class"):
        evaluate(model, [0], per_class=3)
    real = tmp_path / "real"
    _write_pngs(real / "0", np.zeros((2, 32, 32, 3)))
    with raises(f"class 0 has 2 real images (image folder {real}); precision and recall with "
                "k=3 need at least 4 per class"):
        evaluate(model, [0], per_class=10, features=feats, real=str(real))
    with raises(f"real-image folder {real} has no folder for class 1 ({real / '1'}); the "
                "layout is DIR/<class index>/*.png|jpg, one folder per evaluated class"):
        evaluate(model, [0, 1], per_class=10, features=feats, real=str(real))
    with raises(f"real-image folder {tmp_path / 'none'} does not exist; give a folder with "
                "one subfolder of images per class, DIR/<class index>/*.png"):
        evaluate(model, [0], features=feats, real=str(tmp_path / "none"))
    with raises("unknown class name 'dog'; no close match; give a class index or a name from "
                "the model's classes"):
        evaluate(model, "dog")
    with raises("class index 16 is out of range; this model has classes 0..15"):
        evaluate(model, [16])
    with raises("truncation must be in (0, 1]; got 1.5"):
        evaluate(model, [0], truncation=[1.0, 1.5])
    bad = FeatureExtractor(lambda x: np.zeros((len(x), 4), np.int32), name="ints",
                           batch_size=4)
    with raises("the feature extractor ints returned dtype int32; it must return float "
                "features [4, D] for images [4, 32, 32, 3]"):
        bad(np.zeros((4, 32, 32, 3), np.float32))
    boom = FeatureExtractor(lambda x: 1 / 0, name="boom", batch_size=4)
    with raises("the feature extractor boom failed on images [4, 32, 32, 3] "
                "(ZeroDivisionError: division by zero)"):
        boom(np.zeros((4, 32, 32, 3), np.float32))


def test_non_world_model_needs_an_extractor_and_real_images():
    from helpers import SMALL_BIGGAN, random_model

    m = random_model(SMALL_BIGGAN)
    assert not is_world_model(m)
    with raises("this model (10 classes at 32 px) is not a toy-world model, so there are no "
                "default real images; give a folder (real=DIR; on the command line --real "
                "DIR, laid out DIR/<class index>/*.png)"):
        evaluate(m, [0])
    with raises("this model (10 classes at 32 px) is not a toy-world model, so there is no "
                "default feature extractor; give one (features=fn; on the command line "
                "--features FILE.py:NAME)"):
        evaluate(m, [0], real={0: np.zeros((4, 32, 32, 3))})


def test_load_function_errors(tmp_path):
    (tmp_path / "f.txt").write_text("def f(x): return x\n")
    (tmp_path / "broken.py").write_text("raise RuntimeError('no weights here')\n")
    (tmp_path / "ok.py").write_text("class A:\n    def f(self, x):\n        return x\na = A()\n")
    with raises("--features must be FILE.py:NAME, e.g. vgg16.py:features; got 'feat.py'"):
        load_function("feat.py", "--features")
    with raises(f"--features: {tmp_path / 'no.py'} does not exist; give FILE.py:NAME with an "
                "existing Python file"):
        load_function(f"{tmp_path / 'no.py'}:f", "--features")
    with raises(f"--features: {tmp_path / 'f.txt'} is not a .py file; give FILE.py:NAME with "
                "a Python source file"):
        load_function(f"{tmp_path / 'f.txt'}:f", "--features")
    with raises(f"--features: importing {tmp_path / 'broken.py'} failed (RuntimeError: no "
                "weights here)"):
        load_function(f"{tmp_path / 'broken.py'}:f", "--features")
    with raises("--features: '1x' is not a Python name; give FILE.py:NAME, e.g. "
                "vgg16.py:features (NAME may be dotted, e.g. model.features)"):
        load_function(f"{tmp_path / 'ok.py'}:1x", "--features")
    assert load_function(f"{tmp_path / 'ok.py'}:a.f")(7) == 7  # a dotted name: a method
    with raises(f"--features: a in {tmp_path / 'ok.py'} has no attribute 'g'"):
        load_function(f"{tmp_path / 'ok.py'}:a.g", "--features")
