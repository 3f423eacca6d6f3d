"""The shipped reference classifier: accuracy on fresh images, features, and a loader that
refuses missing, truncated or corrupt weights with a one-line error."""

import hashlib
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaware.errors import JaxawareError
from jaxaware.toyworld import WORLD, load_classifier, sample_dataset, save_classifier
from jaxaware.toyworld.classifier import (
    DEFAULT_CONFIG,
    DEFAULT_WEIGHTS,
    ToyCNN,
    sidecar_path,
)

# A world seed used neither for training (1000 + run seed) nor for the recorded evaluation.
FRESH_SEED = 424242


def random_params(model: ToyCNN, seed: int = 0):
    """Random weights of the right shapes, without compiling the model's init."""
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3)))
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda s: (rng.standard_normal(s.shape) * 0.3).astype(np.float32),
                        shapes["params"])


@pytest.fixture(scope="module")
def clf():
    return load_classifier()


@pytest.fixture(scope="module")
def fresh():
    return sample_dataset(16 * 160, seed=FRESH_SEED, resolution=32)


def test_shipped_classifier_accuracy_on_fresh_heldout_set(clf, fresh):
    images, classes, _ = fresh
    pred = clf.predict(images)
    assert np.mean(pred == classes) >= 0.98
    per_class = np.array([np.mean(pred[classes == c] == c) for c in range(16)])
    assert per_class.min() >= 0.9, dict(zip(WORLD.class_names, per_class.round(3)))


