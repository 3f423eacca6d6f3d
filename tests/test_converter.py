"""The strict checkpoint converter (convert/biggan_deep.py) on random reference checkpoints.

The checkpoint is ``random_biggan(SMALL_CONFIGS['tiny'])`` saved in the real
``pytorch_pretrained_biggan`` format (pytorch_model.bin + config.json). Broken copies are
made by editing its state dict and re-saving it with ``torch.save``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("pytorch_pretrained_biggan")

from convert.biggan_deep import convert  # noqa: E402
from convert.reference import SMALL_CONFIGS, random_biggan, save_checkpoint  # noqa: E402
from jaxaware.model import load  # noqa: E402
from jaxaware.errors import JaxawareError  # noqa: E402

TINY = SMALL_CONFIGS["tiny"]  # ch 8, z_dim 16, 10 classes, attention before block 2


def raises(message):
    """pytest.raises for a JaxawareError with exactly this message."""
    return pytest.raises(JaxawareError, match="^" + re.escape(message) + "$")


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


@pytest.fixture(scope="module")
def reference():
    torch.set_num_threads(1)
    return random_biggan(TINY, seed=0)


@pytest.fixture(scope="module")
def ckpt(reference, tmp_path_factory):
    return str(save_checkpoint(reference, TINY, tmp_path_factory.mktemp("ref") / "ckpt"))


@pytest.fixture(scope="module")
def converted(ckpt, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("conv") / "weights")
    assert convert(ckpt, out) is not None
    return out


def state_dict(ckpt):
    return torch.load(os.path.join(ckpt, "pytorch_model.bin"), weights_only=True)


def broken_copy(ckpt, folder, state=None, config_text=None):
    """A checkpoint directory in ``folder`` with a replaced state dict and/or config.json."""
    src = os.path.join(str(folder), "src")
    os.makedirs(src)
    if state is None:
        shutil.copy(os.path.join(ckpt, "pytorch_model.bin"), src)
    else:
        torch.save(state, os.path.join(src, "pytorch_model.bin"))
    if config_text is None:
        shutil.copy(os.path.join(ckpt, "config.json"), src)
    else:
        with open(os.path.join(src, "config.json"), "w") as f:
            f.write(config_text)
    return src


def assert_fails_cleanly(src, tmp_path, message):
    """Conversion raises ``message`` exactly; nothing at the out path or beside it."""
    parent = tmp_path / "out"
    parent.mkdir()
    out = parent / "weights"
    with raises(message):
        convert(src, str(out))
    assert not os.path.lexists(out)
    assert os.listdir(parent) == []  # no leftover temporary directories either


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# --------------------------------------------------------------------------------------------
# A good checkpoint
# --------------------------------------------------------------------------------------------


def test_intact_checkpoint_converts(converted, ckpt, reference):
    assert sorted(os.listdir(converted)) == ["config.json", "params.npz"]
    model = load(converted)
    ref_cfg = reference.config
    cfg = model.config
    assert [list(layer) for layer in cfg.layers] == [list(layer) for layer in ref_cfg.layers]
    assert (cfg.z_dim, cfg.channel_width, cfg.num_classes, cfg.attention_layer_position) == (
        ref_cfg.z_dim, ref_cfg.channel_width, ref_cfg.num_classes, 2
    )  # fmt: skip
    assert model.model_id == "ckpt"  # the checkpoint directory's name
    sd = {k: v.numpy() for k, v in reference.state_dict().items()}
    p, s = model.variables["params"], model.variables["stats"]
    # Unnormalised tensors are copied (transposed where the layout differs):
    np.testing.assert_array_equal(p["embedding"], sd["embeddings.weight"].T)  # [in, out]
    # block 2 comes after the attention module, generator.layers.2, so it is layers.3.
    np.testing.assert_array_equal(
        s["block2"]["bn1"]["mean"], sd["generator.layers.3.bn_1.running_means"]
    )
    np.testing.assert_array_equal(
        s["block1"]["bn3"]["var"], sd["generator.layers.1.bn_3.running_vars"]
    )
    np.testing.assert_array_equal(p["attention"]["gamma"], sd["generator.layers.2.gamma"][0])
    assert p["attention"]["gamma"].shape == ()
    np.testing.assert_array_equal(p["bn"]["scale"], sd["generator.bn.weight"])
    np.testing.assert_array_equal(p["to_rgb"]["bias"], sd["generator.conv_to_rgb.bias"][:3])


def _torch_eval_weight(module):
    """``module.weight`` as torch's spectral norm computes it in eval mode."""
    return module.weight.detach().numpy().copy()


