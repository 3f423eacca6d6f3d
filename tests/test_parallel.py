"""Sharded runs (jaxaware.parallel) equal the 1-device run, bit for bit.

The 8-device results come from a subprocess started with
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` that runs this file as a script
(``python tests/test_parallel.py worker OUT.npz``) and saves what :func:`_results` computes
on all 8 devices, on 3 and on 1 of them; every array of 8 and of 3 devices must equal the
1-device one with ``assert_array_equal`` (bit for bit, no tolerance):

* awareness (both families): the same kernel per class, whose arithmetic per class does
  not depend on how many classes share a chunk;
* sample, evaluate's generation and an ablation sweep through ``map_rows``: every device
  runs the 1-device program on a block of the same shape (``shrink=False``).

The class counts, images and sweep rows never divide the device count (padding). This
test process keeps JAX's one CPU device and computes the same samples and awareness: they
agree with the subprocess's to 1e-6 of their largest value, and not always bit for bit: a
process started with another number of host devices may compile the same program into
other arithmetic (measured on a 2-core AVX2 AMD EPYC: 336 of 110,592 sample pixels differ,
by at most 1.8e-7, whether the 8-device process uses 1, 3 or 8 of its devices; bit-identical
on the Intel Xeon and the AVX-512 EPYC of earlier sittings). Then two processes
(``jax.distributed`` on localhost, gloo CPU collectives, 2 devices each) run the
awareness, sample and evaluate commands and must write the files one process writes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402

from helpers import SMALL, SMALL_BIGGAN, forward_traces, random_model  # noqa: E402
from jaxaware import parallel  # noqa: E402
from jaxaware.cli import main  # noqa: E402
from jaxaware.errors import JaxawareError  # noqa: E402

WORKER_TIMEOUT = 300  # seconds, the 8-device subprocess
#: Results equal within 1e-6 of their largest value rather than bit for bit: the first-order
#: response is a gradient, and XLA's CPU backward convolutions order their reductions by the
#: threads each device gets, which differ when 8 host devices share the cores (the forward
#: passes, awareness and the exact sweep are bit-identical).
NOT_BIT_IDENTICAL = {"response_first_order"}
PROCESS_TIMEOUT = 300  # seconds, each 2-process run: a bound on a hang, not a speed
#: (120 timed out when the machine was shared with a training run)


# -- what is compared -----------------------------------------------------------------------


def _sweep_rows(edits, variables, z, classes, blend):
    """Images of every edit of a FlatEdit batch: the exact sweep, as map_rows runs it."""
    from jaxaware.generate import forward

    one = lambda e: forward(SMALL, variables, z, classes, blend, e)[0]  # noqa: E731
    return jax.vmap(one)(edits)


def _results(devices, full: bool = True) -> dict[str, np.ndarray]:
    """Everything compared, as flat arrays: awareness of both families (10 classes, chunks
    of 3: padded on 3 and 8 devices), 9 samples in blocks of 2 per device and, when
    ``full``, an evaluation of 3 world classes (6 images each, batches of 4) and an 11-edit
    ablation sweep."""
    from jaxaware import interventions as iv
    from jaxaware.awareness import compute_awareness
    from jaxaware.evaluation import evaluate
    from jaxaware.generate import sample, statistic_weights
    from jaxaware.model import load

    out = {}
    for name, cfg in (("deep", SMALL), ("biggan", SMALL_BIGGAN)):
        model = random_model(cfg)
        aw = compute_awareness(model, num_latents=37, class_chunk=3, devices=devices)
        for key in ("category", "latent", "flip_fraction"):
            out[f"awareness_{name}_{key}"] = getattr(aw, key)
    model = random_model(SMALL)
    images, labels = sample(model, [0, 3, 7], 0.5, seed=2, per_class=3, batch_size=2,
                            devices=devices)
    out["sample_images"], out["sample_labels"] = images, labels
    if not full:
        return out
    ev = evaluate(load(), [0, 5, 13], per_class=6, truncation=0.5, seed=3,
                  awareness_latents=40, ms_ssim_images=4, batch_size=4, devices=devices)
    out["evaluation_json"] = np.frombuffer(ev.to_json().encode(), np.uint8)
    out["evaluation_samples"] = np.stack([ev.samples[i] for i in sorted(ev.samples)])
    z = model.family.sample_latents(2, SMALL, 0.5, 1)
    sweep = iv.ablation_sweep(SMALL, columns=range(0, 330, 30))  # 11 rows
    out["sweep_images"] = parallel.map_rows(
        _sweep_rows, sweep, model.variables, z, np.array([1, 4]), statistic_weights(SMALL, 0.5),
        block=2, shrink=False, devices=devices)
    # The analyses' exact and first-order response sweeps (world model and classifier).
    from jaxaware.analysis import exact_response, first_order_response, site_columns

    world = load()
    cols = site_columns(world.config, "L1")[:10]
    for name, fn, kw in (("exact", exact_response, {"edit_batch": 4}),
                         ("first_order", first_order_response, {})):
        r = fn(world, None, [2, 9], cols, num_latents=6, batch_size=2, devices=devices, **kw)
        out[f"response_{name}"] = r.drop
    return out


def _cli_error(argv) -> str:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    assert code == 2, err.getvalue()
    return err.getvalue()


def _worker(path: str) -> None:
    """The 8-device subprocess: results on all 8 devices, on 3 and on 1, the --devices
    messages."""
    assert jax.device_count() == 8, jax.devices()
    arrays = {f"all/{k}": v for k, v in _results(None).items()}
    arrays.update({f"one/{k}": v for k, v in _results(1).items()})
    arrays.update({f"three/{k}": v for k, v in _results(3, full=False).items()})
    arrays["mesh_sizes"] = np.array([parallel.make_mesh().size, parallel.make_mesh(3).size])
    arrays["error_9"] = np.array(_cli_error(["sample", "--devices", "9", "--out", "x.png"]))
    np.savez(path, **arrays)


@pytest.fixture(scope="module")
def eight_worker(tmp_path_factory):
    """The 8-device subprocess, started before this process computes :func:`one` so the two
    overlap (much of each is single-threaded compiling); stopped if a test fails first."""
    out = tmp_path_factory.mktemp("parallel") / "eight.npz"
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
           "PYTHONPATH": str(ROOT)}
    log = out.with_suffix(".log")  # a file, not a pipe: nothing blocks on a full buffer
    with open(log, "w") as sink:
        proc = subprocess.Popen([sys.executable, __file__, "worker", str(out)],
                                stdout=sink, stderr=subprocess.STDOUT, cwd=out.parent, env=env)
    yield proc, out, log
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def one(eight_worker):
    """Samples and awareness in this process, which keeps JAX's one CPU device."""
    assert jax.device_count() == 1
    return _results(None, full=False)


