"""Channel awareness: against a naive per-sample computation, closed-form cases, the file."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest
import scipy.stats

from helpers import SMALL
from jaxaware.generate import generate
from jaxaware.model import init_random
from jaxaware.awareness import Awareness, compute_awareness, probes
from jaxaware.errors import JaxawareError
from jaxaware.models.layers import Capture
from jaxaware.sites import site_table
from jaxaware.truncation import truncated_noise

CFG = SMALL


@pytest.fixture(scope="module")
def model():
    """Random weights scaled so gamma varies by O(1) and sometimes crosses 0."""
    m = init_random(CFG, seed=0)
    rng = np.random.RandomState(0)

    def widen(path, x):
        name = jax.tree_util.keystr(path)
        if "'scale'" in name or "'offset'" in name or "embedding" in name:
            return (x * rng.uniform(3, 8, size=x.shape[-1])).astype(np.float32)
        return x

    params = jax.tree_util.tree_map_with_path(widen, m.variables["params"])
    return type(m)(m.config, {**m.variables, "params": params}, "test", None)


def naive(model, classes, z):
    """Per-sample reference in float64: gamma, beta from the full condition vector."""
    p = jax.tree_util.tree_map(lambda x: np.asarray(x, np.float64), model.params)
    cat, lat, flip, gmin, abs_t = [], [], [], [], []
    for k in classes:
        c = np.concatenate([z, np.repeat(p["embedding"][k][None], len(z), 0)], axis=1)
        ts, gs = [], []
        for s in site_table(model.config):
            bn = p[s.block_name][s.name.split(".")[1]]
            g = 1 + c @ bn["scale"]
            ts.append(-(c @ bn["offset"]) / g)
            gs.append(g)
        t, g = np.concatenate(ts, 1), np.concatenate(gs, 1)
        cat.append(-t.mean(0))
        lat.append(t.var(0))
        flip.append((g <= 0).mean(0))
        gmin.append(np.abs(g).min(0))
        abs_t.append(np.abs(t).mean(0))
    return tuple(map(np.array, (cat, lat, flip, gmin, abs_t)))


def test_equals_naive_per_sample_computation(model):
    classes = [0, 3, 7, 9]
    aw = compute_awareness(model, classes, num_latents=400, truncation=0.8, seed=5)
    z = truncated_noise(400, CFG.z_dim, 0.8, seed=5).astype(np.float64)
    cat, lat, flip, gmin, abs_t = naive(model, classes, z)
    assert 0.001 < flip.mean() < 0.2  # the gamma <= 0 branch is exercised
    np.testing.assert_array_equal(aw.flip_fraction, flip.astype(np.float32))
    # Columns where no sample has gamma near 0: there float32 t is well conditioned.
    ok = gmin >= 0.05
    assert ok.mean() > 0.5
    np.testing.assert_allclose(aw.latent[ok], lat[ok], rtol=1e-5)
    # The mean relative to the probe's own scale E|t| (the mean itself may cancel to ~0).
    err = np.abs(aw.category[ok] - cat[ok]) / abs_t[ok]
    assert err.max() <= 1e-5, err.max()


def test_matches_probes_of_the_full_generator(model):
    """The affine shortcut gives the same t as running the generator."""
    z = truncated_noise(64, CFG.z_dim, 1.0, seed=1)
    aw = compute_awareness(model, [4], latents=z)
    _, probes = generate(model, z, np.full(64, 4), 1.0, capture=Capture())
    t = np.concatenate([np.asarray(probes[s.name]["t"]) for s in site_table(CFG)], axis=1)
    g = np.concatenate([np.asarray(probes[s.name]["gamma"]) for s in site_table(CFG)], axis=1)
    ok = np.abs(g).min(0) >= 0.05
    np.testing.assert_allclose(aw.category[0][ok], -t.mean(0)[ok], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(aw.latent[0][ok], t.var(0)[ok], rtol=1e-4)
    assert aw.seed == -1 and aw.num_latents == 64


def test_chunking_does_not_change_results(model):
    a = compute_awareness(model, num_latents=100, class_chunk=64)
    b = compute_awareness(model, num_latents=100, class_chunk=3)  # 3 + 3 + 3 + 1
    for key in ("category", "latent", "flip_fraction"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))


def test_closed_form_when_gamma_ignores_z():
    """scale acts on the class only and offset on z only: gamma = 1 + e.S_e is constant,
    so -E[t] = E[z].O_z / gamma and Var[t] = Var(z.O_z) / gamma^2, with z ~ truncnorm(-2,2)
    (mean 0, variance from scipy)."""
    m = init_random(CFG, seed=1)
    params = jax.tree_util.tree_map(np.array, m.params)
    rng = np.random.RandomState(3)
    for s in site_table(CFG):
        bn = params[s.block_name][s.name.split(".")[1]]
        bn["scale"][: CFG.z_dim] = 0
        bn["scale"][CFG.z_dim :] = rng.uniform(-0.02, 0.05, bn["scale"][CFG.z_dim :].shape)
        bn["offset"][CFG.z_dim :] = 0
    n, trunc = 5000, 0.6
    aw = compute_awareness(dataclasses.replace(m, variables={**m.variables, "params": params}),
                           [2, 5], num_latents=n, truncation=trunc, seed=0)
    var_z = scipy.stats.truncnorm.var(-2, 2) * trunc**2
    for row, k in enumerate([2, 5]):
        e = params["embedding"][k]
        col = 0
        for s in site_table(CFG):
            bn = params[s.block_name][s.name.split(".")[1]]
            gamma = 1 + e @ bn["scale"][CFG.z_dim :]
            w = bn["offset"][: CFG.z_dim]
            want_var = var_z * (w**2).sum(0) / gamma**2
            sl = slice(col, col + s.channels)
            np.testing.assert_allclose(aw.latent[row, sl], want_var, rtol=0.1)  # ~5 s.e.
            # E[t] = 0; the sample mean is within 4 standard errors.
            assert (np.abs(aw.category[row, sl]) <= 4 * np.sqrt(want_var / n)).all()
            col += s.channels
    assert (aw.flip_fraction == 0).all()


def test_file_round_trip(model, tmp_path):
    aw = compute_awareness(dataclasses.replace(model, model_id="tiny"), [1, 2], num_latents=50)
    path = aw.save(str(tmp_path / "aw.npz"))
    back = Awareness.load(path)
    for key in ("category", "latent", "flip_fraction", "classes", "site_offsets"):
        np.testing.assert_array_equal(getattr(back, key), getattr(aw, key))
    assert back.site_names == aw.site_names and back.model_id == "tiny"
    assert (back.num_latents, back.truncation, back.seed) == (50, 1.0, 0)
    assert back.category[:, back.site("block1.bn2")].shape == (2, 16)  # 64 // 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["aw.npz"]  # no temp file left


def test_truncated_file_is_a_clear_error(model, tmp_path):
    aw = compute_awareness(model, [1], num_latents=10)
    path = aw.save(str(tmp_path / "aw.npz"))
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])
    with pytest.raises(JaxawareError, match=r"cannot read .*aw\.npz as an awareness \.npz"):
        Awareness.load(path)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"classes": [10]}, "class index 10 is out of range; this model has classes 0..9"),
        ({"classes": [-1]}, "class index -1 is out of range; this model has classes 0..9"),
        ({"truncation": 0.0}, r"truncation must be in \(0, 1\]; got 0.0"),
        ({"num_latents": 0}, "num_latents must be a positive integer; got 0"),
        ({"latents": np.zeros((5, 3))}, r"latents must have shape \[N, 16\] with N >= 1; got"),
    ],
)
def test_bad_input(model, kwargs, message):
    with pytest.raises(JaxawareError, match=message):
        compute_awareness(model, **{"num_latents": 10, **kwargs})


def test_equals_the_torch_baseline_on_a_converted_model(tmp_path):
    """Same weights, same latents (same seed convention), two implementations."""
    torch = pytest.importorskip("torch")
    from convert.biggan_deep import convert
    from convert.reference import SMALL_CONFIGS, random_biggan, save_checkpoint
    from convert.torch_awareness import torch_awareness
    from jaxaware.model import load

    torch.set_num_threads(1)
    cfg = SMALL_CONFIGS["tiny"]
    ref = random_biggan(cfg, seed=1)
    save_checkpoint(ref, cfg, tmp_path / "ckpt")
    convert(str(tmp_path / "ckpt"), str(tmp_path / "w"))
    model = load(str(tmp_path / "w"))
    classes = [0, 4, 9]
    want = torch_awareness(ref.double(), classes, num_latents=200, truncation=0.5, seed=2)
    aw = compute_awareness(model, classes, 200, 0.5, seed=2)
    assert list(aw.site_names) == [s.name for s in site_table(model.config)]
    # Columns whose |gamma| stays >= 0.05 on every latent (float32 vs float64 otherwise).
    z = truncated_noise(200, cfg.z_dim, 0.5, seed=2)
    gmin = []
    for k in classes:
        y = np.zeros((200, cfg.num_classes), np.float32)
        y[:, k] = 1
        pr = probes(model.config, model.params, z, y)
        g = np.concatenate([np.asarray(pr[s.name]["gamma"]) for s in site_table(model.config)], 1)
        gmin.append(np.abs(g).min(0))
    ok = np.array(gmin) >= 0.05
    assert ok.mean() > 0.8
    np.testing.assert_allclose(aw.latent[ok], want.latent[ok], rtol=1e-4)
    scale = np.abs(want.category).max()
    np.testing.assert_allclose(aw.category[ok], want.category[ok], rtol=1e-4, atol=1e-6 * scale)
    np.testing.assert_array_equal(aw.flip_fraction, want.flip)