def test_spectral_norm_matches_torch_eval_weight(converted, reference):
    g = reference.generator
    reference.eval()
    with torch.no_grad():  # an eval forward recomputes every module.weight from u, v
        y = torch.zeros(1, TINY.num_classes)
        y[0, 3] = 1
        reference(torch.zeros(1, TINY.z_dim), y, 0.5)
    p = load(converted).variables["params"]
    # gen_z: torch Linear [out, in] -> kernel [in, out].
    want = _torch_eval_weight(g.gen_z)
    np.testing.assert_allclose(p["gen_z"]["kernel"], want.T, rtol=1e-5, atol=1e-7)
    # conv_to_rgb: sigma over all ch outputs, then RGB only; [O, I, kh, kw] -> [kh, kw, I, O].
    want = _torch_eval_weight(g.conv_to_rgb)[:3].transpose(2, 3, 1, 0)
    np.testing.assert_allclose(p["to_rgb"]["kernel"], want, rtol=1e-5, atol=1e-7)
    # ... and by hand in float64: W / (u . W v) from the stored vectors.
    w = g.conv_to_rgb.weight_orig.detach().numpy().astype(np.float64)
    u = g.conv_to_rgb.weight_u.numpy().astype(np.float64)
    v = g.conv_to_rgb.weight_v.numpy().astype(np.float64)
    sigma = u @ (w.reshape(w.shape[0], -1) @ v)
    assert abs(sigma - 1) > 0.1  # normalisation is not a no-op here
    np.testing.assert_allclose(
        p["to_rgb"]["kernel"], (w / sigma)[:3].transpose(2, 3, 1, 0), rtol=1e-5, atol=1e-7
    )
    # A CCBN gain map: block 0, generator.layers.0.bn_0.scale (Linear [C, cond] -> [cond, C]).
    want = _torch_eval_weight(g.layers[0].bn_0.scale)
    np.testing.assert_allclose(p["block0"]["bn0"]["scale"], want.T, rtol=1e-5, atol=1e-7)


def test_conversion_is_deterministic(ckpt, converted, tmp_path):
    again = tmp_path / "again"
    convert(ckpt, str(again))
    assert sha256(again / "params.npz") == sha256(os.path.join(converted, "params.npz"))
    with open(again / "config.json") as f:
        meta = json.load(f)
    assert meta["params_sha256"] == sha256(again / "params.npz")


def test_corrupted_output_is_rejected_on_load(converted, tmp_path):
    copy = tmp_path / "weights"
    shutil.copytree(converted, copy)
    path = copy / "params.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(JaxawareError, match=r"^" + re.escape(str(path)) + r" is corrupted or "
                       r"truncated: sha256 [0-9a-f]{64} does not match config\.json"):  # fmt: skip
        load(str(copy))


# --------------------------------------------------------------------------------------------
# Broken checkpoints: an exact error, nothing written
# --------------------------------------------------------------------------------------------


