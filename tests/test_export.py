"""Export back to ``pytorch_pretrained_biggan`` (convert/export.py).

A jaxaware model (converted from a random reference checkpoint, or ``init_random`` with
perturbed statistics and attention gamma) is exported, loaded with
``BigGAN.from_pretrained(dir).eval()`` and compared with :func:`jaxaware.generate`
(images 1e-4 max abs, probes 1e-5 relative, the parity tolerances); converting the
export back must give bit-identical variables.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("pytorch_pretrained_biggan")

from pytorch_pretrained_biggan import BigGAN as RefBigGAN  # noqa: E402
from pytorch_pretrained_biggan import BigGANConfig as RefConfig  # noqa: E402

from convert.biggan_deep import WEIGHTS_NAME, convert, sn_sigma  # noqa: E402
from convert.export import export, main, unit_sigma_vectors  # noqa: E402
from convert.reference import (  # noqa: E402
    SMALL_CONFIGS,
    load_checkpoint,
    random_biggan,
    reference_forward,
    save_checkpoint,
)
from jaxaware.generate import generate  # noqa: E402
from jaxaware.model import Model, init_random, load  # noqa: E402
from jaxaware.models import BigGANDeepConfig  # noqa: E402
from jaxaware.errors import JaxawareError  # noqa: E402
from jaxaware.models.layers import Capture  # noqa: E402
from jaxaware.sites import site_table  # noqa: E402
from jaxaware.truncation import truncated_noise  # noqa: E402


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


def _perturbed_random(config: BigGANDeepConfig, seed: int = 0) -> Model:
    """init_random with distinct statistic rows, positive variances and a nonzero gamma."""
    model = init_random(config, seed)
    rng = np.random.default_rng(seed + 100)

    def perturb(path, leaf):
        name = jax.tree_util.keystr(path)
        if "'var'" in name:
            return np.exp(0.3 * rng.standard_normal(leaf.shape)).astype(np.float32)
        if "'mean'" in name:
            return (0.1 * rng.standard_normal(leaf.shape)).astype(np.float32)
        if name.endswith("['gamma']"):
            return np.float32(0.4)
        if name.endswith("['bias']"):
            return (0.05 * rng.standard_normal(leaf.shape)).astype(np.float32)
        return np.asarray(leaf)

    variables = jax.tree_util.tree_map_with_path(perturb, model.variables)
    return dataclasses.replace(model, variables=variables)


def _from_reference(name: str, root) -> Model:
    cfg = SMALL_CONFIGS[name]
    save_checkpoint(random_biggan(cfg, seed=5), cfg, root / "ckpt")
    convert(str(root / "ckpt"), str(root / "weights"))
    return load(str(root / "weights"))


@pytest.fixture(scope="module", params=["tiny", "tiny_late_attn", "random_no_attn"])
def exported(request, tmp_path_factory):
    """(jaxaware model, export directory)."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp(request.param)
    if request.param == "random_no_attn":
        model = _perturbed_random(load_config("tiny_no_attn"), seed=1)
    else:
        model = _from_reference(request.param, root)
    export(model, root / "export")
    return model, root / "export"


def load_config(name: str) -> BigGANDeepConfig:
    return BigGANDeepConfig.from_reference_dict(SMALL_CONFIGS[name].to_dict())


def _inputs(config, truncation, batch=4, seed=0):
    z = truncated_noise(batch, config.z_dim, truncation, seed)
    k = config.num_classes
    y = np.eye(k, dtype=np.float32)[np.random.RandomState(seed).randint(0, k, batch)]
    y[-1] = 0.3 * np.eye(k, dtype=np.float32)[0] + 0.7 * np.eye(k, dtype=np.float32)[k - 1]
    return z, y


@pytest.mark.parametrize("truncation", [1.0, 0.4, 0.73])
def test_exported_model_matches_generate(exported, truncation):
    model, directory = exported
    ref = RefBigGAN.from_pretrained(str(directory)).eval()
    z, y = _inputs(model.config, truncation)
    want, want_probes = reference_forward(ref, z, y, truncation)
    image, probes = generate(model, z, y, truncation, capture=Capture())
    assert np.abs(np.asarray(image) - want.transpose(0, 2, 3, 1)).max() <= 1e-4
    for site in site_table(model.config):
        got, ref_p = probes[site.name], want_probes[site.reference_name]
        for key in ("gamma", "beta"):
            scale = np.abs(ref_p[key]).max()
            assert np.abs(np.asarray(got[key]) - ref_p[key]).max() <= 1e-5 * scale, site.name


