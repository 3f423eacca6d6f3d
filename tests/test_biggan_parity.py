"""The original BigGAN family against the PyTorch reference of BigGAN-PyTorch's generator.

Random-weight models are saved in the real file format (``G_ema.pth`` + ``state_dict.pth``,
or a TF-Hub-converter ``biggan-{res}.pth``), converted through the same path as real
weights (``jaxaware convert``), and compared with ``convert.biggan_pytorch_reference``:
images within 1e-4 (max abs, float32), probes within 1e-5 relative, block outputs, per-block
conditions and soft labels; and the full 128 px release architecture at batch 1.
"""

from __future__ import annotations

import functools
import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from convert import biggan_pytorch_reference as R  # noqa: E402
from convert import convert  # noqa: E402
from jaxaware.cli import main  # noqa: E402
from jaxaware.errors import JaxawareError  # noqa: E402
from jaxaware.generate import generate  # noqa: E402
from jaxaware.model import load  # noqa: E402
from jaxaware.models.layers import Capture  # noqa: E402
from jaxaware.sites import block_sites, site_table  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

IMAGE_ATOL = 1e-4
PROBE_RTOL = 1e-5


@functools.lru_cache(maxsize=None)
def _reference(name: str, seed: int = 0) -> R.BigGANGenerator:
    return R.random_generator(name, seed)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """``{name: (torch model, jaxaware model, checkpoint dir)}`` for every tiny config."""
    out = {}
    for name in R.TINY_CONFIG_NAMES:
        root = tmp_path_factory.mktemp(name)
        G = _reference(name)
        R.save_checkpoint_dir(G, name, root / "ckpt")
        convert(str(root / "ckpt"), str(root / "weights"))
        out[name] = (G, load(str(root / "weights")), root / "ckpt")
    return out


def _latents(G, batch, seed):
    return np.random.RandomState(seed).standard_normal((batch, G.dim_z)).astype(np.float32)


def _assert_probes(ours, theirs):
    assert list(ours) == list(theirs)
    for name in theirs:
        for key in ("gamma", "beta"):
            want, got = theirs[name][key], np.asarray(ours[name][key])
            assert np.abs(got - want).max() <= PROBE_RTOL * np.abs(want).max(), (name, key)
        # t = -beta / gamma where the gain is not tiny (elsewhere t amplifies rounding).
        gamma = theirs[name]["gamma"]
        ok = np.abs(gamma) > 0.05
        t_want, t_got = theirs[name]["t"][ok], np.asarray(ours[name]["t"])[ok]
        assert np.abs(t_got - t_want).max() <= PROBE_RTOL * max(1.0, np.abs(t_want).max()), name


@pytest.mark.parametrize("name", R.TINY_CONFIG_NAMES)
def test_images_probes_and_block_outputs(converted, name):
    G, model, _ = converted[name]
    z = _latents(G, 4, seed=1)
    classes = np.arange(4) % G.n_classes
    ref = R.probe_forward(G, z, R.class_condition(G, classes))
    capture = Capture(probes=True, block_outputs=True)
    images, captured = generate(model, z, classes, 1.0, capture=capture)
    assert np.abs(np.asarray(images) - ref.image).max() <= IMAGE_ATOL
    assert ref.image.std() > 0.1  # a non-trivial image, not a constant
    _assert_probes({k: v for k, v in captured.items() if ".bn" in k}, ref.probes)
    for s in block_sites(model.config):
        want, got = ref.blocks[s.name], np.asarray(captured[s.name]["features"])
        assert np.abs(got - want).max() <= 1e-4 * max(1.0, np.abs(want).max()), s.name


@pytest.mark.parametrize("name", [n for n in R.TINY_CONFIG_NAMES if "flat" not in n] +
                         ["tiny-64-shared-flat"])
def test_soft_labels(converted, name):
    G, model, _ = converted[name]
    z = _latents(G, 2, seed=2)
    weights = np.random.RandomState(3).dirichlet(np.ones(G.n_classes), size=2).astype(np.float32)
    ref = R.probe_forward(G, z, R.class_condition(G, weights))
    images, captured = generate(model, z, weights, 1.0, capture=Capture())
    assert np.abs(np.asarray(images) - ref.image).max() <= IMAGE_ATOL
    _assert_probes(captured, ref.probes)


@pytest.mark.parametrize("name", R.TINY_CONFIG_NAMES)
def test_per_block_conditions(converted, name):
    """Block i conditioned on its own class (style mixing), against the reference's
    forward with per-block conditions."""
    G, model, _ = converted[name]
    z = _latents(G, 2, seed=4)
    nb, k = model.config.n_blocks, model.config.num_classes
    per_block = np.random.RandomState(5).randint(0, k, size=(2, nb))
    ys = [R.class_condition(G, per_block[:, i]) for i in range(nb)]
    ref = R.probe_forward(G, z, ys)
    vectors = np.eye(k, dtype=np.float32)[per_block]  # [B, n_blocks, K]
    images, captured = generate(model, z, vectors, 1.0, capture=Capture())
    assert np.abs(np.asarray(images) - ref.image).max() <= IMAGE_ATOL
    _assert_probes(captured, ref.probes)