def test_missing_key(ckpt, tmp_path):
    state = state_dict(ckpt)
    # block 2 (layers.3) maps width 8 -> 4 with ch 8: input 64, bottleneck 16 channels;
    # the condition vector has 2 * z_dim = 32 entries.
    del state["generator.layers.3.bn_1.scale.weight_orig"]
    src = broken_copy(ckpt, tmp_path, state=state)
    assert_fails_cleanly(
        src, tmp_path,
        "checkpoint is missing 'generator.layers.3.bn_1.scale.weight_orig' (expected shape "
        "[16, 32]); is it a BigGAN-deep checkpoint of this config?",
    )  # fmt: skip


def test_extra_keys(ckpt, tmp_path):
    state = state_dict(ckpt)
    state["generator.extra.weight"] = torch.zeros(3)
    src = broken_copy(ckpt, tmp_path, state=state)
    assert_fails_cleanly(
        src, tmp_path,
        "checkpoint has unexpected key 'generator.extra.weight'; it does not fit this config",
    )  # fmt: skip
    state["generator.another"] = torch.zeros(1)
    src = broken_copy(ckpt, tmp_path / "two", state=state)
    with raises(
        "checkpoint has unexpected key 'generator.another' and 1 more; it does not fit this "
        "config"
    ):
        convert(src, str(tmp_path / "two" / "weights"))


def test_wrong_shape(ckpt, tmp_path):
    state = state_dict(ckpt)
    state["generator.bn.weight"] = torch.ones(9)  # the final BN has ch = 8 channels
    src = broken_copy(ckpt, tmp_path, state=state)
    assert_fails_cleanly(
        src, tmp_path,
        "checkpoint tensor 'generator.bn.weight' has shape [9]; this config expects [8]",
    )  # fmt: skip


def test_truncated_weights_file(ckpt, tmp_path):
    src = broken_copy(ckpt, tmp_path)
    weights = os.path.join(src, "pytorch_model.bin")
    size = os.path.getsize(weights)
    with open(weights, "r+b") as f:
        f.truncate(size // 2)
    parent = tmp_path / "out"
    parent.mkdir()
    with pytest.raises(JaxawareError) as e:
        convert(src, str(parent / "weights"))
    message = str(e.value)
    assert message.startswith(f"cannot read {weights} as a PyTorch state dict (")
    assert message.endswith("); is the file complete?")
    assert "\n" not in message
    assert os.listdir(parent) == []


def test_missing_config_json(ckpt, tmp_path):
    src = broken_copy(ckpt, tmp_path)
    os.remove(os.path.join(src, "config.json"))
    assert_fails_cleanly(
        src, tmp_path,
        f"{src} has no config.json; a checkpoint directory holds pytorch_model.bin and "
        "config.json (as pytorch_pretrained_biggan saves them)",
    )  # fmt: skip


def test_not_a_directory_or_name(tmp_path):
    missing = str(tmp_path / "nowhere")
    assert_fails_cleanly(
        missing, tmp_path,
        f"{missing!r} is neither a directory nor a known model name; give a directory with "
        "pytorch_model.bin and config.json, or one of: biggan-deep-128, biggan-deep-256, "
        "biggan-deep-512",
    )  # fmt: skip


def test_config_that_does_not_match_the_weights(ckpt, tmp_path):
    with open(os.path.join(ckpt, "config.json")) as f:
        config = json.load(f)
    assert config["z_dim"] == 16
    config["z_dim"] = 8
    src = broken_copy(ckpt, tmp_path, config_text=json.dumps(config))
    # The first rule reads the class embedding: [z_dim, num_classes] in torch.
    assert_fails_cleanly(
        src, tmp_path,
        "checkpoint tensor 'embeddings.weight' has shape [16, 10]; this config expects [8, 10]",
    )  # fmt: skip


def test_config_json_not_json(ckpt, tmp_path):
    src = broken_copy(ckpt, tmp_path, config_text="{not json")
    path = os.path.join(src, "config.json")
    assert_fails_cleanly(
        src, tmp_path,
        f"{path} is not valid JSON (Expecting property name enclosed in double quotes); "
        "expected a BigGAN config",
    )  # fmt: skip