@pytest.fixture(scope="module")
def eight(eight_worker, one):
    """The 8-device subprocess's arrays."""
    proc, out, log = eight_worker
    proc.wait(timeout=WORKER_TIMEOUT)
    assert proc.returncode == 0, log.read_text()[-3000:]
    with np.load(out) as f:
        return {k: f[k] for k in f.files}


# -- 8 devices (and 3) equal 1 ----------------------------------------------------------------


def test_eight_devices_equal_one_bit_for_bit(eight):
    assert eight["mesh_sizes"].tolist() == [8, 3]
    ones = {k[len("one/"):]: v for k, v in eight.items() if k.startswith("one/")}
    for key, value in ones.items():
        for count in ("all", "three"):
            if f"{count}/{key}" not in eight:
                assert count == "three" and key.startswith(("evaluation", "sweep", "response")), key
                continue
            got = eight[f"{count}/{key}"]
            assert got.dtype == value.dtype and got.shape == value.shape, key
            if key in NOT_BIT_IDENTICAL:
                # Within 1e-6 of the largest value (measured: 4.6e-7 on 8 host devices).
                scale = np.abs(value).max()
                assert np.abs(got - value).max() <= 1e-6 * scale, f"{count}/{key}"
                continue
            np.testing.assert_array_equal(got, value, err_msg=f"{count}/{key}")
    assert ones["sample_images"].shape[0] == 9 and ones["sweep_images"].shape[:2] == (11, 2)
    assert ones["awareness_deep_category"].shape[0] == 10
    assert len(ones) == 13