def test_accepts_64x64_by_2x2_average(clf):
    images, classes, _ = sample_dataset(16 * 32, seed=FRESH_SEED + 1, resolution=64)
    assert clf.accuracy(images, classes) >= 0.97
    pooled = images.reshape(-1, 32, 2, 32, 2, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(clf.logits(images[:8]), clf.logits(pooled[:8]), atol=1e-5)


def test_features_logits_predict_agree(clf, fresh):
    images, classes, _ = fresh
    x = images[:300]  # not a multiple of the batch size: padding must not leak
    feats, logits = clf.features(x), clf.logits(x)
    assert feats.shape == (300, 128) and feats.dtype == np.float32
    assert logits.shape == (300, 16)
    assert np.isfinite(feats).all() and (feats >= 0).all()  # ReLU features
    np.testing.assert_array_equal(clf.predict(x), np.argmax(logits, -1))
    # batch composition does not change an image's output
    np.testing.assert_allclose(clf.features(x[5:6]), feats[5:6], rtol=1e-5, atol=1e-5)
    # the features separate the classes: nearest class mean is (nearly always) the class
    allf = clf.features(images)
    means = np.stack([allf[classes == c].mean(0) for c in range(16)])
    nearest = np.argmin(((allf[:, None] - means[None]) ** 2).sum(-1), axis=1)
    assert np.mean(nearest == classes) > 0.95
    assert clf.features(images[:0]).shape == (0, 128)


def test_bad_image_shape(clf):
    with pytest.raises(JaxawareError, match=r"^images must be \[N, 32, 32, 3\] or "
                       r"\[N, 64, 64, 3\] floats in \[-1, 1\], got shape \(2, 48, 48, 3\)$"):
        clf.predict(np.zeros((2, 48, 48, 3), np.float32))
    with pytest.raises(JaxawareError, match=r"got shape \(32, 32, 3\)$"):
        clf.features(np.zeros((32, 32, 3), np.float32))


def test_shipped_files_are_small_and_checksummed():
    data = DEFAULT_WEIGHTS.read_bytes()
    meta = json.loads(sidecar_path(DEFAULT_WEIGHTS).read_text())
    assert len(data) < 2_000_000
    assert meta["sha256"] == hashlib.sha256(data).hexdigest()
    assert meta["config"] == DEFAULT_CONFIG
    assert meta["info"]["heldout_accuracy"] >= 0.98
    assert meta["info"]["train_seconds"] < 600


@pytest.fixture()
def copy(tmp_path):
    dst = tmp_path / "clf.npz"
    shutil.copy(DEFAULT_WEIGHTS, dst)
    shutil.copy(sidecar_path(DEFAULT_WEIGHTS), sidecar_path(dst))
    return dst


def test_copy_loads(copy, fresh):
    images = fresh[0][:64]
    np.testing.assert_array_equal(load_classifier(copy).logits(images),
                                  load_classifier().logits(images))


def test_truncated_file_is_refused(copy):
    data = copy.read_bytes()
    copy.write_bytes(data[: len(data) // 2])
    with pytest.raises(JaxawareError, match=r"^checksum mismatch for .*clf\.npz: sha256 is "
                       r"[0-9a-f]{16}\.\.\., the sidecar expects [0-9a-f]{16}\.\.\.; "
                       r"the file is truncated or corrupt$"):
        load_classifier(copy)


def test_corrupt_byte_is_refused(copy):
    data = bytearray(copy.read_bytes())
    data[len(data) // 3] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(JaxawareError, match=r"^checksum mismatch for "):
        load_classifier(copy)


def test_missing_files_are_refused(copy, tmp_path):
    with pytest.raises(JaxawareError, match=r"^classifier weights not found: .*nope\.npz; "
                       r"train them with: python experiments/train_classifier.py$"):
        load_classifier(tmp_path / "nope.npz")
    sidecar_path(copy).unlink()
    with pytest.raises(JaxawareError, match=r"^classifier sidecar not found: .*clf\.json$"):
        load_classifier(copy)


def test_bad_sidecar_is_refused(copy):
    sidecar_path(copy).write_text("{not json")
    with pytest.raises(JaxawareError, match=r"^classifier sidecar .*clf\.json is not valid JSON"):
        load_classifier(copy)
    sidecar_path(copy).write_text(json.dumps({"format": "other", "sha256": "0"}))
    with pytest.raises(JaxawareError, match=r"is not a jaxaware\.toyworld_classifier/1 sidecar$"):
        load_classifier(copy)


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path):
    small = dict(DEFAULT_CONFIG, widths=[8, 8, 8], feature_dim=16)
    params = random_params(ToyCNN((8, 8, 8), 16, 16))
    path = save_classifier(params, small, tmp_path / "small.npz")
    meta = json.loads(sidecar_path(path).read_text())
    meta["config"] = DEFAULT_CONFIG  # claims the big network, has the small one's arrays
    sidecar_path(path).write_text(json.dumps(meta))
    with pytest.raises(JaxawareError, match=r"^classifier weights .*small\.npz do not match "
                       r"the config in .*small\.json: expected 10 arrays"):
        load_classifier(path)


def test_save_load_roundtrip_is_exact_and_reproducible(tmp_path):
    config = dict(DEFAULT_CONFIG, widths=[4, 8, 8], feature_dim=12)
    model = ToyCNN((4, 8, 8), 12, 16)
    params = random_params(model, seed=3)
    a = save_classifier(params, config, tmp_path / "a.npz", info={"note": "x"})
    b = save_classifier(params, config, tmp_path / "sub" / "b.npz", info={"note": "x"})
    assert a.read_bytes() == b.read_bytes()  # same weights, same bytes, same checksum
    assert not [p for p in tmp_path.rglob("*.tmp")]  # no temp files left behind
    loaded = load_classifier(b, batch_size=8)
    assert loaded.info == {"note": "x"}
    x = sample_dataset(8, seed=1)[0]
    feats, logits = jax.jit(model.apply)({"params": params}, x)
    np.testing.assert_allclose(loaded.logits(x), np.asarray(logits), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(loaded.features(x), np.asarray(feats), rtol=1e-5, atol=1e-5)


def test_training_is_reproducible_from_the_seed():
    from jaxaware.toyworld.train import train_classifier

    config = dict(DEFAULT_CONFIG, widths=[4, 4, 4], feature_dim=8)
    kw = dict(steps=3, batch_size=16, eval_size=32, config=config)
    seen = []
    p1, info1 = train_classifier(seed=5, callback=lambda s, loss, acc: seen.append(s), **kw)
    p2, info2 = train_classifier(seed=5, **kw)
    p3, _ = train_classifier(seed=6, **kw)
    assert seen == [0, 1, 2]
    flat = [jax.tree.leaves(p) for p in (p1, p2, p3)]
    assert all(np.array_equal(a, b) for a, b in zip(flat[0], flat[1]))
    assert not all(np.array_equal(a, b) for a, b in zip(flat[0], flat[2]))
    assert info1["heldout_accuracy"] == info2["heldout_accuracy"]
    assert info1["train_world_seed"] != info1["eval_seed"]
    with pytest.raises(JaxawareError, match=r"^steps must be a non-negative integer, got -1$"):
        train_classifier(steps=-1)