def test_release_architecture_at_batch_1(tmp_path):
    """The full BigGAN_ch96_bs256x8_138k architecture (128 px, 5 blocks, ch 96)."""
    G = R.random_generator("biggan-128-138k", seed=0, calib_batch=2)
    R.save_checkpoint_dir(G, "biggan-128-138k", tmp_path / "ckpt")
    convert(str(tmp_path / "ckpt"), str(tmp_path / "weights"))
    model = load(str(tmp_path / "weights"))
    assert [s.channels for s in site_table(model.config)] == [
        1536, 1536, 1536, 768, 768, 384, 384, 192, 192, 96]
    z = _latents(G, 1, seed=6)
    ref = R.probe_forward(G, z, R.class_condition(G, np.array([207])))
    images, captured = generate(model, z, np.array([207]), 1.0, capture=Capture())
    assert np.abs(np.asarray(images) - ref.image).max() <= IMAGE_ATOL
    _assert_probes(captured, ref.probes)


def test_tfhub_file_with_preset_or_config(tmp_path):
    """A TF-Hub converter output (``biggan-32.pth``, no sv entries, no training state)
    converts with --config FILE.json; without it, the error names the options."""
    name = "tiny-32-hier"
    G = _reference(name)
    path = R.save_tfhub_file(G, tmp_path / "hub")
    with pytest.raises(JaxawareError, match="has no state_dict.pth with a 'config' entry"):
        convert(str(path), str(tmp_path / "w0"))
    assert not os.path.exists(tmp_path / "w0")
    config_file = tmp_path / "arch.json"
    config_file.write_text(json.dumps(R.get_config(name) | {"G_activation": "relu",
                                                            "D_activation": "relu"}))
    convert(str(path), str(tmp_path / "w"), config_file=str(config_file))
    z = _latents(G, 2, seed=7)
    ref = R.probe_forward(G, z, R.class_condition(G, np.array([0, 3])))
    images = generate(load(str(tmp_path / "w")), z, np.array([0, 3]), 1.0)
    assert np.abs(np.asarray(images) - ref.image).max() <= IMAGE_ATOL