def test_a_one_device_process_agrees_with_the_eight_device_process(eight, one):
    assert set(one) == {"sample_images", "sample_labels"} | {
        f"awareness_{f}_{k}" for f in ("deep", "biggan")
        for k in ("category", "latent", "flip_fraction")}
    for key, value in one.items():
        got = eight[f"one/{key}"]
        assert got.dtype == value.dtype and got.shape == value.shape, key
        if value.dtype.kind != "f":
            np.testing.assert_array_equal(got, value, err_msg=key)
        else:  # to 1e-6 of the largest value (measured: 1.8e-7 of 1.0 on an AVX2 EPYC)
            assert np.abs(got - value).max() <= 1e-6 * np.abs(value).max(), key


def test_sharded_path_on_one_device_is_the_plain_path(one):
    """On one device the sharded sample equals the plain per-batch generate loop and the
    sharded awareness equals chunk_awareness called directly, bit for bit."""
    from jaxaware.awareness import chunk_awareness
    from jaxaware.generate import generate

    model = random_model(SMALL)
    z = np.tile(model.family.sample_latents(3, SMALL, 0.5, 2), (3, 1))
    labels = np.repeat([0, 3, 7], 3)
    z, labels = np.concatenate([z, z[-1:]]), np.concatenate([labels, labels[-1:]])  # as 2s
    plain = np.concatenate([np.asarray(generate(model, z[s : s + 2], labels[s : s + 2], 0.5))
                            for s in range(0, 10, 2)])[:9]
    np.testing.assert_array_equal(one["sample_images"], plain)

    affine = model.family.affine_maps(model.params, SMALL)
    z = model.family.sample_latents(37, SMALL, 1.0, 0)
    a_s, a_o = 1.0 + z @ affine.gain_latent, z @ affine.bias_latent
    b_s, b_o = affine.class_parts(np.arange(10))
    cat = np.concatenate([np.asarray(chunk_awareness(a_s, a_o, b_s[s : s + 3],
                                                     b_o[s : s + 3])[0])
                          for s in range(0, 10, 3)])
    np.testing.assert_array_equal(one["awareness_deep_category"], cat)


def test_sample_compiles_once():
    """New classes, truncations, seeds and a padded last step: the same compiled map."""
    from jaxaware.generate import sample

    model = random_model(SMALL)
    with forward_traces() as calls:  # sample's mapped function calls jaxaware.generate's
        sample(model, [0, 1], 0.5, seed=1, per_class=2, batch_size=2)
        assert len(calls) == 1
        calls.clear()
        sample(model, [5, 7, 9], 0.9, seed=2, per_class=1, batch_size=2)
        assert calls == []


# -- padding and the map itself ---------------------------------------------------------------


def test_pad_rows_repeats_the_last_row():
    x = np.arange(10).reshape(5, 2)
    (padded, y), n = parallel.pad_rows((x, np.arange(5)), 4)
    assert n == 5 and padded.shape == (8, 2)
    np.testing.assert_array_equal(padded[5:], np.repeat(x[-1:], 3, axis=0))
    np.testing.assert_array_equal(y, [0, 1, 2, 3, 4, 4, 4, 4])
    same, n = parallel.pad_rows(x, 5)
    assert same is x and n == 5


def _affine_rows(rows, w):
    return {"y": rows["x"] @ w + 1.0, "n": rows["i"] * 2}


