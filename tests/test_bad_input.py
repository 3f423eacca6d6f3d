"""The bad-input battery (issue 8): every bad input to the CLI ends in one line
``error: ...`` on stderr and exit status 2, every bad input to a public Python function
raises :class:`JaxawareError` with its one-line message, and in both cases no file is
created, changed or left behind.

Table-driven: each case is an argv (or a call) and the exact message. CLI cases run
in-process through ``jaxaware.cli.main`` on the shipped default model or on a tiny random
model saved to a temporary weights directory; nothing here compiles a generator except the
one correct-result case at the end.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from helpers import SMALL, SMALL_BIGGAN, random_model, raises
from jaxaware import (
    Awareness,
    BigGANConfig,
    BigGANDeepConfig,
    Capture,
    ChannelEdit,
    compute_awareness,
    generate,
    interventions,
    probes,
    sample,
    truncated_noise,
)
from jaxaware.checks import SEED_MAX, format_bytes, memory_limit
from jaxaware.awareness import awareness_bytes
from jaxaware.cli import grid_bytes, main
from jaxaware.generate import sample_bytes
from jaxaware.model import DEFAULT_MODEL, Model, init_random, load
from jaxaware.sites import site_offsets, site_table
from jaxaware.weights_io import save_weights

HUGE = 10**20
SEEDS = f"seed must be an integer in 0..{SEED_MAX}"


def memory(what: str, nbytes: int) -> str:
    return (f"{what} would need {format_bytes(nbytes)} of memory, more than this machine's "
            f"{format_bytes(memory_limit())}; ask for less")


# --------------------------------------------------------------------------------------------
# Snapshots: nothing created, changed or left behind
# --------------------------------------------------------------------------------------------


def snapshot(*roots) -> dict:
    """Every entry under ``roots``: kind, size and mtime (directories too: creating and
    removing a temporary file in one changes its mtime)."""
    seen = {}
    for root in roots:
        root = os.fspath(root)
        for folder, dirs, files in os.walk(root):
            for name in [""] + dirs + files:
                path = os.path.join(folder, name) if name else folder
                st = os.lstat(path)
                seen[path] = (st.st_mode, st.st_size if not name or name in files else 0,
                              st.st_mtime_ns)
    return seen


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def default_config():
    return load().config


@pytest.fixture(scope="module")
def small():
    return random_model(SMALL)


@pytest.fixture(scope="module")
def weights(tmp_path_factory, small):
    """A tiny BigGAN-deep weights directory and broken copies of it."""
    root = tmp_path_factory.mktemp("weights")
    good = root / "W"
    small.save(good)

    def copy(name, edit=None):
        path = root / name
        shutil.copytree(good, path)
        if edit is not None:
            meta = json.loads((path / "config.json").read_text())
            edit(meta)
            (path / "config.json").write_text(json.dumps(meta))
        return path

    def set_config(key, value, keep_digest=True):
        def edit(meta):
            meta["config"][key] = value
            if not keep_digest:
                del meta["config_sha256"]  # as written before the field existed
        return edit

    edited = copy("edited", set_config("num_classes", 20))
    z_dim_str = copy("z_dim_str", set_config("z_dim", "abc", keep_digest=False))
    eps_nan = copy("eps_nan", set_config("eps", float("nan"), keep_digest=False))

    huge = copy("huge")  # a member whose .npy header declares 1e11 floats
    npz = huge / "params.npz"
    with zipfile.ZipFile(npz, "a") as zf:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header, {"descr": "<f4", "fortran_order": False, "shape": (10**11,)})
        zf.writestr("huge.npy", header.getvalue() + bytes(64))
    meta = json.loads((huge / "config.json").read_text())
    meta["params_sha256"] = hashlib.sha256(npz.read_bytes()).hexdigest()
    (huge / "config.json").write_text(json.dumps(meta))

    variables = {"params": dict(small.variables["params"]), "stats": small.variables["stats"]}
    del variables["params"]["embedding"]
    missing = root / "missing"
    save_weights(missing, variables, SMALL.to_dict(), "missing", family="biggan-deep")
    return {"root": root, "W": good, "edited": edited, "z_dim_str": z_dim_str,
            "eps_nan": eps_nan, "huge": huge, "missing": missing}


@pytest.fixture
def place(tmp_path, monkeypatch):
    """A clean working directory holding a file ``afile`` and an empty directory ``adir``."""
    (tmp_path / "afile").write_text("keep me")
    (tmp_path / "adir").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def unwritable_folder(tmp_path) -> str:
    """A folder this process cannot write in: a 0555 directory, or for root (whom
    permissions do not stop) a read-only place such as /proc/sys."""
    if os.geteuid() != 0:
        folder = tmp_path / "readonly"
        folder.mkdir()
        folder.chmod(0o555)
        return str(folder)
    for folder in ("/proc/sys",):
        if os.path.isdir(folder) and not os.access(folder, os.W_OK):
            return folder
    pytest.skip("no folder is unwritable for this user")


# --------------------------------------------------------------------------------------------
# The CLI
# --------------------------------------------------------------------------------------------


def argparse_error(command, option, message):
    return f"jaxaware {command}: argument {option}: {message} (see jaxaware {command} --help)"


LONG = "n" * 300 + ".png"

# (id, argv, message). {W}, {edited}, ... are the weights directories of the fixture; other
# paths are relative to the working directory (``place``). A message may be a function of
# the default model's config, for the memory sizes.
CLI_CASES = [
    # seeds: NumPy's RandomState takes 0..2**32 - 1
    ("seed-negative", ["sample", "--seed", "-1"],
     argparse_error("sample", "--seed", f"{SEEDS}; got -1")),
    ("seed-too-big", ["sample", "--seed", "4294967296"],
     argparse_error("sample", "--seed", f"{SEEDS}; got 4294967296")),
    ("seed-text", ["awareness", "--seed", "abc"],
     argparse_error("awareness", "--seed", f"{SEEDS}; got 'abc'")),
    ("seed-standing-stats", ["standing-stats", "{W}", "--truncation", "0.5", "--seed", "-3"],
     argparse_error("standing-stats", "--seed", f"{SEEDS}; got -3")),
    # sizes that cannot fit, refused before allocating
    ("per-class-huge", ["sample", "--per-class", str(HUGE)],
     lambda c: memory(f"a grid of 1 x {HUGE} images of {c.resolution}x{c.resolution} at zoom 1",
                      grid_bytes(c, HUGE, 1))),
    ("zoom-huge", ["sample", "--zoom", "100000"],
     lambda c: memory(f"a grid of 1 x 4 images of {c.resolution}x{c.resolution} at zoom "
                      "100000", grid_bytes(c, 4, 100000))),
    ("num-latents-float", ["awareness", "--num-latents", "1e20"],
     argparse_error("awareness", "--num-latents", "expected a positive integer; got '1e20'")),
    ("num-latents-huge", ["awareness", "--num-latents", str(HUGE)],
     lambda c: memory(f"awareness of {c.num_classes} classes x "
                      f"{site_offsets(c)[-1, 1]} channels over {HUGE} latents",
                      awareness_bytes(c, HUGE, c.num_classes, 100))),
    # outputs that would overwrite an input or each other
    ("out-is-figure", ["awareness", "--out", "same.npz", "--figure", "same.npz"],
     "--out and --figure are the same file same.npz; give each output its own path"),
    ("out-is-figure-spelt-differently", ["awareness", "--out", "same.npz", "--figure",
                                         "./adir/../same.npz"],
     "--out and --figure are the same file ./adir/../same.npz; give each output its own path"),
    ("out-is-params", ["sample", "{W}", "--out", "{W}/params.npz"],
     "{W}/params.npz is inside the weights directory {W}, which this command reads; write "
     "outputs elsewhere"),
    ("out-inside-weights", ["awareness", "{W}", "--out", "{W}/sub/aw.npz"],
     "{W}/sub/aw.npz is inside the weights directory {W}, which this command reads; write "
     "outputs elsewhere"),
    ("figure-inside-weights", ["awareness", "{W}", "--figure", "{W}/config.json"],
     "{W}/config.json is inside the weights directory {W}, which this command reads; write "
     "outputs elsewhere"),
    ("out-inside-default-model", ["sample", "--out", DEFAULT_MODEL + "/x.png"],
     f"{DEFAULT_MODEL}/x.png is inside the weights directory {DEFAULT_MODEL}, which this "
     "command reads; write outputs elsewhere"),
    # output paths that cannot be written, checked before any work
    ("out-directory", ["sample", "--out", "adir"],
     "adir is a directory; refusing to replace it; choose a regular file path"),
    ("figure-directory", ["awareness", "--out", "a.npz", "--figure", "adir"],
     "adir is a directory; refusing to replace it; choose a regular file path"),
    ("out-empty", ["sample", "--out", ""], "the output path is empty; give a file path"),
    ("out-new-dir-slash", ["awareness", "--out", "newdir/"],
     "newdir/ ends in '/', so it names a directory; give a file path"),
    ("figure-new-dir-slash", ["awareness", "--out", "a.npz", "--figure", "newdir/"],
     "newdir/ ends in '/', so it names a directory; give a file path"),
    ("out-under-file", ["sample", "--out", "afile/x.png"],
     "cannot create folder {tmp}/afile for afile/x.png (a file is in the way); choose a path "
     "in a folder you can write to"),
    ("out-deep-under-file", ["awareness", "--out", "afile/a/b/x.npz"],
     "cannot create folder {tmp}/afile/a/b for afile/a/b/x.npz (a file is in the way); "
     "choose a path in a folder you can write to"),
    ("out-name-too-long", ["sample", "--out", LONG],
     f"{LONG}: the name is 304 bytes long and this file system allows at most 255; choose a "
     "shorter name"),
    ("out-device", ["sample", "--out", "/dev/null"],
     "/dev/null is a character device; refusing to replace it; choose a regular file path"),
    ("standing-stats-out-file", ["standing-stats", "{W}", "--truncation", "0.5", "--out",
                                 "afile"],
     "afile exists and is not a jaxaware weights directory; refusing to overwrite it; remove "
     "it or choose another path"),
    ("standing-stats-out-inside", ["standing-stats", "{W}", "--truncation", "0.5", "--out",
                                   "{W}/new"],
     "{W}/new is inside the weights directory {W}, which this command reads; write outputs "
     "elsewhere"),
    ("standing-stats-no-truncation", ["standing-stats", "{W}", "--truncation", ","],
     "--truncation ',' names no truncation; give one or more numbers in (0, 1], e.g. 0.5 or "
     "0.25,0.5,1.0"),
    ("convert-out-file", ["convert", "nowhere", "afile"],
     "afile exists and is not a jaxaware weights directory; refusing to overwrite it; remove "
     "it or choose another path"),
    ("convert-out-foreign-dir", ["convert", "nowhere", "{tmp}"],
     "{tmp} exists and is not a jaxaware weights directory; refusing to overwrite it; remove "
     "it or choose another path"),
    # weights directories that would give a silently wrong result or a traceback
    ("config-edited", ["awareness", "{edited}", "--classes", "9,15,19"],
     "{edited}/config.json was edited after it was written: its model_id, family and config "
     "do not match its config_sha256; restore it or re-create the weights directory"),
    ("config-z-dim-text", ["sample", "{z_dim_str}"],
     "{z_dim_str}/config.json: config z_dim must be an integer >= 1; got 'abc'"),
    ("config-eps-nan", ["sample", "{eps_nan}"],
     "{eps_nan}/config.json: config eps must be a number in (0, 1); got nan"),
    ("npy-header-huge", ["sites", "{huge}"],
     "{huge}/params.npz cannot be read as a NumPy .npz archive (member 'huge' declares shape "
     "[100000000000] of float32, 372.5 GiB, but holds 64 bytes); re-create it"),
    ("parameter-missing", ["awareness", "{missing}"],
     "{missing} lacks parameter params/embedding of shape [10, 16]; it does not match its "
     "BigGAN-deep config"),
    # classes and truncation
    ("class-out-of-range", ["sample", "{W}", "--classes", "3,12"],
     "class index 12 is out of range; this model has classes 0..9"),
    ("classes-empty", ["awareness", "--classes", ""],
     "no classes given; give class indices (e.g. 207), class names (e.g. \"golden "
     "retriever\"), a comma-separated mix of both, or 'all'"),
    ("truncation-nan", ["sample", "--truncation", "nan"],
     argparse_error("sample", "--truncation", "truncation must be in (0, 1]; got 'nan'")),
    ("no-command", [], "jaxaware: the following arguments are required: command "
                       "(see jaxaware --help)"),
    ("weights-empty", ["sample", ""],
     "the weights path is empty or not a path (''); give a weights directory or a shipped "
     "model's name (toyworld-biggan, toyworld-biggan-deep)"),
    ("convert-out-empty", ["convert", "nowhere", ""],
     "the output path is empty; give a directory path"),
]


def fill(template: str, paths: dict) -> str:
    for key, value in paths.items():
        template = template.replace("{" + key + "}", str(value))
    return template


def run_cli(capsys, argv):
    """``main(argv)`` in-process: ``(status, stdout, stderr)``; argparse errors exit."""
    try:
        status = main(argv)
    except SystemExit as e:
        status = e.code
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(capsys, argv, message, roots):
    before = snapshot(*roots)
    status, out, err = run_cli(capsys, argv)
    assert (status, out, err) == (2, "", f"error: {message}\n")
    assert snapshot(*roots) == before


@pytest.mark.parametrize("argv, message", [c[1:] for c in CLI_CASES],
                         ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input(argv, message, place, weights, default_config, capsys):
    paths = {"tmp": place, **weights}
    if callable(message):
        message = message(default_config)
    argv = [fill(a, paths) for a in argv]
    if argv and argv[0] in ("sample", "awareness", "standing-stats"):
        argv.append("--quiet")
    assert_one_line_error(capsys, argv, fill(message, paths),
                          [place, weights["root"], DEFAULT_MODEL])


def test_cli_in_a_real_process(place):
    """The installed entry point, not just main(): one stderr line, status 2, no file."""
    before = snapshot(place)
    result = subprocess.run([sys.executable, "-m", "jaxaware.cli", "awareness", "--out", "a.npz",
                             "--figure", "adir", "--quiet"], capture_output=True, text=True,
                            timeout=300)
    assert (result.returncode, result.stdout, result.stderr) == (
        2, "", "error: adir is a directory; refusing to replace it; choose a regular file path\n")
    assert snapshot(place) == before


def test_cli_unwritable_folder(place, weights, capsys):
    folder = unwritable_folder(place)
    for argv, path in ((["sample", "--out", f"{folder}/x.png"], f"{folder}/x.png"),
                       (["awareness", "--figure", f"{folder}/x.png"], f"{folder}/x.png")):
        assert_one_line_error(
            capsys, argv + ["--quiet"],
            f"cannot write a temporary file in {folder} for {path} (Permission denied); "
            "choose a path in a folder you can write to", [place, DEFAULT_MODEL])
    assert_one_line_error(
        capsys, ["sample", "--out", f"{folder}/new/x.png", "--quiet"],
        f"cannot create folder {folder}/new for {folder}/new/x.png (Permission denied); "
        "choose a path in a folder you can write to", [place, DEFAULT_MODEL])


# --------------------------------------------------------------------------------------------
# The Python API
# --------------------------------------------------------------------------------------------


def edit_of(shape):
    return ChannelEdit.identity(64).replace(scale=np.ones(shape, np.float32))


Z2 = np.zeros((2, 16), np.float32)
PARAMS_MISSING = ("model lacks parameter params/attention/g/kernel of shape [32, 16]; it does "
                  "not match its BigGAN-deep config")

# (id, call(model), message); ``model`` is the tiny random BigGAN-deep (10 classes, no
# names, z_dim 16).
API_CASES = [
    ("generate-string-latents", lambda m: generate(m, [["a"] * 16] * 2, [0, 1], 1.0),
     "latents must be real numbers; got dtype <U1"),
    ("generate-empty-latents", lambda m: generate(m, [], [0, 1], 1.0),
     "latents must have shape [2, 16]; got [0]"),
    ("generate-no-latents-no-classes", lambda m: generate(m, np.zeros((0, 16)), [], 1.0),
     "latents and classes are empty (shape [0, 16]); give at least one latent and one class"),
    ("generate-nan-latent", lambda m: generate(m, np.full((2, 16), np.nan), [0, 1], 1.0),
     "latents contain NaN or infinity; give finite values"),
    ("generate-capture-string", lambda m: generate(m, Z2, [0, 1], 1.0, capture="all"),
     "capture must be a Capture, e.g. Capture(features=True); got 'all'"),
    ("generate-2d-scale", lambda m: generate(m, Z2, [0, 1], 1.0,
                                             interventions={"block0.bn0": edit_of((2, 64))}),
     "intervention at block0.bn0: scale must be one value per channel [C]; got shape [2, 64]"),
    ("generate-int-site-key", lambda m: generate(m, Z2, [0, 1], 1.0,
                                                 interventions={0: ChannelEdit.identity(64)}),
     "intervention names unknown site 0; sites are block0.bn0..block4.bn3 and "
     "block0.out..block4.out; closest: block4.bn0, block3.bn0, block2.bn0"),
    ("generate-not-a-model", lambda m: generate(m.variables, Z2, [0, 1], 1.0),
     "model must be a jaxaware Model (from jaxaware.load or init_random); got dict"),
    ("sample-no-classes", lambda m: sample(m, []),
     "no classes given; give class indices (e.g. 207), class names (e.g. \"golden "
     "retriever\"), a comma-separated mix of both, or 'all'"),
    ("sample-batch-size-0", lambda m: sample(m, [0], batch_size=0),
     "batch_size must be a positive integer; got 0"),
    ("sample-unknown-name", lambda m: sample(m, ["cat"]),
     "class name 'cat' given but this model has no class names; give class indices 0..9"),
    ("sample-seed-negative", lambda m: sample(m, [0], seed=-1), f"{SEEDS}; got -1"),
    ("sample-seed-too-big", lambda m: sample(m, [0], seed=2**32), f"{SEEDS}; got 4294967296"),
    ("sample-seed-float", lambda m: sample(m, [0], seed=1.5), f"{SEEDS}; got 1.5"),
    ("sample-per-class-huge", lambda m: sample(m, [0], per_class=HUGE),
     memory(f"sampling {HUGE} images of 64x64", sample_bytes(SMALL, HUGE))),
    ("multiply-wrong-count", lambda m: interventions.multiply([0, 1], [1.0, 2.0, 3.0], 8),
     "factor must be a scalar or one value per selected channel (2); got shape [3]"),
    ("multiply-num-channels-text", lambda m: interventions.multiply([0], 2.0, "8"),
     "num_channels must be a positive integer; got '8'"),
    ("replace-text-values", lambda m: interventions.replace([0], "abc", 8),
     "replacement values must be real numbers; got dtype <U3"),
    ("truncated-noise-negative-width", lambda m: truncated_noise(2, -3),
     "dim_z must be a positive integer; got -3"),
    ("truncated-noise-negative-seed", lambda m: truncated_noise(2, 4, seed=-1),
     f"{SEEDS}; got -1"),
    ("truncated-noise-huge", lambda m: truncated_noise(HUGE, 4),
     memory(f"{HUGE} latents of width 4", HUGE * 4 * 12)),
    ("biggan-latents-seed", lambda m: sample(random_model(SMALL_BIGGAN), [0], seed=-1),
     f"{SEEDS}; got -1"),
    ("probes-wrong-width", lambda m: probes(SMALL, m.params, np.zeros((2, 5)), np.array([0, 1])),
     "latents must have shape [B, 16]; got [2, 5]"),
    ("probes-no-params", lambda m: probes(SMALL, {}, Z2, np.array([0, 1])),
     "params lack 'block0'; give the params of a BigGAN-deep model of this config "
     "(model.params)"),
    ("awareness-seed-negative", lambda m: compute_awareness(m, num_latents=4, seed=-1),
     f"{SEEDS}; got -1"),
    ("awareness-seed-none", lambda m: compute_awareness(m, num_latents=4, seed=None),
     f"{SEEDS}; got None"),
    ("awareness-string-latents", lambda m: compute_awareness(m, latents=[["a"] * 16]),
     "latents must be real numbers; got dtype <U1"),
    ("awareness-ragged-latents", lambda m: compute_awareness(m, latents=[[1.0] * 16, [1.0]]),
     "latents must have shape [N, 16] with N >= 1; got (2,)"),
    ("awareness-nan-latent", lambda m: compute_awareness(m, latents=np.full((3, 16), np.nan)),
     "latents contain NaN or infinity; give finite values"),
    ("awareness-empty-params", lambda m: compute_awareness(
        Model(SMALL, {"params": {}, "stats": {}}), num_latents=4), PARAMS_MISSING),
    ("awareness-no-params", lambda m: compute_awareness(Model(SMALL, {}), num_latents=4),
     "model: params must be a dict of arrays; got NoneType"),
    ("awareness-num-latents-huge", lambda m: compute_awareness(m, num_latents=HUGE),
     memory(f"awareness of 10 classes x {site_offsets(SMALL)[-1, 1]} channels over {HUGE} "
            "latents", awareness_bytes(SMALL, HUGE, 10, 100))),
    ("awareness-class-chunk-0", lambda m: compute_awareness(m, class_chunk=0),
     "class_chunk must be a positive integer; got 0"),
    ("init-random-seed", lambda m: init_random(SMALL, seed=-2), f"{SEEDS}; got -2"),
    ("capture-sites-number", lambda m: Capture(sites=3),
     "Capture sites must be a site name such as 'block3.bn1' (or label 'L13') or a list of "
     "them; got 3"),
    ("capture-unknown-site", lambda m: generate(m, Z2, [0, 1], 1.0, capture=Capture(sites="x")),
     "unknown site 'x'; sites are block0.bn0..block4.bn3 (L0..L19) and block outputs "
     "block0.out..block4.out; closest: block4.out, block4.bn3, block4.bn2"),
    # configurations: types and ranges, one line
    ("deep-z-dim-text", lambda m: dataclasses.replace(SMALL, z_dim="16"),
     "config z_dim must be an integer >= 1; got '16'"),
    ("deep-z-dim-float", lambda m: dataclasses.replace(SMALL, z_dim=16.0),
     "config z_dim must be an integer >= 1; got 16.0"),
    ("deep-num-classes-bool", lambda m: dataclasses.replace(SMALL, num_classes=True),
     "config num_classes must be an integer >= 1; got True"),
    ("deep-eps-nan", lambda m: dataclasses.replace(SMALL, eps=float("nan")),
     "config eps must be a number in (0, 1); got nan"),
    ("deep-n-stats-1", lambda m: dataclasses.replace(SMALL, n_stats=1),
     "config n_stats must be an integer >= 2; got 1"),
    ("deep-layer-short", lambda m: dataclasses.replace(SMALL, layers=[[True, 16]]),
     "config layer 0 must be [upsample, in, out] with upsample true or false and in, out "
     "positive integers; got [True, 16]"),
    ("deep-layers-text", lambda m: dataclasses.replace(SMALL, layers="abc"),
     "config layers must be a non-empty list of [upsample, in, out]; got 'abc'"),
    ("biggan-attention-text", lambda m: dataclasses.replace(SMALL_BIGGAN, attention="16"),
     "config attention must be a list of resolutions (positive integers, e.g. [64]); got '16'"),
    ("biggan-resolution-text", lambda m: BigGANConfig(resolution="128"),
     "config resolution must be an integer >= 1; got '128'"),
    ("biggan-hier-text", lambda m: dataclasses.replace(SMALL_BIGGAN, hier="yes"),
     "config hier must be true or false; got 'yes'"),
    ("biggan-eps-inf", lambda m: dataclasses.replace(SMALL_BIGGAN, eps=float("inf")),
     "config eps must be a number in (0, 1); got inf"),
    ("deep-from-list", lambda m: BigGANDeepConfig.from_dict([1, 2]),
     "a BigGAN-deep config must be a JSON object; got list"),
    # writers called from Python
    ("model-save-empty", lambda m: m.save(""), "the output path is empty; give a directory path"),
    ("awareness-save-directory", lambda m: Awareness(**awareness_fields()).save("."),
     ". is a directory; refusing to replace it; choose a regular file path"),
    ("awareness-save-slash", lambda m: Awareness(**awareness_fields()).save("new/"),
     "new/ ends in '/', so it names a directory; give a file path"),
]


@pytest.mark.parametrize("call, message", [c[1:] for c in API_CASES],
                         ids=[c[0] for c in API_CASES])
def test_api_bad_input(call, message, small, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    with raises(message):
        call(small)
    assert snapshot(tmp_path) == before


# --------------------------------------------------------------------------------------------
# Awareness files: every array checked against the sites it declares
# --------------------------------------------------------------------------------------------


def awareness_arrays(k=3):
    offsets = site_offsets(SMALL)
    total = int(offsets[-1, 1])
    return {
        "category": np.zeros((k, total), np.float32),
        "latent": np.zeros((k, total), np.float32),
        "flip_fraction": np.zeros((k, total), np.float32),
        "classes": np.arange(k, dtype=np.int64),
        "site_names": np.array([s.name for s in site_table(SMALL)]),
        "site_offsets": offsets,
        "num_latents": np.int64(4),
        "truncation": np.float64(1.0),
        "seed": np.int64(0),
        "model_id": np.str_("test"),
    }


def awareness_fields():
    """The fields of a valid :class:`Awareness` of SMALL (zeros), for the writers."""
    d = awareness_arrays()
    return {**d, "site_names": tuple(d["site_names"].tolist()), "num_latents": 4,
            "truncation": 1.0, "seed": 0, "model_id": "test"}


TOTAL = int(site_offsets(SMALL)[-1, 1])
SITES = len(site_table(SMALL))


def shifted_offsets():
    offsets = site_offsets(SMALL).copy()
    offsets[1, 0] += 1
    return offsets


AWARENESS_CASES = [
    ("category-columns", {"category": np.zeros((3, TOTAL - 1), np.float32)},
     f"category is float32 [3, {TOTAL - 1}]; expected floats [3, {TOTAL}] (3 classes x the "
     f"{TOTAL} columns of its {SITES} sites)"),
    ("latent-strings", {"latent": np.full((3, TOTAL), "x")},
     f"latent is <U1 [3, {TOTAL}]; expected floats [3, {TOTAL}] (3 classes x the {TOTAL} "
     f"columns of its {SITES} sites)"),
    ("flip-rows", {"flip_fraction": np.zeros((2, TOTAL), np.float32)},
     f"flip_fraction is float32 [2, {TOTAL}]; expected floats [3, {TOTAL}] (3 classes x the "
     f"{TOTAL} columns of its {SITES} sites)"),
    ("offsets-gap", {"site_offsets": shifted_offsets()},
     f"site_offsets row 1 is {shifted_offsets()[1].tolist()}; it must start at "
     f"{site_offsets(SMALL)[0, 1]}, where row 0 stops"),
    ("offsets-shape", {"site_offsets": site_offsets(SMALL)[:-1]},
     f"site_offsets is int64 [{SITES - 1}, 2]; expected integers [{SITES}, 2] whose [start, "
     "stop) columns run contiguously from 0"),
    ("offsets-strings", {"site_offsets": site_offsets(SMALL).astype(str)},
     f"site_offsets is {site_offsets(SMALL).astype(str).dtype} [{SITES}, 2]; expected "
     f"integers [{SITES}, 2] whose [start, stop) columns run contiguously from 0"),
    ("site-names-numbers", {"site_names": np.arange(SITES)},
     f"site_names is int64 [{SITES}]; expected distinct strings [S] with S >= 1"),
    ("classes-float", {"classes": np.zeros(3)},
     "classes is float64 [3]; expected non-negative integers [K] with K >= 1"),
    ("seed-below", {"seed": np.int64(-5)},
     f"seed is -5 (int64); expected an integer in -1..{SEED_MAX}"),
    ("truncation-above", {"truncation": np.float64(2.0)},
     "truncation is 2.0 (float64); expected a number in (0, 1]"),
    ("num-latents-array", {"num_latents": np.array([1, 2])},
     "num_latents is int64 [2]; expected an integer >= 1"),
    ("model-id-number", {"model_id": np.int64(3)},
     "model_id is 3 (int64); expected a string"),
]


@pytest.mark.parametrize("change, message", [c[1:] for c in AWARENESS_CASES],
                         ids=[c[0] for c in AWARENESS_CASES])
def test_awareness_file_checked(change, message, tmp_path):
    path = tmp_path / "aw.npz"
    np.savez(path, **{**awareness_arrays(), **change})
    before = snapshot(tmp_path)
    with raises(f"{path} is not a valid awareness file: {message}; re-create it"):
        Awareness.load(str(path))
    assert snapshot(tmp_path) == before


def test_valid_awareness_file_loads(tmp_path):
    path = tmp_path / "aw.npz"
    np.savez(path, **awareness_arrays())
    aw = Awareness.load(str(path))
    assert aw.category[:, aw.site("block1.bn0")].shape == (3, SMALL.channel_width * 16)


# --------------------------------------------------------------------------------------------
# The correct result where the input was fine but misread before
# --------------------------------------------------------------------------------------------


def test_capture_one_site_by_name(small):
    capture = Capture(sites="block1.bn0")
    assert capture.sites == ("block1.bn0",) and Capture(sites=["L0"]).sites == ("L0",)
    _, captured = generate(small, Z2, [0, 1], 1.0, capture=capture)
    assert list(captured) == ["block1.bn0"]
    assert captured["block1.bn0"]["t"].shape == (2, 64)


def test_weights_written_now_carry_a_config_digest(weights):
    meta = json.loads((weights["W"] / "config.json").read_text())
    assert len(meta["config_sha256"]) == 64
    # A directory without the field (written before it existed) still loads.
    old = weights["root"] / "old"
    shutil.copytree(weights["W"], old)
    del meta["config_sha256"]
    (old / "config.json").write_text(json.dumps(meta))
    assert load(str(old)).config == SMALL
