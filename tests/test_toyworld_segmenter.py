"""The shipped reference part segmenter: per-part IoU on fresh renders at 32 and 64 px,
output shapes, a loader that refuses missing, truncated or corrupt weights with a one-line
error, an exact save/load round trip and seed-reproducible training."""

import hashlib
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaware.errors import JaxawareError
from jaxaware.toyworld import (
    PART_NAMES,
    ReferenceSegmenter,
    ToySegNet,
    load_segmenter,
    sample_dataset,
    save_segmenter,
)
from jaxaware.toyworld.classifier import DEFAULT_WEIGHTS as CLASSIFIER_WEIGHTS
from jaxaware.toyworld.reference import sidecar_path
from jaxaware.toyworld.segmenter import DEFAULT_CONFIG, DEFAULT_WEIGHTS
from jaxaware.toyworld.train import label_weights, part_iou, train_segmenter

# A world seed used neither for training (1000 + run seed) nor for the recorded evaluation.
FRESH_SEED = 515151
TINY = {"widths": [4, 8], "convs": 1, "refine": 4, "num_labels": len(PART_NAMES)}
SHAPE_MESSAGE = r"^images must be \[N, 32, 32, 3\] or \[N, 64, 64, 3\] floats in \[-1, 1\], "


def random_params(model: ToySegNet, seed: int = 0):
    """Random weights of the right shapes, without compiling the model's init."""
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, 3)))
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda s: (rng.standard_normal(s.shape) * 0.3).astype(np.float32),
                        shapes["params"])


@pytest.fixture(scope="module")
def seg():
    return load_segmenter()


@pytest.mark.parametrize("resolution,n", [(32, 480), (64, 240)])
def test_shipped_segmenter_reaches_the_miou_bar_on_a_fresh_seed(seg, resolution, n):
    images, _, part_maps = sample_dataset(n, seed=FRESH_SEED, resolution=resolution)
    pred = seg.predict(images)
    assert pred.shape == part_maps.shape and pred.dtype == np.int32
    iou = part_iou(pred, part_maps)
    assert iou.shape == (len(PART_NAMES),)
    table = dict(zip(PART_NAMES, iou.round(3)))
    assert np.nanmean(iou[1:]) >= 0.90, table   # mIoU over the 13 parts
    assert iou[0] >= 0.98, table                # background
    assert np.nanmin(iou[1:]) >= 0.75, table    # no part is left behind


def test_logits_predict_agree_and_padding_does_not_leak(seg):
    for res in (32, 64):
        x = sample_dataset(37, seed=FRESH_SEED + 1, resolution=res)[0]
        logits = seg.logits(x)
        assert logits.shape == (37, res, res, len(PART_NAMES)) and logits.dtype == np.float32
        assert np.isfinite(logits).all()
        pred = seg.predict(x)
        np.testing.assert_array_equal(pred, np.argmax(logits, -1))
        np.testing.assert_array_equal(seg.predict(x[5:6]), pred[5:6])
        assert seg.predict(x[:0]).shape == (0, res, res)
        assert seg.logits(x[:0]).shape == (0, res, res, len(PART_NAMES))


def test_small_batches_give_the_same_labels(seg):
    x = sample_dataset(10, seed=FRESH_SEED + 2, resolution=32)[0]
    small = load_segmenter(DEFAULT_WEIGHTS, batch_size=3)
    np.testing.assert_array_equal(small.predict(x), seg.predict(x))
    with pytest.raises(JaxawareError, match=r"^batch_size must be a positive integer, got 0$"):
        load_segmenter(batch_size=0)


@pytest.mark.parametrize("shape", [(2, 48, 48, 3), (32, 32, 3), (2, 32, 32, 1),
                                   (2, 32, 64, 3), (2, 128, 128, 3)])
def test_bad_image_shapes_are_refused(seg, shape):
    text = str(shape).replace("(", r"\(").replace(")", r"\)")
    for method in (seg.predict, seg.logits):
        with pytest.raises(JaxawareError, match=SHAPE_MESSAGE + rf"got shape {text}$"):
            method(np.zeros(shape, np.float32))


def test_non_numeric_images_are_refused(seg):
    with pytest.raises(JaxawareError, match=SHAPE_MESSAGE + r"got shape \(1, 32, 32, 3\) "
                       r"of dtype <U1$"):
        seg.predict(np.full((1, 32, 32, 3), "a"))


def test_shipped_files_are_small_and_checksummed():
    data = DEFAULT_WEIGHTS.read_bytes()
    meta = json.loads(sidecar_path(DEFAULT_WEIGHTS).read_text())
    assert len(data) < 2_000_000
    assert meta["format"] == "jaxaware.toyworld_segmenter/1"
    assert meta["sha256"] == hashlib.sha256(data).hexdigest()
    assert meta["bytes"] == len(data)
    assert meta["config"] == DEFAULT_CONFIG
    held = meta["info"]["heldout_iou"]
    assert held["32"]["miou"] >= 0.90 and held["64"]["miou"] >= 0.90
    assert meta["info"]["eval_seed"] != meta["info"]["train_world_seed"]
    assert meta["info"]["train_seconds"] < 900


@pytest.fixture()
def copy(tmp_path):
    dst = tmp_path / "seg.npz"
    shutil.copy(DEFAULT_WEIGHTS, dst)
    shutil.copy(sidecar_path(DEFAULT_WEIGHTS), sidecar_path(dst))
    return dst


def test_copy_loads(copy, seg):
    x = sample_dataset(8, seed=FRESH_SEED, resolution=64)[0]
    np.testing.assert_array_equal(load_segmenter(copy).logits(x), seg.logits(x))