def test_map_rows_any_count_and_block():
    rng = np.random.RandomState(0)
    x, w = rng.randn(13, 4).astype(np.float32), rng.randn(4, 3).astype(np.float32)
    want = np.asarray(jax.jit(lambda a, b: a @ b + 1.0)(x, w))
    steps = []
    for block, shrink in ((1, True), (4, True), (5, False), (100, True)):
        out = parallel.map_rows(_affine_rows, {"x": x, "i": np.arange(13)}, w, block=block,
                                shrink=shrink, progress=steps.append)
        assert out["y"].shape == (13, 3) and out["n"].tolist() == list(range(0, 26, 2))
        np.testing.assert_allclose(out["y"], want, rtol=1e-6, atol=1e-6)
    assert steps[:13] == [1] * 13 and steps[13:17] == [4, 4, 4, 1] and steps[-1] == 13
    # a shared argument may be None (e.g. no prefix activations)
    out = parallel.map_rows(lambda r, h, s: r * s if h is None else r, np.arange(5.0), None,
                            2.0, block=2)
    np.testing.assert_array_equal(out, np.arange(5.0) * 2)


def test_map_rows_bad_input():
    with pytest.raises(JaxawareError, match="share one non-zero leading length"):
        parallel.map_rows(_affine_rows, {"x": np.zeros((3, 4)), "i": np.zeros(2)}, None,
                          block=1)
    with pytest.raises(JaxawareError, match="block must be a positive integer"):
        parallel.map_rows(_affine_rows, {"x": np.zeros((3, 4)), "i": np.zeros(3)}, None,
                          block=0)


# -- --devices and the multi-process options: one line each ----------------------------------


def test_devices_errors(tmp_path, capsys):
    assert _cli_error(["awareness", "--devices", "0", "--out", str(tmp_path / "a.npz")]) == (
        "error: --devices 0 must be at least 1; give 1..1\n")
    for command, out in (("sample", "s.png"), ("awareness", "a.npz"),
                         ("evaluate", "e.json")):
        assert _cli_error([command, "--devices", "2", "--out", str(tmp_path / out)]) == (
            "error: --devices 2 is more than the 1 device JAX sees; give 1..1\n")
    for argv, message in [
        (["--num-processes", "2"], "--num-processes and --process-id need --coordinator "
                                   "HOST:PORT"),
        (["--coordinator", "localhost"], "--coordinator 'localhost' is not HOST:PORT (e.g. "
                                         "localhost:1234), nor auto"),
        (["--coordinator", "localhost:1", "--num-processes", "2"],
         "--coordinator HOST:PORT needs --num-processes and --process-id (or --coordinator "
         "auto on a cluster JAX detects)"),
        (["--coordinator", "localhost:1", "--num-processes", "2", "--process-id", "2"],
         "--process-id 2 is not in 0..1 (--num-processes 2)"),
    ]:
        assert _cli_error(["awareness", *argv, "--out", str(tmp_path / "a.npz")]) == (
            f"error: {message}\n")
    with pytest.raises(JaxawareError, match=r"^devices=2 is more than the 1 device JAX sees"):
        parallel.check_devices(2)
    with pytest.raises(JaxawareError, match=r"^devices='2' is not a device count"):
        parallel.check_devices("2")
    assert os.listdir(tmp_path) == []


def test_eight_devices_error_message(eight):
    assert str(eight["error_9"]) == (
        "error: --devices 9 is more than the 8 devices JAX sees; give 1..8\n")


