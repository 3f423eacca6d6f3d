"""Random-weight reference BigGAN-deep models (convert/reference.py) and the PyTorch
awareness baseline (convert/torch_awareness.py). Needs the optional torch extra."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("pytorch_pretrained_biggan")

from pytorch_pretrained_biggan import BigGAN, truncated_noise_sample  # noqa: E402

from convert.reference import (  # noqa: E402
    SMALL_CONFIGS,
    TINY,
    conditional_bn_sites,
    get_config,
    load_checkpoint,
    main,
    one_hot,
    preset,
    random_biggan,
    reference_forward,
    save_checkpoint,
    small_config,
)
from convert.torch_awareness import torch_awareness, torch_images_per_second  # noqa: E402

CONFIG_NAMES = list(SMALL_CONFIGS)


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    # Two torch threads on a shared 2-core machine are up to ~10x slower than one.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def models():
    return {name: random_biggan(cfg, seed=0) for name, cfg in SMALL_CONFIGS.items()}


@pytest.fixture(scope="module")
def checkpoints(models, tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    return {name: save_checkpoint(m, m.config, root / name) for name, m in models.items()}


# ---------------------------------------------------------------- expected layout (doc A.2)


def _attn(cfg):
    return 0 <= cfg.attention_layer_position < len(cfg.layers)


def expected_shapes(cfg) -> dict[str, tuple]:
    """State-dict key -> shape, from the reference doc's rules (independent of the code)."""
    ch, zc, S = cfg.channel_width, 2 * cfg.z_dim, cfg.n_stats
    out: dict[str, tuple] = {"embeddings.weight": (cfg.z_dim, cfg.num_classes)}

    def sn(prefix, shape, bias):
        out[f"{prefix}.weight_orig"] = shape
        out[f"{prefix}.weight_u"] = (shape[0],)
        out[f"{prefix}.weight_v"] = (math.prod(shape[1:]),)
        if bias:
            out[f"{prefix}.bias"] = (shape[0],)

    def ccbn(prefix, c):
        out[f"{prefix}.running_means"] = (S, c)
        out[f"{prefix}.running_vars"] = (S, c)
        sn(f"{prefix}.scale", (c, zc), False)
        sn(f"{prefix}.offset", (c, zc), False)

    sn("generator.gen_z", (16 * 16 * ch, zc), True)
    pos = cfg.attention_layer_position
    for i, (_, a, b) in enumerate(cfg.layers):
        m = i + 1 if _attn(cfg) and i >= pos else i
        c, co = ch * a, ch * b
        mid = c // 4
        p = f"generator.layers.{m}"
        ccbn(f"{p}.bn_0", c)
        sn(f"{p}.conv_0", (mid, c, 1, 1), True)
        for k in (1, 2, 3):
            ccbn(f"{p}.bn_{k}", mid)
        sn(f"{p}.conv_1", (mid, mid, 3, 3), True)
        sn(f"{p}.conv_2", (mid, mid, 3, 3), True)
        sn(f"{p}.conv_3", (co, mid, 1, 1), True)
    if _attn(cfg):
        c = ch * cfg.layers[pos][1]
        p = f"generator.layers.{pos}"
        out[f"{p}.gamma"] = (1,)
        sn(f"{p}.snconv1x1_theta", (c // 8, c, 1, 1), False)
        sn(f"{p}.snconv1x1_phi", (c // 8, c, 1, 1), False)
        sn(f"{p}.snconv1x1_g", (c // 2, c, 1, 1), False)
        sn(f"{p}.snconv1x1_o_conv", (c, c // 2, 1, 1), False)
    out["generator.bn.weight"] = (ch,)
    out["generator.bn.bias"] = (ch,)
    out["generator.bn.running_means"] = (S, ch)
    out["generator.bn.running_vars"] = (S, ch)
    sn("generator.conv_to_rgb", (ch, ch, 3, 3), True)
    return out


def expected_sites(cfg) -> list[tuple[str, int]]:
    """(CCBN module name, channels) in forward order."""
    sites = []
    for i, (_, a, _b) in enumerate(cfg.layers):
        m = i + 1 if _attn(cfg) and i >= cfg.attention_layer_position else i
        c = cfg.channel_width * a
        sites.append((f"generator.layers.{m}.bn_0", c))
        sites += [(f"generator.layers.{m}.bn_{k}", c // 4) for k in (1, 2, 3)]
    return sites


def _inputs(cfg, batch, truncation, seed=0):
    z = truncated_noise_sample(batch, cfg.z_dim, truncation, seed)
    y = one_hot(np.arange(batch) % cfg.num_classes, cfg.num_classes)
    return z, y


# ---------------------------------------------------------------- configs


@pytest.mark.parametrize(
    "res, keys, params",
    [(128, 506, 50_388_609), (256, 602, 55_880_833), (512, 698, 56_163_905)],
)
def test_presets_build_with_documented_keys_and_params(res, keys, params):
    cfg = preset(f"biggan-deep-{res}")
    from pytorch_pretrained_biggan import convert_tf_to_pytorch as conv

    ref = getattr(conv, f"BigGAN{res}").to_dict()
    ref["layers"] = [list(entry) for entry in ref["layers"]]
    assert cfg.to_dict() == ref
    with torch.random.fork_rng(devices=[]):
        model = BigGAN(cfg)
    state = model.state_dict()
    assert len(state) == keys
    assert sum(p.numel() for p in model.parameters()) == params
    assert {k: tuple(v.shape) for k, v in state.items()} == expected_shapes(cfg)


def test_small_config_validation():
    assert TINY.to_dict() == get_config("tiny").to_dict()
    assert get_config("tiny") is not TINY
    with pytest.raises(ValueError, match="in_mult 16"):
        small_config([(False, 4, 4), (True, 4, 2), (False, 2, 2), (True, 2, 1)])
    with pytest.raises(ValueError, match="out_mult 1"):
        small_config([(False, 16, 8), (True, 8, 4)], attention_layer_position=2)
    with pytest.raises(ValueError, match="half"):
        small_config([(False, 16, 4), (True, 4, 2), (True, 2, 1)], attention_layer_position=3)
    with pytest.raises(ValueError, match="C//8"):
        small_config([(False, 16, 8), (True, 8, 4), (True, 4, 2), (True, 2, 1)], ch=3,
                     attention_layer_position=3)
    with pytest.raises(ValueError):
        get_config("biggan-deep-64")


# ---------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_saved_checkpoint_has_documented_layout(name, checkpoints):
    cfg = SMALL_CONFIGS[name]
    directory = checkpoints[name]
    assert sorted(p.name for p in directory.iterdir()) == ["config.json", "pytorch_model.bin"]
    state = torch.load(directory / "pytorch_model.bin", map_location="cpu", weights_only=True)
    assert {k: tuple(v.shape) for k, v in state.items()} == expected_shapes(cfg)
    assert all(v.dtype == torch.float32 for v in state.values())
    text = (directory / "config.json").read_text(encoding="utf-8")
    assert text == cfg.to_json_string()
    assert json.loads(text) == cfg.to_dict()


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_from_pretrained_reproduces_outputs_exactly(name, models, checkpoints):
    model = models[name]
    loaded = BigGAN.from_pretrained(str(checkpoints[name]))
    assert loaded.training  # the package returns train mode ...
    loaded.eval()  # ... and SN would update its buffers on every call
    assert loaded.config.to_dict() == model.config.to_dict()
    for t in (0.4, 0.73):
        z, y = _inputs(model.config, 5, t, seed=3)
        img_a, pr_a = reference_forward(model, z, y, t)
        img_b, pr_b = reference_forward(loaded, z, y, t)
        assert np.array_equal(img_a, img_b)
        assert list(pr_a) == list(pr_b)
        for site in pr_a:
            for key in ("gamma", "beta"):
                assert np.array_equal(pr_a[site][key], pr_b[site][key])
    again = load_checkpoint(checkpoints[name])
    assert not again.training
    assert np.array_equal(img_a, reference_forward(again, z, y, 0.73)[0])


def test_random_biggan_is_deterministic_and_leaves_global_rng(tmp_path, capsys):
    rng = torch.random.get_rng_state()
    a = random_biggan(TINY, seed=3).state_dict()
    assert torch.equal(rng, torch.random.get_rng_state())
    b = random_biggan(TINY, seed=3).state_dict()
    c = random_biggan(TINY, seed=4).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["generator.gen_z.weight_orig"], c["generator.gen_z.weight_orig"])
    # CLI writes the same checkpoint
    assert main(["--config", "tiny", "--seed", "3", "--out", str(tmp_path / "cli")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["keys"] == len(a)
    cli = torch.load(tmp_path / "cli" / "pytorch_model.bin", weights_only=True)
    assert all(torch.equal(a[k], cli[k]) for k in a)


# ---------------------------------------------------------------- weights are sensible


def test_spectral_norm_vectors_are_converged(models):
    model = models["tiny"]
    for name, mod in model.named_modules():
        if not hasattr(mod, "weight_orig"):
            continue
        w = mod.weight_orig.detach().reshape(mod.weight_orig.shape[0], -1).double()
        u, v = mod.weight_u.double(), mod.weight_v.double()
        sigma_eval = float(u @ (w @ v))
        sigma = float(torch.linalg.matrix_norm(w, ord=2))
        assert sigma_eval == pytest.approx(sigma, rel=1e-5), name
        # a train-mode power iteration would leave them (nearly) unchanged
        v1 = torch.nn.functional.normalize(w.t() @ u, dim=0)
        u1 = torch.nn.functional.normalize(w @ v1, dim=0)
        assert torch.allclose(u1, u, atol=1e-5) and torch.allclose(v1, v, atol=1e-5), name


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_bn_statistics_vary_by_truncation_row(name, models):
    model = models[name]
    for _, mod in model.named_modules():
        if hasattr(mod, "running_vars"):
            assert (mod.running_vars > 0).all()
            assert (mod.running_vars[1:] != mod.running_vars[:-1]).any(dim=1).all()
            assert (mod.running_means[1:] != mod.running_means[:-1]).any(dim=1).all()
    for _, mod in model.named_modules():
        if hasattr(mod, "gamma") and isinstance(mod.gamma, torch.nn.Parameter):
            assert abs(mod.gamma.detach().item()) > 0.1
    # same z, neighbouring truncations: only the interpolated statistics differ
    z, y = _inputs(model.config, 4, 0.4, seed=1)
    a = reference_forward(model, z, y, 0.4)[0]
    b = reference_forward(model, z, y, 0.41)[0]
    assert np.abs(a - b).max() > 1e-3


@pytest.mark.parametrize("name", CONFIG_NAMES)
@pytest.mark.parametrize("truncation", [0.02, 0.4, 1.0])
def test_forward_is_finite_and_not_saturated(name, truncation, models):
    model = models[name]
    cfg = model.config
    z, y = _inputs(cfg, 16, truncation, seed=2)
    img, _ = reference_forward(model, z, y, truncation)
    assert img.shape == (16, 3, cfg.output_dim, cfg.output_dim)
    assert img.dtype == np.float32
    assert np.isfinite(img).all()
    assert 0.1 < img.std() < 0.85
    assert (np.abs(img) > 0.99).mean() < 0.15
    assert img.std(axis=0).mean() > 0.1  # samples differ


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_probes(name, models):
    model = models[name]
    cfg = model.config
    z, y = _inputs(cfg, 16, 0.5, seed=4)
    _, probes = reference_forward(model, z, y, 0.5)
    sites = expected_sites(cfg)
    assert [(n, p["gamma"].shape[1]) for n, p in probes.items()] == sites
    assert [n for n, _ in conditional_bn_sites(model)] == [n for n, _ in sites]
    c = torch.cat([torch.from_numpy(z), model.embeddings(y)], 1)  # z first, then class
    mods = dict(model.named_modules())
    gammas = []
    for site, p in probes.items():
        assert p["gamma"].shape == p["beta"].shape == p["t"].shape == (16, mods[site].num_features)
        with torch.no_grad():
            assert np.array_equal(p["gamma"], (1 + mods[site].scale(c)).numpy())
            assert np.array_equal(p["beta"], mods[site].offset(c).numpy())
        np.testing.assert_array_equal(p["t"], -p["beta"] / p["gamma"])
        gammas.append(p["gamma"])
    gammas = np.concatenate(gammas, 1)
    assert (gammas <= 0).any()  # the gamma <= 0 branch is exercised
    assert (gammas <= 0).mean() < 0.05


# ---------------------------------------------------------------- torch awareness baseline


def numpy_awareness(state, sites, z, classes):
    """Per-class, per-sample loop in float64 numpy from the state dict (eval-mode SN)."""
    emb = state["embeddings.weight"].double().numpy()
    maps = []
    for site in sites:
        pair = []
        for part in ("scale", "offset"):
            w = state[f"{site}.{part}.weight_orig"].double().numpy()
            u = state[f"{site}.{part}.weight_u"].double().numpy()
            v = state[f"{site}.{part}.weight_v"].double().numpy()
            pair.append(w / (u @ (w @ v)))
        maps.append(pair)
    cat, lat, flip, gmin = [], [], [], []
    for k in classes:
        ts, gs = [], []
        for n in range(z.shape[0]):
            c = np.concatenate([z[n].astype(np.float64), emb[:, k]])
            g = np.concatenate([1.0 + ws @ c for ws, _ in maps])
            b = np.concatenate([wo @ c for _, wo in maps])
            ts.append(-b / g)
            gs.append(g)
        t, g = np.array(ts), np.array(gs)
        cat.append(-t.mean(0))
        lat.append(t.var(0))
        flip.append((g <= 0).mean(0))
        gmin.append(np.abs(g).min(0))
    return tuple(np.array(a) for a in (cat, lat, flip, gmin))


@pytest.mark.parametrize("name", ["tiny", "tiny_late_attn"])
def test_torch_awareness_matches_per_sample_loop(name, models):
    model = models[name]
    cfg = model.config
    classes = [3, 0, cfg.num_classes - 1, 1]
    n, trunc, seed = 12, 0.6, 5
    sites = [s for s, _ in expected_sites(cfg)]
    z = truncated_noise_sample(n, cfg.z_dim, trunc, seed)

    # float64 copy of the model: the straightforward torch code vs the numpy loop, tight
    m64 = copy.deepcopy(model).double()
    res64 = torch_awareness(m64, classes, n, trunc, seed)
    cat, lat, flip, gmin = numpy_awareness(m64.state_dict(), sites, z, classes)
    assert res64.site_names == sites
    assert res64.site_channels == [c for _, c in expected_sites(cfg)]
    total = sum(res64.site_channels)
    for arr in (res64.category, res64.latent, res64.flip):
        assert arr.shape == (len(classes), total)
    np.testing.assert_allclose(res64.category, cat, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(res64.latent, lat, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(res64.flip, flip, rtol=1e-6, atol=0)  # .float(): k/n in float32
    assert flip.max() > 0  # some channel flips for some latent

    # the float32 model (what the benchmark runs): float32 rounding is amplified by 1/|gamma|,
    # so compare where gamma stays away from 0
    model.train()  # the mode is restored afterwards
    res = torch_awareness(model, classes, n, trunc, seed)
    assert model.training
    model.eval()
    assert res.category.dtype == np.float32
    ok = gmin > 0.05
    assert ok.mean() > 0.9
    scale = np.abs(cat[ok]).mean()
    np.testing.assert_allclose(res.category[ok], cat[ok], rtol=1e-4, atol=1e-5 * scale)
    np.testing.assert_allclose(res.latent[ok], lat[ok], rtol=1e-3, atol=1e-6 * lat[ok].mean())
    safe = gmin > 1e-4
    np.testing.assert_allclose(res.flip[safe], flip[safe], rtol=1e-6, atol=0)  # k/n in float32


def test_torch_images_per_second(models):
    out = torch_images_per_second(models["tiny"], batch=2, truncation=0.4, repeats=2)
    assert out["batch"] == 2 and out["repeats"] == 2 and len(out["times_s"]) == 2
    assert out["best"] >= out["median"] > 0
    assert out["resolution"] == TINY.output_dim
