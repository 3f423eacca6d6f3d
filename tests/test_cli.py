"""The ``jaxaware`` command, run in-process through ``jaxaware.cli.main``.

A tiny random reference model (SMALL_CONFIGS['tiny']: 6 blocks, 24 sites, 700 channels,
32x32 output, 10 classes without names) is saved as a real checkpoint and converted with
``jaxaware convert``; the other commands run on the result.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("pytorch_pretrained_biggan")
from PIL import Image  # noqa: E402

from convert.reference import SMALL_CONFIGS, random_biggan, save_checkpoint  # noqa: E402
from jaxaware.generate import sample, to_uint8  # noqa: E402
from jaxaware.model import Model, load  # noqa: E402
from jaxaware.classes import imagenet_class_aliases, resolve_classes  # noqa: E402
from jaxaware.cli import main  # noqa: E402
from jaxaware.models import BigGANDeepConfig  # noqa: E402
from jaxaware.errors import JaxawareError  # noqa: E402
from jaxaware.truncation import truncated_noise  # noqa: E402

TINY = SMALL_CONFIGS["tiny"]
CH = 8  # TINY's channel_width
# (site name, channels, resolution) for TINY, by hand from its layer list
# [(F,16,16), (T,16,8), (F,8,4), (T,4,4), (F,4,2), (T,2,1)]: bn0 has the block's input
# width ch * in, bn1..bn3 a quarter of it; bn2/bn3 come after the block's upsampling.
TINY_SITES = []
_res = 4
for _i, (_up, _cin) in enumerate([(0, 16), (1, 16), (0, 8), (1, 4), (0, 4), (1, 2)]):
    _c = CH * _cin
    _out = 2 * _res if _up else _res
    TINY_SITES += [
        (f"block{_i}.bn0", _c, _res), (f"block{_i}.bn1", _c // 4, _res),
        (f"block{_i}.bn2", _c // 4, _out), (f"block{_i}.bn3", _c // 4, _out),
    ]  # fmt: skip
    _res = _out
TOTAL = sum(c for _, c, _ in TINY_SITES)  # 700


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    """{'ckpt': reference checkpoint, 'weights': converted by the CLI, 'root': a folder}."""
    root = tmp_path_factory.mktemp("cli")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ref = random_biggan(TINY, seed=1)
        save_checkpoint(ref, TINY, root / "ckpt")
    finally:
        torch.set_num_threads(before)
    assert main(["convert", str(root / "ckpt"), str(root / "weights")]) == 0
    return {"ckpt": str(root / "ckpt"), "weights": str(root / "weights"), "root": root}


@pytest.fixture(scope="module")
def model(dirs):
    return load(dirs["weights"])


def run_error(capsys, argv):
    """Runs main(argv), expecting exit status 2; returns the one stderr line."""
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("error: ")
    return err[:-1]


# --------------------------------------------------------------------------------------------
# convert, sites
# --------------------------------------------------------------------------------------------


def test_convert_prints_and_writes(dirs, capsys, tmp_path):
    out = tmp_path / "w2"
    assert main(["convert", dirs["ckpt"], str(out)]) == 0
    assert capsys.readouterr().out == f"wrote {out}\n"
    assert sorted(os.listdir(out)) == ["config.json", "params.npz"]


def test_sites_table(dirs, capsys):
    assert main(["sites", dirs["weights"]]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("BigGAN-deep, 32x32: CCBN sites")
    assert lines[1].split() == ["site", "name", "channels", "resolution", "columns", "reference",
                                "module"]  # fmt: skip
    assert set(lines[2]) <= {"-", " "}
    rows = [line.split() for line in lines[3:-1]]
    assert len(rows) == 24
    offset = 0
    for k, (row, (name, channels, res)) in enumerate(zip(rows, TINY_SITES)):
        block = int(name[5])
        # attention sits before block 2 (generator.layers.2): later blocks shift by one.
        m = block if block < 2 else block + 1
        assert row == [
            f"L{k}", name, str(channels), f"{res}x{res}", f"{offset}:{offset + channels}",
            f"generator.layers.{m}.bn_{name[-1]}",
        ]  # fmt: skip
        offset += channels
    assert lines[-1] == f"24 sites, {TOTAL} channels" == "24 sites, 700 channels"


def test_sites_of_a_preset(capsys):
    assert main(["sites", "biggan-deep-256"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "48 sites, 24192 channels"
    assert lines[3].split()[:4] == ["L0", "block0.bn0", "2048", "4x4"]


# --------------------------------------------------------------------------------------------
# sample
# --------------------------------------------------------------------------------------------


def test_sample_writes_grid(dirs, model, capsys, tmp_path):
    out = tmp_path / "grid.png"
    argv = ["sample", dirs["weights"], "--classes", "1,3", "--per-class", "2",
            "--truncation", "0.5", "--seed", "4", "--out", str(out), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    assert capsys.readouterr().out == f"wrote {out}: 2 classes x 2 samples\n"
    grid = np.asarray(Image.open(out))
    # rows = classes, cols = samples per class, 32x32 tiles, 2-px white border and gaps:
    # 2 * (32 + 2) + 2 = 70 each way.
    assert grid.shape == (70, 70, 3) and grid.dtype == np.uint8
    for gap in (slice(0, 2), slice(34, 36), slice(68, 70)):
        assert (grid[gap] == 255).all() and (grid[:, gap] == 255).all()
    images, labels = sample(model, [1, 3], 0.5, seed=4, per_class=2)
    np.testing.assert_array_equal(labels, [1, 1, 3, 3])
    tiles = {(r, c): grid[2 + 34 * r : 34 + 34 * r, 2 + 34 * c : 34 + 34 * c] for r in (0, 1)
             for c in (0, 1)}  # fmt: skip
    for (r, c), tile in tiles.items():
        np.testing.assert_array_equal(tile, to_uint8(images[2 * r + c]))
    assert tiles[(0, 0)].std() > 5  # an image, not a flat tile
    assert np.abs(tiles[(0, 0)].astype(int) - tiles[(1, 0)]).max() > 10  # classes differ
    assert np.abs(tiles[(0, 0)].astype(int) - tiles[(0, 1)]).max() > 10  # latents differ


# --------------------------------------------------------------------------------------------
# awareness
# --------------------------------------------------------------------------------------------


def test_awareness_file(dirs, model, capsys, tmp_path):
    out = tmp_path / "aw.npz"
    argv = ["awareness", dirs["weights"], "--classes", "0,2,5", "--num-latents", "7",
            "--truncation", "0.5", "--seed", "3", "--out", str(out), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    assert capsys.readouterr().out == (
        f"wrote {out}: 3 classes x 700 channels (24 sites), N=7, truncation=0.5\n"
    )
    assert os.listdir(tmp_path) == ["aw.npz"]
    with np.load(out, allow_pickle=False) as f:
        d = {k: f[k] for k in f.files}
    assert set(d) >= {"category", "latent", "flip_fraction", "site_names", "site_offsets",
                      "classes", "num_latents", "truncation", "seed", "model_id"}  # fmt: skip
    for key in ("category", "latent", "flip_fraction"):
        assert d[key].shape == (3, TOTAL), key
    np.testing.assert_array_equal(d["classes"], [0, 2, 5])
    assert list(d["site_names"]) == [name for name, _, _ in TINY_SITES]
    widths = np.array([c for _, c, _ in TINY_SITES])
    ends = np.cumsum(widths)
    np.testing.assert_array_equal(d["site_offsets"], np.stack([ends - widths, ends], axis=1))
    assert (int(d["num_latents"]), float(d["truncation"]), int(d["seed"])) == (7, 0.5, 3)
    assert str(d["model_id"]) == "ckpt"

    # Independently, in float64 NumPy: z = 0.5 * truncnorm (seed 3), c = [z, E[k]],
    # gamma = 1 + c @ S, beta = c @ O, t = -beta / gamma over the 7 latents.
    z = truncated_noise(7, TINY.z_dim, 0.5, seed=3).astype(np.float64)
    p = model.params
    bns = [p[f"block{n[5]}"][f"bn{n[-1]}"] for n, _, _ in TINY_SITES]
    scale = np.concatenate([bn["scale"] for bn in bns], axis=1).astype(np.float64)
    offset = np.concatenate([bn["offset"] for bn in bns], axis=1).astype(np.float64)
    for row, k in enumerate([0, 2, 5]):
        c = np.concatenate([z, np.repeat(p["embedding"][k][None], 7, 0)], axis=1)
        gamma, beta = 1 + c @ scale, c @ offset
        t = -beta / gamma
        flips = d["flip_fraction"][row]  # float32 count / 7
        np.testing.assert_array_equal(np.rint(flips * 7), (gamma <= 0).sum(0))
        np.testing.assert_allclose(flips, (gamma <= 0).mean(0), rtol=1e-6)
        ok = np.abs(gamma).min(0) > 0.05  # away from gamma = 0, where t is ill-conditioned
        assert ok.mean() > 0.5
        np.testing.assert_allclose(d["category"][row][ok], -t.mean(0)[ok], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(d["latent"][row][ok], t.var(0)[ok], rtol=1e-3, atol=1e-6)
    assert 0 < d["flip_fraction"].mean() < 0.5  # the reference model has some gamma <= 0


def test_class_names_pass_through(dirs, model, capsys, tmp_path):
    """A model with 1000 classes gets the ImageNet names; the CLI resolves them."""
    cfg = BigGANDeepConfig.from_reference_dict({**model.config.to_reference_dict(),
                                            "num_classes": 1000})  # fmt: skip
    params = dict(model.params)
    params["embedding"] = np.random.RandomState(0).randn(1000, TINY.z_dim).astype(np.float32)
    folder = tmp_path / "imagenet"
    Model(cfg, {"params": params, "stats": model.variables["stats"]}, "big").save(
        str(folder)
    )
    out = tmp_path / "aw.npz"
    argv = ["awareness", str(folder), "--classes", 'golden retriever,tench,7',
            "--num-latents", "7", "--out", str(out), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    with np.load(out) as f:
        np.testing.assert_array_equal(f["classes"], [207, 0, 7])
    # A misspelt name: the library's message, closest names included, as one error line.
    bad = tmp_path / "bad.npz"
    err = run_error(capsys, ["awareness", str(folder), "--classes", "golden retrievr",
                             "--out", str(bad), "--quiet"])  # fmt: skip
    with pytest.raises(JaxawareError) as e:
        resolve_classes("golden retrievr", imagenet_class_aliases(), 1000)
    assert err == f"error: {e.value}"
    assert err.startswith("error: unknown class name 'golden retrievr'; closest: golden retriever")
    assert not bad.exists()


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------


def test_unknown_class_name(dirs, model, capsys, tmp_path):
    names = ("apple", "banana", "cherry", "date", "elderberry", "fig", "grape", "honeydew",
             "kiwi", "lemon")  # fmt: skip
    named = tmp_path / "named"
    dataclasses.replace(model, class_names=names).save(str(named))
    outdir = tmp_path / "out"
    outdir.mkdir()
    png = outdir / "s.png"
    err = run_error(capsys, ["sample", str(named), "--classes", "2,banan", "--out", str(png)])
    assert err == "error: unknown class name 'banan'; closest: banana"
    # Unnamed model: names are refused with the accepted indices.
    err = run_error(capsys, ["sample", dirs["weights"], "--classes", "banana", "--out", str(png)])
    assert err == (
        "error: class name 'banana' given but this model has no class names; give class "
        "indices 0..9"
    )
    assert os.listdir(outdir) == []


def test_class_out_of_range(dirs, capsys, tmp_path):
    for cmd, ext in (("sample", "png"), ("awareness", "npz")):
        out = tmp_path / f"x.{ext}"
        err = run_error(capsys, [cmd, dirs["weights"], "--classes", "3,12", "--out", str(out)])
        assert err == "error: class index 12 is out of range; this model has classes 0..9"
    assert os.listdir(tmp_path) == []


def test_bad_weights_directory(dirs, capsys, tmp_path):
    missing = tmp_path / "nowhere"
    out = tmp_path / "x.png"
    err = run_error(capsys, ["sample", str(missing), "--out", str(out)])
    assert err == (
        f"error: weights directory {missing} does not exist; a jaxaware weights directory "
        "holds config.json and params.npz"
    )
    # A torch checkpoint is not a weights directory (it has config.json but no params.npz).
    err = run_error(capsys, ["awareness", dirs["ckpt"], "--out", str(tmp_path / "a.npz")])
    assert err == (
        f"error: {dirs['ckpt']} has no params.npz; a jaxaware weights directory holds "
        "config.json and params.npz"
    )
    err = run_error(capsys, ["sites", str(missing)])
    assert err.startswith(f"error: weights directory {missing} does not exist")
    err = run_error(capsys, ["convert", str(missing), str(tmp_path / "w")])
    assert err == (
        f"error: {str(missing)!r} is neither a checkpoint directory nor a known model name; "
        "give a directory with pytorch_model.bin + config.json (BigGAN-deep) or G_ema.pth / "
        "G.pth (BigGAN), or one of: biggan-deep-128, biggan-deep-256, biggan-deep-512"
    )
    assert os.listdir(tmp_path) == []


def test_bad_option_values_exit_2(dirs, capsys, tmp_path):
    # argparse rejects these before the command runs: one line, no usage dump.
    for option, value, message in [
        ("--truncation", "1.5", "truncation must be in (0, 1]; got '1.5'"),
        ("--per-class", "0", "expected a positive integer; got '0'"),
    ]:
        with pytest.raises(SystemExit) as e:
            main(["sample", dirs["weights"], option, value, "--out", str(tmp_path / "x.png")])
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert err == (
            f"error: jaxaware sample: argument {option}: {message} "
            "(see jaxaware sample --help)\n"
        )
    assert os.listdir(tmp_path) == []


def test_awareness_figure(dirs, capsys, tmp_path):
    from PIL import Image

    out, fig = tmp_path / "aw.npz", tmp_path / "aw.png"
    argv = ["awareness", dirs["weights"], "--num-latents", "20", "--out", str(out),
            "--figure", str(fig), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"wrote {fig}"
    with Image.open(fig) as im:
        assert im.format == "PNG" and im.size[0] > 800 and im.size[1] > 400
        # Not a blank canvas: the heatmap and bars put many distinct colours on it.
        assert len(im.convert("RGB").getcolors(maxcolors=1 << 16) or range(1 << 16)) > 50
    assert sorted(os.listdir(tmp_path)) == ["aw.npz", "aw.png"]  # no temp files left