# -- two processes ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _two_processes(argvs, tmp_path, extra=(), devices_each=2):
    """Runs ``main(argv)`` for every argv in sequence in each of two processes joined at a
    free localhost port; returns [(returncode, stdout, stderr)] of process 0 and 1."""
    from jax._src.lib import _jax

    if not hasattr(_jax, "make_gloo_tcp_collectives"):
        pytest.skip("this jaxlib has no gloo CPU collectives, so CPU processes cannot "
                    "exchange results")
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT),
           "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices_each}"}
    code = ("import sys, json; from jaxaware.cli import main; "
            "sys.exit(max(main(a) for a in json.loads(sys.argv[1])))")
    procs = []
    for i in range(2):
        count = list(extra[i]) if extra else ["--num-processes", "2"]
        joined = [[*a, "--coordinator", f"localhost:{port}", "--process-id", str(i), *count]
                  for a in argvs]
        procs.append(subprocess.Popen([sys.executable, "-c", code, json.dumps(joined)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, cwd=tmp_path, env=env))
    results = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=PROCESS_TIMEOUT)
            results.append((p.returncode, out, err))
    finally:
        for p in procs:  # bounded: never leave a process behind
            if p.poll() is None:
                p.kill()
                p.communicate()
    return results


def test_two_processes_write_what_one_process_writes(tmp_path):
    from PIL import Image

    common = ["--quiet", "--seed", "3"]
    commands = {
        "aw.npz": ["awareness", "--num-latents", "45", *common],
        "grid.png": ["sample", "--classes", "0,4,9", "--per-class", "3", *common],
        "ev.json": ["evaluate", "--classes", "0,5,13", "--per-class", "6",
                    "--awareness-latents", "40", "--ms-ssim-images", "4", "--batch-size", "4",
                    "--truncation", "0.5,1.0", *common],
        "aw1.npz": ["awareness", "--num-latents", "45", "--devices", "1", *common],
    }
    multi, single = tmp_path / "multi", tmp_path / "single"
    multi.mkdir()
    single.mkdir()
    results = _two_processes([[*a, "--out", str(multi / f)] for f, a in commands.items()],
                             tmp_path)
    for i, (code, out, err) in enumerate(results):
        assert code == 0, f"process {i}: {err[-3000:]}"
    printed = [[line for line in out.splitlines() if not line.startswith("[Gloo]")]
               for _, out, _ in results]  # gloo's C++ code prints its connections
    assert printed[1] == []  # only process 0 writes and prints
    assert sum(line.startswith("wrote ") for line in printed[0]) == len(commands)
    for f, argv in commands.items():
        assert main([*argv, "--out", str(single / f)]) == 0
    assert sorted(os.listdir(multi)) == sorted(commands)
    for name in ("aw.npz", "aw1.npz"):
        with np.load(multi / name) as a, np.load(single / name) as b:
            assert a.files == b.files
            for key in a.files:
                np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    np.testing.assert_array_equal(np.asarray(Image.open(multi / "grid.png")),
                                  np.asarray(Image.open(single / "grid.png")))
    assert (multi / "ev.json").read_text() == (single / "ev.json").read_text()


def test_a_process_count_that_does_not_match_fails_in_one_line(tmp_path):
    argv = [["awareness", "--num-latents", "10", "--quiet", "--init-timeout", "3", "--out",
             str(tmp_path / "x.npz")]]
    # process 0 expects 3 processes, process 1 says 2: both stop at once
    results = _two_processes(argv, tmp_path, extra=(["--num-processes", "3"],
                                                    ["--num-processes", "2"]))
    for code, out, err in results:
        assert code == 2 and out == ""
        assert err == ("error: process 1 was started with --num-processes 2 but process 0 "
                       "with 3; give every process the same count\n")
    # both say 3, but only 2 start: both stop after the timeout
    results = _two_processes(argv, tmp_path, extra=(["--num-processes", "3"],
                                                    ["--num-processes", "3"]))
    for code, out, err in results:
        assert code == 2 and out == "" and err.count("\n") == 1, err
        assert err.startswith("error: only 2 of 3 processes joined localhost:")
        assert "within 3 s (missing --process-id 2)" in err
    assert not (tmp_path / "x.npz").exists()


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "worker":
    _worker(sys.argv[2])