def test_truncated_file_is_refused(copy):
    data = copy.read_bytes()
    copy.write_bytes(data[: len(data) // 2])
    with pytest.raises(JaxawareError, match=r"^checksum mismatch for .*seg\.npz: sha256 is "
                       r"[0-9a-f]{16}\.\.\., the sidecar expects [0-9a-f]{16}\.\.\.; "
                       r"the file is truncated or corrupt$"):
        load_segmenter(copy)


def test_corrupt_byte_is_refused(copy):
    data = bytearray(copy.read_bytes())
    data[len(data) // 3] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(JaxawareError, match=r"^checksum mismatch for .*seg\.npz: sha256 is "
                       r"[0-9a-f]{16}\.\.\., the sidecar expects [0-9a-f]{16}\.\.\.; "
                       r"the file is truncated or corrupt$"):
        load_segmenter(copy)


def test_missing_and_foreign_files_are_refused(copy, tmp_path):
    with pytest.raises(JaxawareError, match=r"^segmenter weights not found: .*nope\.npz; "
                       r"train them with: python experiments/train_segmenter.py$"):
        load_segmenter(tmp_path / "nope.npz")
    with pytest.raises(JaxawareError, match=r"^segmenter sidecar .*toyworld_classifier\.json "
                       r"is not a jaxaware\.toyworld_segmenter/1 sidecar$"):
        load_segmenter(CLASSIFIER_WEIGHTS)
    sidecar_path(copy).write_text("{not json")
    with pytest.raises(JaxawareError, match=r"^segmenter sidecar .*seg\.json is not valid JSON"):
        load_segmenter(copy)
    sidecar_path(copy).unlink()
    with pytest.raises(JaxawareError, match=r"^segmenter sidecar not found: .*seg\.json$"):
        load_segmenter(copy)


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path):
    path = save_segmenter(random_params(ToySegNet((4, 8), 1, 4)), TINY, tmp_path / "tiny.npz")
    meta = json.loads(sidecar_path(path).read_text())
    meta["config"] = DEFAULT_CONFIG  # claims the shipped network, has the tiny one's arrays
    sidecar_path(path).write_text(json.dumps(meta))
    with pytest.raises(JaxawareError, match=r"^segmenter weights .*tiny\.npz do not match "
                       r"the config in .*tiny\.json: expected \d+ arrays"):
        load_segmenter(path)
    meta["config"] = {"widths": [4, 8]}
    sidecar_path(path).write_text(json.dumps(meta))
    with pytest.raises(JaxawareError, match=r"^segmenter sidecar .*tiny\.json has a bad config: "):
        load_segmenter(path)


def test_save_load_roundtrip_is_exact_and_reproducible(tmp_path):
    model = ToySegNet((4, 8), 1, 4)
    params = random_params(model, seed=3)
    a = save_segmenter(params, TINY, tmp_path / "a.npz", info={"note": "x"})
    b = save_segmenter(params, TINY, tmp_path / "sub" / "b.npz", info={"note": "x"})
    assert a.read_bytes() == b.read_bytes()  # same weights, same bytes, same checksum
    assert not list(tmp_path.rglob("*.tmp"))  # no temp files left behind
    loaded = load_segmenter(b, batch_size=4)
    assert isinstance(loaded, ReferenceSegmenter) and loaded.info == {"note": "x"}
    for res in (32, 64):
        x = sample_dataset(6, seed=1, resolution=res)[0]
        direct = jax.jit(model.apply)({"params": params}, x)
        np.testing.assert_allclose(loaded.logits(x), np.asarray(direct), rtol=1e-5, atol=1e-5)


def test_training_is_reproducible_from_the_seed(tmp_path):
    kw = dict(steps=3, batch_size=4, batch_size_64=2, eval_size=16, config=TINY)
    seen = []
    p1, info1 = train_segmenter(seed=5, callback=lambda s, loss, acc: seen.append(s), **kw)
    p2, info2 = train_segmenter(seed=5, **kw)
    p3, _ = train_segmenter(seed=6, **kw)
    assert seen == [0, 1, 2]
    a = save_segmenter(p1, TINY, tmp_path / "a.npz")
    b = save_segmenter(p2, TINY, tmp_path / "b.npz")
    assert a.read_bytes() == b.read_bytes()
    flat = [jax.tree.leaves(p) for p in (p1, p3)]
    assert not all(np.array_equal(x, y) for x, y in zip(*flat))
    assert info1["heldout_iou"] == info2["heldout_iou"]
    assert set(info1["heldout_iou"]) == {"32", "64"}
    assert info1["train_world_seed"] != info1["eval_seed"]
    with pytest.raises(JaxawareError, match=r"^steps must be a non-negative integer, got -1$"):
        train_segmenter(steps=-1)
    with pytest.raises(JaxawareError, match=r"^eval_seed 1005 is the training data's world "
                       r"seed$"):
        train_segmenter(seed=5, eval_seed=1005, **kw)


def test_part_iou_and_label_weights():
    target = np.array([[0, 0, 1, 1], [0, 2, 2, 0]])
    pred = np.array([[0, 1, 1, 1], [0, 2, 0, 0]])
    iou = part_iou(pred, target, num_labels=4)
    np.testing.assert_allclose(iou[:3], [3 / 5, 2 / 3, 1 / 2])
    assert np.isnan(iou[3])  # in neither map
    maps = sample_dataset(64, seed=3)[2]
    w = label_weights(maps, len(PART_NAMES), 0.25)
    freq = np.bincount(maps.ravel(), minlength=len(PART_NAMES)) / maps.size
    assert np.isclose(np.sum(w * freq), 1.0) and w[0] == w.min()
    np.testing.assert_allclose(label_weights(maps, len(PART_NAMES), 0.0), 1.0, rtol=1e-6)
