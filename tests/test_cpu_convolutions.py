"""``TrainConfig.cpu_convolutions``: who computes a CPU training step's convolutions.

"ynnpack" keeps jax's default (YNNPACK, in jax 0.10); "xla" compiles the step with XLA's own
convolutions and YNNPACK's other fusions as before. Checked on the compiled programs
themselves and on a few training steps of a tiny config.
"""

from __future__ import annotations

import dataclasses
import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import TRAIN_TINY as TINY

from jaxaware.errors import JaxawareError
from jaxaware.train import TrainConfig, train
from jaxaware.train import checkpoint as ckpt
from jaxaware.train.trainer import (
    CPU_CONVOLUTIONS,
    FAST_COMPILE,
    compiler_options,
    cpu_convolution_options,
    init_state,
)

TC = TrainConfig(TINY, d_ch=4, batch_size=8, steps=3, checkpoint_every=3, log_every=1,
                 standing_batches=1, standing_batch_size=16, fast_compile=True)
XLA = dataclasses.replace(TC, cpu_convolutions="xla")


def _conv_and_sum(x, w):
    """A convolution, a reduction and a matrix product, apart (XLA would fuse a reduction
    of the convolution's output into its own loop)."""
    y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y, jnp.sum(x * x, axis=(0, 1, 2)), x.reshape(-1, w.shape[2]) @ w[1, 1]


def _library_fused(hlo: str) -> list[str]:
    """The op names of the fusions the CPU compiler handed to YNNPACK."""
    return re.findall(r'ynn_fusion[.\d]* = .*?op_name="[^"]*/([a-z_]+)"', hlo)


def test_the_choices_and_a_bad_one():
    assert CPU_CONVOLUTIONS == ("ynnpack", "xla")
    assert TrainConfig(TINY).cpu_convolutions == "ynnpack"
    message = "cpu_convolutions must be one of ynnpack, xla; got 'eigen'"
    with pytest.raises(JaxawareError) as e:
        dataclasses.replace(TC, cpu_convolutions="eigen")
    assert str(e.value) == message
    with pytest.raises(JaxawareError) as e:
        cpu_convolution_options("eigen")
    assert str(e.value) == message
    assert cpu_convolution_options("ynnpack") == {}


def test_compiler_options_add_the_choice_to_fast_compile():
    plain = dataclasses.replace(TC, fast_compile=False)
    assert compiler_options(plain) is None
    assert compiler_options(TC) == FAST_COMPILE
    xla = compiler_options(XLA)
    if xla == FAST_COMPILE:
        pytest.skip("this jax's XLA has no YNNPACK fusions to leave out")
    assert {k: xla[k] for k in FAST_COMPILE} == FAST_COMPILE
    assert compiler_options(dataclasses.replace(XLA, fast_compile=False)) == {
        k: v for k, v in xla.items() if k not in FAST_COMPILE} == cpu_convolution_options("xla")


def test_xla_choice_takes_only_the_convolutions_from_the_cpu_library():
    options = cpu_convolution_options("xla")
    if not options:
        pytest.skip("this jax's XLA has no YNNPACK fusions to leave out")
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    x = jax.random.normal(k1, (8, 32, 32, 32))
    w = jax.random.normal(k2, (3, 3, 32, 32))
    default = jax.jit(_conv_and_sum).lower(x, w).compile()
    ours = jax.jit(_conv_and_sum).lower(x, w).compile(compiler_options=options)
    assert "conv_general_dilated" in _library_fused(default.as_text())
    fused = _library_fused(ours.as_text())
    assert "conv_general_dilated" not in fused
    assert "reduce_sum" in fused and "dot_general" in fused  # the rest as before
    for a, b in zip(ours(x, w), default(x, w)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)


def test_a_run_with_xla_convolutions_trains_and_keeps_its_choice(tmp_path):
    runs = {}
    for tc in (TC, XLA):
        out = tmp_path / tc.cpu_convolutions
        train(tc, out, progress=False)
        runs[tc.cpu_convolutions] = [json.loads(line) for line in
                                     (out / "log.jsonl").read_text().splitlines()]
    a, b = runs["ynnpack"][0], runs["xla"][0]
    # the first step's losses: the same sums, rounded in another order
    for key in ("d_loss", "g_loss", "d_real", "d_fake"):
        assert np.isfinite(b[key]) and b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-5)
    assert all(np.isfinite(r["g_loss"]) for r in runs["xla"])
    meta = json.loads((tmp_path / "xla" / "checkpoint" / "config.json").read_text())
    assert meta["extra"]["train_config"]["cpu_convolutions"] == "xla"
    with pytest.raises(ValueError, match="another training config"):
        ckpt.load(tmp_path / "xla" / "checkpoint", init_state(TC), TC)