def test_awareness_matches_reference_probes(converted):
    """Awareness of a hier model from the JAX kernel equals mean/var of the reference's
    probes over the same latents."""
    from jaxaware.awareness import compute_awareness

    G, model, _ = converted["tiny-32-hier"]
    z = _latents(G, 64, seed=8)
    aw = compute_awareness(model, classes=[1, 2], latents=z)
    for row, k in enumerate([1, 2]):
        ref = R.probe_forward(G, z, R.class_condition(G, np.full(64, k)))
        t = np.concatenate([ref.probes[s.name]["t"] for s in site_table(model.config)], 1)
        ok = (np.abs(np.concatenate([ref.probes[s.name]["gamma"]
                                     for s in site_table(model.config)], 1)) > 0.05).all(0)
        np.testing.assert_allclose(aw.category[row][ok], -t.mean(0)[ok], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(aw.latent[row][ok], t.var(0)[ok], rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("name", R.TINY_CONFIG_NAMES)
def test_site_reference_names_are_the_reference_modules(converted, name):
    """Every site's ``reference_name`` is its module in the BigGAN-PyTorch generator (where
    a PyTorch forward hook goes, as benchmarks/bench_response.py's baseline does), and a
    hook zeroing a channel of a CCBN module there gives jaxaware's ``flat_zero`` image."""
    from jaxaware.interventions import flat_zero

    G, model, _ = converted[name]
    ccbns = dict(G.ccbns())
    sites = site_table(model.config)
    assert [s.reference_name for s in sites] == [
        f"blocks.{i}.0.bn{k}" for i in range(G.n_blocks) for k in (1, 2)]  # fmt: skip
    for s in sites:
        module = G.get_submodule(s.reference_name)
        assert module is ccbns[s.name] and module.output_size == s.channels, s.name
    for s in block_sites(model.config):
        module = G.get_submodule(s.reference_name)
        assert module is G.blocks[s.block][0] and module.out_channels == s.channels, s.name
    z = _latents(G, 2, seed=9)
    classes = np.array([0, 1])
    for site in (sites[1], sites[-1]):
        c = site.channels // 2

        def zero(mod, args, out, c=c):
            out = out.clone()
            out[:, c] = 0.0
            return out

        handle = G.get_submodule(site.reference_name).register_forward_hook(zero)
        try:
            want = R.probe_forward(G, z, R.class_condition(G, classes)).image
        finally:
            handle.remove()
        edit = flat_zero(model.config, [site.offset + c])
        got = np.asarray(generate(model, z, classes, 1.0, interventions=edit))
        assert np.abs(got - want).max() <= IMAGE_ATOL, site.name
        assert np.abs(np.asarray(generate(model, z, classes, 1.0)) - want).max() > 1e-3


def test_to_pytorch_config_builds_the_same_architecture(converted):
    """``BigGANConfig.to_pytorch_config`` inverts ``from_pytorch_config``: a reference
    generator built from it has the checkpoint's keys and shapes (what bench_response's
    random-weight baseline relies on); statistic rows have no counterpart."""
    import dataclasses
    import re

    from jaxaware.models import BigGANConfig
    from jaxaware.models.biggan import PRESETS

    for name in R.TINY_CONFIG_NAMES:
        G, model, _ = converted[name]
        cfg = model.config
        train = cfg.to_pytorch_config()
        assert BigGANConfig.from_pytorch_config(train) == cfg, name
        built = R.build_generator(train).state_dict()
        # num_G_SVs > 1 only adds u1, sv1, ... buffers the eval forward never uses.
        first = {k: v.shape for k, v in G.state_dict().items()
                 if not re.search(r"\.(u|sv)[1-9]\d*$", k)}  # fmt: skip
        assert {k: v.shape for k, v in built.items()} == first, name
        rows = dataclasses.replace(cfg, n_stats=3, stats_truncations=(0.5, 0.7))
        assert rows.to_pytorch_config() == train
    for name, cfg in PRESETS.items():
        assert BigGANConfig.from_pytorch_config(cfg.to_pytorch_config()) == cfg, name
    unshared = BigGANConfig(32, 4, 16, 0, False, False, (), 5)
    back = BigGANConfig.from_pytorch_config(unshared.to_pytorch_config())
    assert back == dataclasses.replace(unshared, shared_dim=16)  # unused; read as dim_z
    assert unshared.to_pytorch_config()["G_attn"] == "0"


# --------------------------------------------------------------------------------------
# The CLI round trip, and bad checkpoints
# --------------------------------------------------------------------------------------


def test_cli_sites_sample_awareness(converted, tmp_path, capsys):
    _, model, ckpt = converted["tiny-64-hier"]
    weights = tmp_path / "w"
    assert main(["convert", str(ckpt), str(weights)]) == 0
    assert capsys.readouterr().out == f"wrote {weights}\n"
    assert main(["sites", str(weights)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("BigGAN, 64x64: CCBN sites")
    assert out[-1] == f"8 sites, {sum(s.channels for s in site_table(model.config))} channels"
    assert main(["sample", str(weights), "--classes", "0,1", "--per-class", "2",
                 "--out", str(tmp_path / "s.png"), "--quiet"]) == 0
    assert main(["awareness", str(weights), "--num-latents", "16", "--out",
                 str(tmp_path / "a.npz"), "--quiet"]) == 0
    assert sorted(os.listdir(tmp_path)) == ["a.npz", "s.png", "w"]


def test_sites_of_the_paper_model(capsys):
    assert main(["sites", "biggan-256"]) == 0
    lines = capsys.readouterr().out.splitlines()
    widths = [int(line.split()[2]) for line in lines[3:-1]]
    assert [line.split()[0] for line in lines[3:-1]] == [f"L{i}" for i in range(12)]
    assert widths == [1536, 1536, 1536, 768, 768, 768, 768, 384, 384, 192, 192, 96]


def _state_dir(tmp_path, name="tiny-32-hier", edit=None, config=True):
    G = _reference(name)
    d = tmp_path / "ckpt"
    R.save_checkpoint_dir(G, name, d)
    if edit is not None:
        state = torch.load(d / "G_ema.pth", weights_only=True)
        edit(state)
        torch.save(state, d / "G_ema.pth")
    if not config:
        os.remove(d / "state_dict.pth")
    return d


def _fails(tmp_path, message, **kwargs):
    d = kwargs.pop("ckpt")
    out = tmp_path / "out"
    with pytest.raises(JaxawareError) as e:
        convert(str(d), str(out), **kwargs)
    assert str(e.value) == message
    assert not os.path.exists(out)
    assert sorted(os.listdir(tmp_path)) == ["ckpt"]


def test_missing_extra_and_wrong_shape_keys(tmp_path):
    d = _state_dir(tmp_path, edit=lambda s: s.pop("blocks.1.0.conv1.weight"))
    _fails(tmp_path, "checkpoint is missing 'blocks.1.0.conv1.weight' (expected shape "
           "[16, 16, 3, 3]); is it a BigGAN (BigGAN-PyTorch) checkpoint of this config?", ckpt=d)


def test_extra_key(tmp_path):
    d = _state_dir(tmp_path, edit=lambda s: s.update({"blocks.9.0.conv1.weight": torch.ones(1)}))
    _fails(tmp_path, "checkpoint has unexpected key 'blocks.9.0.conv1.weight'; it does not fit "
           "this config", ckpt=d)


def test_wrong_shape(tmp_path):
    d = _state_dir(tmp_path, edit=lambda s: s.update({"output_layer.0.gain": torch.ones(5)}))
    _fails(tmp_path, "checkpoint tensor 'output_layer.0.gain' has shape [5]; this config "
           "expects [16]", ckpt=d)


def test_degenerate_spectral_norm_vector(tmp_path):
    d = _state_dir(tmp_path, edit=lambda s: s["linear.u0"].zero_())
    _fails(tmp_path, "checkpoint linear: spectral norm from its u0 is 0.0; the stored vector is "
           "degenerate (all zeros?) and the weight would become infinite", ckpt=d)


def test_state_dict_without_config_and_no_preset(tmp_path):
    d = _state_dir(tmp_path, config=False)
    _fails(tmp_path, f"{d} has no state_dict.pth with a 'config' entry, so its architecture is "
           "unknown; give --preset (biggan-128-138k, biggan-128, biggan-256, biggan-512) or "
           "--config FILE.json", ckpt=d)


def test_family_and_preset_must_agree(tmp_path):
    d = _state_dir(tmp_path)
    _fails(tmp_path, f"{d} holds a BigGAN checkpoint but preset 'biggan-deep-128' is a "
           "BigGAN-deep architecture; give a preset of the checkpoint's family "
           "(biggan-128-138k, biggan-128, biggan-256, biggan-512)", ckpt=d,
           preset="biggan-deep-128")


def test_deep_checkpoint_with_a_biggan_preset(tmp_path):
    from convert.reference import SMALL_CONFIGS, random_biggan, save_checkpoint

    d = tmp_path / "ckpt"
    save_checkpoint(random_biggan(SMALL_CONFIGS["tiny"], seed=0), None, d)
    _fails(tmp_path, f"{d} holds a BigGAN-deep checkpoint but preset 'biggan-256' is a BigGAN "
           "architecture; give a preset of the checkpoint's family (biggan-deep-128, "
           "biggan-deep-256, biggan-deep-512)", ckpt=d, preset="biggan-256")


def test_preset_of_the_wrong_size(tmp_path):
    d = _state_dir(tmp_path)
    with pytest.raises(JaxawareError, match="^checkpoint tensor 'shared.weight' has shape"):
        convert(str(d), str(tmp_path / "out"), preset="biggan-128")
    assert not os.path.exists(tmp_path / "out")


def test_standing_stats_rows(converted, tmp_path, capsys):
    """`jaxaware standing-stats` adds one row per truncation; a truncation with a row uses
    it, any other the stored row 0; the first CCBN's row is the batch moments of the linear
    layer's output over the same latents (computed here by hand)."""
    import jax

    from jaxaware.train.standing import base_latents

    _, model, ckpt = converted["tiny-32-hier"]
    weights = tmp_path / "w"
    assert main(["convert", str(ckpt), str(weights)]) == 0
    before = load(str(weights))
    z = np.random.RandomState(11).standard_normal((2, before.config.z_dim)).astype(np.float32)
    classes = np.array([0, 1])
    at = {t: np.asarray(generate(before, 0.5 * z, classes, t)) for t in (0.5, 0.7)}
    assert main(["standing-stats", str(weights), "--truncation", "0.5,1.0", "--batches", "1",
                 "--batch-size", "8", "--quiet"]) == 0
    assert capsys.readouterr().out.endswith(
        "standing statistics at truncation 0.5, 1.0 (and the stored row 0)\n")
    after = load(str(weights))
    cfg = after.config
    assert (cfg.n_stats, cfg.stats_truncations) == (3, (0.5, 1.0))
    np.testing.assert_array_equal(np.asarray(generate(after, 0.5 * z, classes, 0.7)), at[0.7])
    assert np.abs(np.asarray(generate(after, 0.5 * z, classes, 0.5)) - at[0.5]).max() > 1e-4

    base = np.asarray(base_latents(cfg, jax.random.fold_in(jax.random.PRNGKey(0), 0),
                                   (8, cfg.z_dim)))
    z0 = (0.5 * base)[:, : cfg.z_chunk]
    p = after.params["linear"]
    h = (z0 @ p["kernel"] + p["bias"]).reshape(8 * 16, -1)
    stats = after.variables["stats"]["block0"]["bn1"]
    np.testing.assert_allclose(stats["mean"][1], h.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(stats["var"][1], h.var(0, ddof=1), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(stats["mean"][0], before.variables["stats"]["block0"]["bn1"]
                                  ["mean"][0])
