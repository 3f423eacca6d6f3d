"""experiments/edge_magnitude.py: the edge magnitude of real renders and of a model's
samples, and each view's mode-seeking ratio, against direct computation."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxaware
from jaxaware.generate import generate
from jaxaware.toyworld import WORLD, render
from jaxaware.train.trainer import edge_view, mode_seeking_ratio

from helpers import load_experiment



def _script():
    return load_experiment("edge_magnitude")


def test_quick_run_matches_direct_computation(tmp_path, capsys):
    out = tmp_path / "edges.json"
    record = _script().main(["--quick", "--out", str(out)])
    assert (tmp_path / "edges.png").read_bytes()[:4] == b"\x89PNG"
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(record)) and saved["quick"] is True
    classes = np.tile(np.arange(WORLD.num_classes), 2)
    real, _ = render(classes, seed=5)
    want_real = float(jnp.mean(jnp.abs(edge_view(jnp.asarray(real)))))
    assert saved["real_mean_abs_edge"] == pytest.approx(want_real, rel=1e-6)
    model = jaxaware.load("toyworld-biggan")
    z = jax.random.normal(jax.random.PRNGKey(0), (len(classes), model.config.z_dim))
    images = generate(model, z, classes, 1.0)
    row = saved["models"]["toyworld-biggan"]
    edges = float(jnp.mean(jnp.abs(edge_view(images))))
    assert row["mean_abs_edge"] == pytest.approx(edges, rel=1e-5)
    assert row["edge_over_real"] == pytest.approx(edges / want_real, rel=1e-5)
    for view in ("pixels", "edges", "coarse_edges", "relative_edges"):
        assert row["mode_seeking_ratio"][view] == pytest.approx(
            float(mode_seeking_ratio(images, z, view)), rel=1e-5)
    assert "real renders: mean |edge|" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--per-class", "3", "--out", "x.json"],
     "error: --per-class must be an even number >= 2 (the samples are paired); got 3"),
    (["--out", "x.txt"], "error: --out must name a .json file; got 'x.txt'"),
])
def test_bad_arguments(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        _script().main(argv)
    assert e.value.code == 2
    assert capsys.readouterr().err.strip() == message
    assert list(tmp_path.iterdir()) == []
