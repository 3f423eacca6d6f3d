"""The original-BigGAN (BigGAN-PyTorch) reference generator and its checkpoint reader.

Expected keys, the spectral-norm step and the CCBN affine maps are written out here from
a reading of BigGAN-PyTorch's ``BigGAN.py`` / ``layers.py``, independently of the module.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import zipfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from convert import biggan_pytorch_reference as R  # noqa: E402
from convert.biggan_pytorch_io import load_train_state, read_checkpoint_dir  # noqa: E402
from jaxaware.errors import JaxawareError  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@functools.lru_cache(maxsize=None)
def _model(name: str, seed: int = 0) -> R.BigGANGenerator:
    """Shared random model: tests that change it work on a deepcopy."""
    return R.random_generator(name, seed)


def _inputs(G, batch=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn((batch, G.dim_z), generator=gen)
    classes = np.arange(batch) % G.n_classes
    return z, classes


def _expected_keys(n_blocks, attn_blocks, shared, n_svs):
    """State-dict keys of BigGAN.Generator, in registration order."""

    def sn(prefix, bias=True):
        out = [f"{prefix}.weight"] + ([f"{prefix}.bias"] if bias else [])
        return out + [x for i in range(n_svs) for x in (f"{prefix}.u{i}", f"{prefix}.sv{i}")]

    keys = (["shared.weight"] if shared else []) + sn("linear")
    for i in range(n_blocks):
        b = f"blocks.{i}.0"
        keys += sn(f"{b}.conv1") + sn(f"{b}.conv2") + sn(f"{b}.conv_sc")
        for bn in ("bn1", "bn2"):
            keys += [f"{b}.{bn}.stored_mean", f"{b}.{bn}.stored_var"]
            for m in ("gain", "bias"):
                keys += sn(f"{b}.{bn}.{m}", bias=False) if shared else [f"{b}.{bn}.{m}.weight"]
        if i in attn_blocks:
            a = f"blocks.{i}.1"
            keys.append(f"{a}.gamma")
            for m in ("theta", "phi", "g", "o"):
                keys += sn(f"{a}.{m}", bias=False)
    keys += [f"output_layer.0.{k}" for k in ("gain", "bias", "stored_mean", "stored_var")]
    return keys + sn("output_layer.2")


TINY_LAYOUT = {  # name: (n_blocks, attention blocks, G_shared, num_G_SVs)
    "tiny-32-hier": (3, {1}, True, 1),
    "tiny-32-flat": (3, set(), False, 1),
    "tiny-64-hier": (4, {1, 2}, True, 2),
    "tiny-64-shared-flat": (4, {2}, True, 1),
}


# --------------------------------------------------------------------------------------
# Structure and strict loading
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", R.TINY_CONFIG_NAMES)
def test_keys_and_strict_load(name):
    G = _model(name)
    state = G.state_dict()
    assert list(state) == _expected_keys(*TINY_LAYOUT[name])
    fresh = R.BigGANGenerator(name)
    fresh.load_state_dict(state, strict=True)
    fresh.eval()
    z, classes = _inputs(G)
    with torch.no_grad():
        a = G(z, R.class_condition(G, classes))
        b = fresh(z, R.class_condition(fresh, classes))
    assert torch.equal(a, b)


def test_shapes_of_tiny_configs():
    s = _model("tiny-64-hier").state_dict()
    # dim_z 22 -> 20 (5 slots x 4); shared_dim 0 -> 22, the un-rounded dim_z.
    assert s["shared.weight"].shape == (7, 22)
    assert s["linear.weight"].shape == (16 * 4 * 16, 4)
    assert s["blocks.0.0.bn1.gain.weight"].shape == (64, 22 + 4)
    assert s["blocks.2.1.theta.weight"].shape == (2, 16, 1, 1)
    assert s["linear.u1"].shape == (1, 1024) and s["linear.sv1"].shape == (1,)
    f = _model("tiny-32-flat").state_dict()
    assert f["blocks.0.0.bn1.gain.weight"].shape == (6, 16)  # nn.Embedding(n_classes, C)
    assert f["linear.weight"].shape == (16 * 16, 12)


def test_release_138k_architecture():
    G = R.build_generator("biggan-128-138k")
    state = G.state_dict()
    assert list(state) == _expected_keys(5, {3}, True, 1)
    shapes = {
        "shared.weight": (1000, 128),
        "linear.weight": (16 * 96 * 16, 20),
        "linear.u0": (1, 16 * 96 * 16),
        "blocks.0.0.bn1.gain.weight": (1536, 148),
        "blocks.0.0.conv1.weight": (1536, 1536, 3, 3),
        "blocks.1.0.conv_sc.weight": (768, 1536, 1, 1),
        "blocks.3.1.theta.weight": (24, 192, 1, 1),
        "blocks.3.1.gamma": (),
        "blocks.4.0.bn2.stored_var": (96,),
        "output_layer.2.weight": (3, 96, 3, 3),
    }
    for key, shape in shapes.items():
        assert tuple(state[key].shape) == shape, key
    assert G.settings["BN_eps"] == 1e-5 and G.settings["SN_eps"] == 1e-6
    assert G.output_layer[0].eps == 1e-5
    tf = R.generator_settings("biggan-256")
    assert (tf["dim_z"], tf["z_chunk_size"], tf["BN_eps"], tf["n_blocks"]) == (140, 20, 1e-4, 6)
    assert R.generator_settings("biggan-512")["z_chunk_size"] == 16
    with torch.no_grad():
        out = G(torch.randn(1, 120), G.shared(torch.tensor([1])))
    assert out.shape == (1, 3, 128, 128) and torch.isfinite(out).all()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"G_shared": False, "hier": True}, "G_shared=False with hier=True is broken"),
        ({"norm_style": "in"}, "norm_style 'in' is not supported"),
        ({"G_param": "SVD"}, "G_param 'SVD' is not supported"),
        ({"mybn": True}, "mybn=True is not supported"),
        ({"resolution": 96}, "resolution 96 has no G_arch entry"),
        ({"G_activation": "elu"}, "G_activation 'elu' is not supported"),
    ],
)
def test_config_refusals(change, message):
    config = {**R.get_config("tiny-32-hier"), **change}
    with pytest.raises(JaxawareError, match=message):
        R.BigGANGenerator(config)


# --------------------------------------------------------------------------------------
# Spectral norm
# --------------------------------------------------------------------------------------


def _np_power_step(W, us, eps):
    """layers.power_iteration in float64 numpy: (svs, new_us)."""

    def normalize(x):
        return x / max(np.linalg.norm(x), eps)

    def gs(x, basis):
        for y in basis:
            x = x - (y @ x.T) * y / (y @ y.T)
        return x

    vs, new_us, svs = [], [], []
    for u in us:
        v = normalize(gs(u @ W, vs))
        vs.append(v)
        u2 = normalize(gs(v @ W.T, new_us))
        new_us.append(u2)
        svs.append((v @ W.T @ u2.T).item())
    return svs, new_us


def test_sn_eval_weight_is_one_step_from_stored_u():
    G = copy.deepcopy(_model("tiny-64-hier"))  # 2 SVs, 2 itrs, SN_eps 1e-8
    eps = G.SN_eps
    rng = np.random.RandomState(0)
    layers = {n: m for n, m in G.sn_modules()}
    chosen = ["linear", "blocks.1.0.conv1", "blocks.0.0.bn1.gain", "blocks.2.1.theta",
              "output_layer.2"]
    for name in chosen:
        mod = layers[name]
        for u in mod.u:  # far from the singular vector: one step, sv0 and sigma all differ
            u.copy_(torch.from_numpy(rng.randn(*u.shape).astype(np.float32)))
        W = mod.weight.detach().double().numpy().reshape(mod.weight.shape[0], -1)
        us = [u.double().numpy() for u in mod.u]
        (sv, _), _ = _np_power_step(W, us, eps)
        got = mod.sn_weight().detach().double().numpy().reshape(W.shape)
        np.testing.assert_allclose(got, W / sv, rtol=2e-5, atol=1e-7, err_msg=name)
        sigma = np.linalg.svd(W, compute_uv=False)[0]
        assert abs(sv / sigma - 1) > 1e-3, name
        assert abs(sv / float(mod.sv0) - 1) > 1e-3, name

    before = {k: v.clone() for k, v in G.state_dict().items()}
    z, classes = _inputs(G)
    with torch.no_grad():
        G(z, R.class_condition(G, classes))
    for k, v in G.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} changed in an eval forward"


def test_sn_train_mode_updates_u_with_gram_schmidt():
    G = copy.deepcopy(_model("tiny-64-hier"))
    mod = dict(G.sn_modules())["blocks.1.0.conv2"]
    rng = np.random.RandomState(1)
    for u in mod.u:
        u.copy_(torch.from_numpy(rng.randn(*u.shape).astype(np.float32)))
    W = mod.weight.detach().double().numpy().reshape(mod.weight.shape[0], -1)
    us = [u.double().numpy() for u in mod.u]
    for _ in range(mod.num_itrs):  # num_G_SV_itrs = 2, each step starts from the last u
        svs, us = _np_power_step(W, us, G.SN_eps)
    mod.train()
    mod.sn_weight()
    for i in range(2):
        np.testing.assert_allclose(getattr(mod, f"u{i}").double().numpy(), us[i], rtol=1e-4,
                                   atol=1e-6)
        np.testing.assert_allclose(float(getattr(mod, f"sv{i}")), svs[i], rtol=1e-4)
    assert abs((us[0] @ us[1].T).item()) < 1e-4  # u1 orthogonalised against u0


# --------------------------------------------------------------------------------------
# Conditions
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", R.TINY_CONFIG_NAMES)
def test_per_block_with_same_y_equals_forward(name):
    G = _model(name)
    z, classes = _inputs(G)
    y = R.class_condition(G, classes)
    with torch.no_grad():
        assert torch.equal(G(z, y), G.forward_per_block(z, [y] * G.n_blocks))


def test_per_block_conditions_reach_their_block():
    G = _model("tiny-64-hier")
    z, _ = _inputs(G)
    per_class = [np.full(4, c) for c in (0, 3, 5, 6)]
    ys = [R.class_condition(G, c) for c in per_class]
    mixed = R.probe_forward(G, z, ys)
    for i, c in enumerate(per_class):
        single = R.probe_forward(G, z, R.class_condition(G, c))
        for k in (1, 2):
            site = f"block{i}.bn{k}"
            assert np.array_equal(mixed.probes[site]["gamma"], single.probes[site]["gamma"])
            assert np.array_equal(mixed.probes[site]["beta"], single.probes[site]["beta"])
    with pytest.raises(ValueError, match="need 4 per-block conditions"):
        G.forward_per_block(z, ys[:3])


def test_hier_ccbn_uses_y_then_its_own_z_chunk():
    G = _model("tiny-64-hier")
    z, classes = _inputs(G)
    y = R.class_condition(G, classes)
    base = R.probe_forward(G, z, y)
    c = G.z_chunk_size
    # explicit gain of block 0 bn1: 1 + W_sn cat([y, z chunk 1])
    W = G.blocks[0][0].bn1.gain.sn_weight().detach().numpy()
    cond = np.concatenate([y.detach().numpy(), z[:, c:2 * c].numpy()], 1)
    np.testing.assert_allclose(base.probes["block0.bn1"]["gamma"], 1 + cond @ W.T, rtol=1e-5,
                               atol=1e-5)
    for k in range(G.num_slots):
        z2 = z.clone()
        z2[:, k * c:(k + 1) * c] += 1.0
        moved = R.probe_forward(G, z2, y)
        for i in range(G.n_blocks):
            for s in (1, 2):
                site = f"block{i}.bn{s}"
                same = np.array_equal(moved.probes[site]["gamma"], base.probes[site]["gamma"])
                assert same == (k != i + 1), (k, site)
        assert not np.array_equal(moved.image, base.image)


@pytest.mark.parametrize("name", ["tiny-32-flat", "tiny-64-shared-flat"])
def test_non_hier_ccbn_ignores_z(name):
    G = _model(name)
    z, classes = _inputs(G)
    y = R.class_condition(G, classes)
    a = R.probe_forward(G, z, y)
    b = R.probe_forward(G, 2 * z + 1, y)
    for site in a.probes:
        assert np.array_equal(a.probes[site]["gamma"], b.probes[site]["gamma"])
        assert np.array_equal(a.probes[site]["beta"], b.probes[site]["beta"])
    assert not np.array_equal(a.image, b.image)


def test_unshared_ccbn_is_an_embedding_of_the_class():
    G = _model("tiny-32-flat")
    z, classes = _inputs(G)
    p = R.probe_forward(G, z, R.class_condition(G, classes))
    bn = G.blocks[1][0].bn2
    gamma = 1 + bn.gain.weight.detach().numpy()[classes]
    beta = bn.bias.weight.detach().numpy()[classes]
    assert np.array_equal(p.probes["block1.bn2"]["gamma"], gamma)
    assert np.array_equal(p.probes["block1.bn2"]["beta"], beta)
    np.testing.assert_allclose(p.probes["block1.bn2"]["t"], -beta / gamma, rtol=1e-6)


def test_probe_outputs_and_sensible_random_model():
    G = _model("tiny-32-hier")
    z, classes = _inputs(G, batch=32, seed=3)
    p = R.probe_forward(G, z, R.class_condition(G, classes))
    assert p.image.shape == (32, 32, 32, 3)
    assert list(p.probes) == R.site_names(G) == [
        "block0.bn1", "block0.bn2", "block1.bn1", "block1.bn2", "block2.bn1", "block2.bn2"]
    assert list(p.blocks) == ["block0.out", "block1.out", "block2.out"]
    assert p.blocks["block1.out"].shape == (32, 16, 16, 16)
    # the block output is taken before the attention that follows block 1
    with torch.no_grad():
        y = R.class_condition(G, classes)
        h = G.linear(z[:, :4]).view(32, -1, 4, 4)
        h = G.blocks[0][0](h, torch.cat([y, z[:, 4:8]], 1))
        h = G.blocks[1][0](h, torch.cat([y, z[:, 8:12]], 1))
    np.testing.assert_allclose(p.blocks["block1.out"], h.permute(0, 2, 3, 1).numpy(), atol=1e-6)
    assert 0.15 < p.image.std() < 0.9 and np.abs(p.image).max() < 1
    for out in p.blocks.values():
        assert 0.1 < out.std() < 10
    gammas = np.concatenate([v["gamma"].ravel() for v in p.probes.values()])
    assert 0 < (gammas < 0).mean() < 0.2
    assert float(G.blocks[1][1].gamma.detach()) != 0
    # u is nearly converged: the eval step's sv is close to sigma and to the logged sv0
    lin = G.linear
    W = lin.weight.detach().numpy().reshape(lin.weight.shape[0], -1)
    with torch.no_grad():
        sv = float((lin.weight / lin.sn_weight()).flatten()[0])
    assert 0.8 < sv / float(np.linalg.norm(W, 2)) <= 1.0 + 1e-5
    assert abs(sv / float(lin.sv0) - 1) < 0.05
    assert not torch.equal(G.blocks[0][0].bn1.stored_var, torch.ones(16))


def test_random_generator_is_deterministic():
    a = R.random_generator("tiny-32-flat", 5).state_dict()
    b = R.random_generator("tiny-32-flat", 5).state_dict()
    c = R.random_generator("tiny-32-flat", 6).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["linear.weight"], c["linear.weight"])


# --------------------------------------------------------------------------------------
# Checkpoint directory round trip
# --------------------------------------------------------------------------------------


def _without_activations(config):
    return {k: v for k, v in config.items() if k not in ("G_activation", "D_activation")}


@pytest.mark.parametrize("name, legacy", [("tiny-32-flat", False), ("tiny-32-hier", True)])
def test_directory_round_trip(tmp_path, name, legacy):
    G = _model(name)
    R.save_checkpoint_dir(G, None, tmp_path, also_G=True, legacy_format=legacy,
                          train_state={"itr": 138000, "best_IS": np.float64(98.7)})
    assert sorted(os.listdir(tmp_path)) == ["G.pth", "G_ema.pth", "state_dict.pth"]
    assert zipfile.is_zipfile(tmp_path / "G_ema.pth") != legacy

    state, config, path = read_checkpoint_dir(tmp_path)
    assert path == os.path.join(str(tmp_path), "G_ema.pth")
    ref = G.state_dict()
    assert list(state) == list(ref)
    for k, v in ref.items():
        assert state[k].dtype == np.float32 and np.array_equal(state[k], v.numpy()), k
    assert _without_activations(config) == _without_activations(G.training_config)
    relu = "inplace_relu" if name == "tiny-32-flat" else "relu"
    assert config["G_activation"] == config["D_activation"] == relu
    train = load_train_state(str(tmp_path / "state_dict.pth"))
    assert set(train) == {"itr", "epoch", "save_num", "save_best_num", "best_IS", "best_FID",
                          "config"}
    assert train["itr"] == 138000 and train["best_IS"] == 98.7

    # the config read back is enough to rebuild the model
    G2 = R.load_generator_state(R.build_generator(config), state)
    z, classes = _inputs(G)
    with torch.no_grad():
        assert torch.equal(G(z, R.class_condition(G, classes)),
                           G2(z, R.class_condition(G2, classes)))


def test_state_dict_file_holds_relu_objects(tmp_path):
    G = _model("tiny-32-hier")
    R.save_checkpoint_dir(G, "tiny-32-hier", tmp_path)
    with torch.serialization.safe_globals([torch.nn.ReLU]):
        raw = torch.load(tmp_path / "state_dict.pth", map_location="cpu", weights_only=True)
    assert isinstance(raw["config"]["G_activation"], torch.nn.ReLU)
    assert isinstance(raw["config"]["D_activation"], torch.nn.ReLU)
    assert raw["best_FID"] == 999999 and raw["config"]["G_shared"] is True
    assert len(raw["config"]) > 80  # the whole training-argument dict


def test_torch10_style_legacy_state_dict(tmp_path):
    """A 2019 (torch 1.0, legacy format) state_dict.pth: ReLU objects pickled with their
    source as 'module' records and a ``_backend`` that reduces to a thnn function."""
    from torch.nn.backends import thnn

    class Backend:
        def __reduce__(self):
            return (thnn._get_thnn_function_backend, ())

    relu = torch.nn.ReLU(inplace=True)
    relu._backend = Backend()
    torch.save(_model("tiny-32-hier").state_dict(), tmp_path / "G_ema.pth",
               _use_new_zipfile_serialization=False)
    torch.save({"itr": 1, "best_IS": np.float32(5.5), "config": {"G_activation": relu,
                                                                 "dim_z": 16}},
               tmp_path / "state_dict.pth", _use_new_zipfile_serialization=False)
    _, config, _ = read_checkpoint_dir(tmp_path, require_config=True)
    assert config == {"G_activation": "inplace_relu", "dim_z": 16}


def test_suffixed_copy_and_tfhub_file(tmp_path):
    G = _model("tiny-32-hier")
    R.save_checkpoint_dir(G, None, tmp_path, suffix="best0")
    assert sorted(os.listdir(tmp_path)) == ["G_ema_best0.pth", "state_dict_best0.pth"]
    with pytest.raises(JaxawareError, match="has neither G_ema.pth nor G.pth .*G_ema_best0"):
        read_checkpoint_dir(tmp_path)
    state, config, path = read_checkpoint_dir(tmp_path, weights="G_ema_best0.pth",
                                              require_config=True)
    assert path.endswith("G_ema_best0.pth") and config["hier"] is True

    tf = R.save_tfhub_file(G, tmp_path / "hub")
    assert tf.name == "biggan-32.pth"
    state, config, path = read_checkpoint_dir(tf)
    assert config is None and not any(".sv" in k for k in state)
    assert set(state) == {k for k in G.state_dict() if ".sv" not in k}
    with pytest.raises(JaxawareError, match="missing"):
        R.load_generator_state(R.build_generator("tiny-32-hier"), state)
    G2 = R.load_generator_state(R.build_generator("tiny-32-hier"), state, allow_missing_sv=True)
    z, classes = _inputs(G)
    with torch.no_grad():
        assert torch.equal(G(z, R.class_condition(G, classes)),
                           G2(z, R.class_condition(G2, classes)))


# --------------------------------------------------------------------------------------
# Reader errors and safety
# --------------------------------------------------------------------------------------


class _Evil:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("target", ["state_dict.pth", "G_ema.pth"])
def test_malicious_pickle_is_refused_unexecuted(tmp_path, legacy, target):
    marker = tmp_path / "pwned"
    torch.save(_model("tiny-32-flat").state_dict(), tmp_path / "G_ema.pth")
    payload = {"config": {"G_activation": torch.nn.ReLU(), "x": _Evil(marker)}}
    if target == "G_ema.pth":
        payload = {"linear.weight": torch.zeros(2), "x": _Evil(marker)}
    torch.save(payload, tmp_path / target, _use_new_zipfile_serialization=not legacy)
    with pytest.raises(JaxawareError, match=r"refused for safety: its pickle needs \S*system"):
        read_checkpoint_dir(tmp_path)
    assert not marker.exists()


def test_half_precision_is_upcast(tmp_path):
    ref = _model("tiny-32-flat").state_dict()
    half = {k: (v.half() if i % 2 else v.bfloat16()) for i, (k, v) in enumerate(ref.items())}
    torch.save(half, tmp_path / "G.pth")
    state, config, path = read_checkpoint_dir(tmp_path)
    assert config is None and path.endswith("G.pth")
    for k, v in half.items():
        assert state[k].dtype == np.float32
        assert np.array_equal(state[k], v.float().numpy()), k


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"linear.weight": torch.tensor([1.0, float("nan")])}, "'linear.weight' has non-finite"),
        ({"linear.weight": torch.ones(2), "note": "hello"}, "'note' is a str, not a tensor"),
        ([torch.ones(2)], "holds a list, not a state dict"),
        ({}, "empty state dict"),
    ],
)
def test_bad_weight_entries(tmp_path, payload, message):
    torch.save(payload, tmp_path / "G_ema.pth")
    with pytest.raises(JaxawareError, match=message):
        read_checkpoint_dir(tmp_path)


def test_missing_and_damaged_files(tmp_path):
    with pytest.raises(JaxawareError, match="does not exist; expected a BigGAN-PyTorch"):
        read_checkpoint_dir(tmp_path / "nope")
    with pytest.raises(JaxawareError, match=r"has neither G_ema.pth nor G.pth \(found: no"):
        read_checkpoint_dir(tmp_path)
    with pytest.raises(JaxawareError, match="has no G_ema_copy0.pth"):
        read_checkpoint_dir(tmp_path, weights="G_ema_copy0.pth")

    G = _model("tiny-32-flat")
    R.save_checkpoint_dir(G, None, tmp_path)
    data = (tmp_path / "G_ema.pth").read_bytes()
    (tmp_path / "G_ema.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(JaxawareError, match="cannot read .*G_ema.pth .*truncated"):
        read_checkpoint_dir(tmp_path)
    (tmp_path / "G_ema.pth").write_bytes(data)

    torch.save({"itr": 5}, tmp_path / "state_dict.pth")  # no config entry
    assert read_checkpoint_dir(tmp_path)[1] is None
    with pytest.raises(JaxawareError, match="has no 'config' dict \\(keys: itr\\)"):
        read_checkpoint_dir(tmp_path, require_config=True)
    os.remove(tmp_path / "state_dict.pth")
    assert read_checkpoint_dir(tmp_path)[1] is None
    with pytest.raises(JaxawareError, match="has no state_dict.pth"):
        read_checkpoint_dir(tmp_path, require_config=True)
    (tmp_path / "state_dict.pth").write_bytes(b"not a torch file")
    with pytest.raises(JaxawareError, match="cannot read .*state_dict.pth"):
        read_checkpoint_dir(tmp_path)


def test_cli_writes_a_loadable_directory(tmp_path, capsys):
    assert R.main(["--config", "tiny-32-flat", "--seed", "1", "--out", str(tmp_path)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["output_shape"] == [2, 32, 32, 3]
    state, config, _ = read_checkpoint_dir(tmp_path, require_config=True)
    assert config["n_classes"] == 6 and "blocks.2.0.bn2.gain.weight" in state