def test_round_trip_is_bit_identical(exported, tmp_path):
    model, directory = exported
    convert(str(directory), str(tmp_path / "back"))
    back = load(str(tmp_path / "back"))
    assert back.config == model.config
    flat_a = jax.tree_util.tree_leaves_with_path(model.variables)
    flat_b = jax.tree_util.tree_leaves_with_path(back.variables)
    assert [p for p, _ in flat_a] == [p for p, _ in flat_b]
    for (path, a), (_, b) in zip(flat_a, flat_b):
        assert np.asarray(a).dtype == np.asarray(b).dtype, jax.tree_util.keystr(path)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b),
                                      err_msg=jax.tree_util.keystr(path))


def test_keys_and_shapes_equal_a_fresh_reference_model(exported):
    _, directory = exported
    state = torch.load(directory / WEIGHTS_NAME, map_location="cpu", weights_only=True)
    ref_config = RefConfig.from_json_file(str(directory / "config.json"))
    fresh = RefBigGAN(ref_config).state_dict()
    assert set(state) == set(fresh)
    for key, tensor in fresh.items():
        assert tuple(state[key].shape) == tuple(tensor.shape), key
        assert state[key].dtype == torch.float32, key
    # Every spectral norm is exactly 1 for the converter, and the RGB padding is zero.
    for key in state:
        if key.endswith(".weight_orig"):
            prefix = key[: -len(".weight_orig")]
            w, u, v = (state[f"{prefix}.{s}"].numpy() for s in ("weight_orig", "weight_u",
                                                                "weight_v"))
            assert sn_sigma(w, u, v) == np.float32(1.0), prefix
    assert not state["generator.conv_to_rgb.weight_orig"][3:].any()
    assert not state["generator.conv_to_rgb.bias"][3:].any()


def test_unit_sigma_vectors_on_awkward_shapes():
    rng = np.random.default_rng(0)
    for shape in [(1, 7), (7, 1), (3, 3), (40, 8, 3, 3), (6, 200)]:
        for scale in (1e-3, 1.0, 50.0):
            w = (scale * rng.standard_normal(shape)).astype(np.float32)
            u, v = unit_sigma_vectors(w)
            assert sn_sigma(w, u, v) == np.float32(1.0)
    with pytest.raises(JaxawareError):
        unit_sigma_vectors(np.zeros((4, 4), np.float32))


def test_an_original_biggan_is_refused_in_one_line(tmp_path):
    """export writes BigGAN-deep only: an original BigGAN (BigGAN-PyTorch's family) gets a
    one-line error, not an AttributeError, and nothing is written."""
    from jaxaware.models import BigGANConfig

    model = init_random(BigGANConfig(32, 4, 16, 8, True, True, (16,), 5))
    with pytest.raises(JaxawareError) as e:
        export(model, tmp_path / "ckpt")
    assert str(e.value) == ("export writes BigGAN-deep checkpoints (pytorch_pretrained_biggan); "
                            "this is a BigGAN model, which it does not write")  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_cli_and_atomic_replace(exported, tmp_path):
    model, _ = exported
    model.save(str(tmp_path / "weights"))
    out = tmp_path / "ckpt"
    assert main([str(tmp_path / "weights"), str(out)]) == 0
    first = (out / WEIGHTS_NAME).read_bytes()
    assert main([str(tmp_path / "weights"), str(out)]) == 0  # replaces a checkpoint dir
    assert sorted(p.name for p in out.iterdir()) == ["config.json", WEIGHTS_NAME]
    assert len((out / WEIGHTS_NAME).read_bytes()) == len(first)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp leftovers
    load_checkpoint(out)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(JaxawareError):
        export(model, other)
    assert (other / "notes.txt").read_text() == "keep me"
