"""The shipped default model: loads with its checksum, is deterministic, generates the
world's classes, and exports to PyTorch with parity and a bit-identical round trip."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest

from jaxaware.generate import generate, sample
from jaxaware.model import DEFAULT_MODEL, init_random, load
from jaxaware.errors import JaxawareError
from jaxaware.models.layers import Capture
from jaxaware.sites import site_table
from jaxaware.toyworld import WORLD, load_classifier
from jaxaware.truncation import truncated_noise


@pytest.fixture(scope="module")
def model():
    return load()


def test_loads_with_verified_checksum(model):
    with open(os.path.join(DEFAULT_MODEL, "config.json")) as f:
        meta = json.load(f)
    with open(os.path.join(DEFAULT_MODEL, "params.npz"), "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == meta["params_sha256"]
    assert model.config.num_classes == 16 and model.config.resolution == 32
    assert [n for n in model.class_names] == list(WORLD.class_names)
    assert model.resolve_classes("cat,bus") == [WORLD.class_index("cat"), WORLD.class_index("bus")]


def test_generation_is_deterministic_for_a_seed(model):
    a, _ = sample(model, [0, 5], truncation=0.7, seed=3, per_class=2)
    b, _ = sample(model, [0, 5], truncation=0.7, seed=3, per_class=2)
    c, _ = sample(model, [0, 5], truncation=0.7, seed=4, per_class=2)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0.1


def test_classifier_recognises_its_samples(model):
    """A bar a random-weight model cannot reach (chance is 1/16)."""
    clf = load_classifier()
    classes = list(range(16))
    images, labels = sample(model, classes, truncation=1.0, seed=11, per_class=8)
    acc = float(np.mean(clf.predict(images) == labels))
    rand = init_random(model.config, seed=0, class_names=model.class_names)
    rand_images, _ = sample(rand, classes, truncation=1.0, seed=11, per_class=8)
    rand_acc = float(np.mean(clf.predict(rand_images) == labels))
    assert acc >= 0.75, acc
    assert rand_acc <= 0.25, rand_acc


def test_export_to_pytorch_parity_and_round_trip(model, tmp_path):
    torch = pytest.importorskip("torch")
    from convert.biggan_deep import convert
    from convert.export import export
    from convert.reference import load_checkpoint, reference_forward

    torch.set_num_threads(1)
    export(model, tmp_path / "torch")
    ref = load_checkpoint(tmp_path / "torch")
    z = truncated_noise(4, model.config.z_dim, 0.5, seed=0)
    y = np.eye(16, dtype=np.float32)[[0, 4, 9, 15]]
    want_image, want_probes = reference_forward(ref, torch.tensor(z), torch.tensor(y), 0.5)
    image, probes = generate(model, z, y, 0.5, capture=Capture())
    assert np.abs(np.asarray(image) - want_image.transpose(0, 2, 3, 1)).max() <= 1e-4
    for s in site_table(model.config):
        g, want = np.asarray(probes[s.name]["gamma"]), want_probes[s.reference_name]["gamma"]
        assert np.abs(g - want).max() <= 1e-5 * np.abs(want).max()
    convert(str(tmp_path / "torch"), str(tmp_path / "back"))
    back = load(str(tmp_path / "back"))
    flat_a, flat_b = _flat(model.variables), _flat(back.variables)
    assert flat_a.keys() == flat_b.keys()
    for k in flat_a:
        np.testing.assert_array_equal(flat_a[k], flat_b[k], err_msg=k)


def test_missing_default_model_is_a_clear_error(monkeypatch):
    import jaxaware.model

    monkeypatch.setattr(jaxaware.model, "DEFAULT_MODEL", "/nonexistent/default_model")
    with pytest.raises(JaxawareError, match="no default model ships with this installation"):
        load()


def _flat(tree, prefix=""):
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}/"))
        else:
            out[prefix + k] = np.asarray(v)
    return out
