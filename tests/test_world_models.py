"""The two shipped world models: they load by name with their checksums, generate the
world's classes deterministically, and the world's classifier recognises their samples."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest

from jaxaware.errors import JaxawareError
from jaxaware.generate import sample
from jaxaware.model import DEFAULT_MODEL, SHIPPED_MODELS, init_random, load
from jaxaware.models import BigGANConfig, BigGANDeepConfig
from jaxaware.sites import site_table
from jaxaware.toyworld import WORLD, load_classifier

NAMES = ("toyworld-biggan", "toyworld-biggan-deep")


@pytest.fixture(scope="module", params=NAMES)
def model(request):
    return load(request.param)


def test_default_is_the_original_biggan():
    assert DEFAULT_MODEL == SHIPPED_MODELS["toyworld-biggan"]
    assert isinstance(load().config, BigGANConfig)
    assert isinstance(load("toyworld-biggan-deep").config, BigGANDeepConfig)


def test_loads_with_verified_checksums(model):
    path = SHIPPED_MODELS[model.model_id]
    with open(os.path.join(path, "config.json")) as f:
        meta = json.load(f)
    with open(os.path.join(path, "params.npz"), "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == meta["params_sha256"]
    assert "config_sha256" in meta and meta["family"] == model.family.name
    assert model.config.num_classes == 16 and model.config.resolution == 32
    assert list(model.class_names) == list(WORLD.class_names)
    assert model.resolve_classes("cat,bus") == [WORLD.class_index("cat"), WORLD.class_index("bus")]


def test_sites_are_wide(model):
    """Room for the paper's per-site analyses: >= 64 channels at every CCBN site of the
    original BigGAN, >= 32 of BigGAN-deep."""
    least = 64 if model.family.name == "biggan" else 32
    assert min(s.channels for s in site_table(model.config)) >= least


def test_generation_is_deterministic_for_a_seed(model):
    a, _ = sample(model, [0, 5], truncation=0.7, seed=3, per_class=2)
    b, _ = sample(model, [0, 5], truncation=0.7, seed=3, per_class=2)
    c, _ = sample(model, [0, 5], truncation=0.7, seed=4, per_class=2)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0.1


#: Accuracy each shipped model must keep on a fresh sample of 256 images (16 per class):
#: 95% overall for both. Both reach >= 98% overall in the README's evaluation;
#: toyworld-biggan-deep misses the per-class bar there for castle (89.5%), which 16 samples
#: per class cannot test, so this is a guard against regressions, not the issue's bar.
MIN_ACCURACY = {"toyworld-biggan": 0.95, "toyworld-biggan-deep": 0.95}


def test_classifier_recognises_fresh_samples(model):
    """On a fresh sample (latent seed 11, never used for the reported evaluation) the
    world's classifier recognises the class; a random-weight model of the same
    architecture stays near chance (1/16)."""
    clf = load_classifier()
    classes = list(range(16))
    images, labels = sample(model, classes, truncation=1.0, seed=11, per_class=16)
    acc = float(np.mean(clf.predict(images) == labels))
    rand = init_random(model.config, seed=0, class_names=model.class_names)
    rand_images, _ = sample(rand, classes, truncation=1.0, seed=11, per_class=4)
    rand_acc = float(np.mean(clf.predict(rand_images) == labels[::4]))
    assert acc >= MIN_ACCURACY[model.model_id], acc
    assert rand_acc <= 0.25, rand_acc


def test_missing_default_model_is_a_clear_error(monkeypatch):
    import jaxaware.model

    monkeypatch.setattr(jaxaware.model, "DEFAULT_MODEL", "/nonexistent/toyworld-biggan")
    with pytest.raises(JaxawareError, match="no default model ships with this installation"):
        load()
