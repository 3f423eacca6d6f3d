"""Tests for jaxaware.weights_io: the weights directory (params.npz + config.json)."""

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from jaxaware import weights_io
from jaxaware.errors import JaxawareError
from jaxaware.weights_io import (config_digest, flatten_params, load_weights, save_weights,
                                 unflatten_params)

CONTAINS = "a jaxaware weights directory holds config.json and params.npz"


def raises(message):
    """pytest.raises for a JaxawareError with exactly this message."""
    return pytest.raises(JaxawareError, match="^" + re.escape(message) + "$")


def sample_params():
    rng = np.random.default_rng(0)
    return {
        "block0": {
            "bn0": {"scale": {"kernel": rng.standard_normal((4, 3)).astype(np.float32)}},
            "conv": {"kernel": rng.standard_normal((3, 3, 2, 5)).astype(np.float16),
                     "bias": np.array([np.nan, np.inf, -0.0, 1e-30])},
        },
        "embed": {"table": rng.integers(-128, 127, (5, 2), dtype=np.int8)},
        "counts": np.arange(7, dtype=np.uint32),
        "mask": np.array([True, False]),
        "phase": np.array([1 + 2j], np.complex64),
        "step": np.array(12, np.int64),
        "empty": np.zeros((0, 3), np.float32),
        "transposed": np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)),
    }


def assert_same_tree(actual, expected):
    assert isinstance(actual, dict)
    assert set(actual) == set(expected)
    for key, value in expected.items():
        if isinstance(value, dict):
            assert_same_tree(actual[key], value)
        else:
            value = np.asarray(value)
            assert isinstance(actual[key], np.ndarray)
            assert actual[key].dtype == value.dtype, key
            assert actual[key].shape == value.shape, key
            np.testing.assert_array_equal(actual[key], value)


def siblings(path: Path):
    return sorted(p.name for p in path.parent.iterdir())


# --------------------------------------------------------------------------------------------
# flatten / unflatten
# --------------------------------------------------------------------------------------------


def test_flatten_unflatten_round_trip():
    params = sample_params()
    flat = flatten_params(params)
    assert "block0/bn0/scale/kernel" in flat
    assert "block0/conv/bias" in flat
    assert all(isinstance(v, np.ndarray) for v in flat.values())
    assert_same_tree(unflatten_params(flat), params)


def test_flatten_keeps_order_and_drops_empty_groups():
    flat = flatten_params({"b": {"y": np.ones(1), "x": np.ones(2)}, "a": np.ones(3), "e": {}})
    assert list(flat) == ["b/y", "b/x", "a"]


def test_flatten_accepts_jax_arrays_and_frozen_dicts():
    jnp = pytest.importorskip("jax.numpy")
    frozen_dict = pytest.importorskip("flax.core").FrozenDict
    params = frozen_dict({"dense": {"kernel": jnp.ones((2, 2), jnp.float16),
                                    "bias": jnp.zeros(2, jnp.int32)}})
    flat = flatten_params(params)
    assert flat["dense/kernel"].dtype == np.float16
    assert flat["dense/bias"].dtype == np.int32


def test_flatten_errors():
    with raises("parameter name 'a/b' under '/' is not allowed; names must be non-empty "
                "strings without '/'"):
        flatten_params({"a/b": np.ones(1)})
    with raises("parameter name 3 under 'x' is not allowed; names must be non-empty strings "
                "without '/'"):
        flatten_params({"x": {3: np.ones(1)}})
    with raises("parameter 'x/w' is a list; parameters must be NumPy or JAX arrays"):
        flatten_params({"x": {"w": [1.0]}})
    with raises("parameter 'w' has dtype object, which params.npz cannot store; use a bool, "
                "integer, float or complex NumPy dtype (e.g. cast bfloat16 to float32)"):
        flatten_params({"w": np.array([None])})
    with raises("params must be a nested dict of arrays; got list"):
        flatten_params([np.ones(1)])


def test_flatten_refuses_bfloat16():
    jnp = pytest.importorskip("jax.numpy")
    with raises("parameter 'w' has dtype bfloat16, which params.npz cannot store; use a bool, "
                "integer, float or complex NumPy dtype (e.g. cast bfloat16 to float32)"):
        flatten_params({"w": jnp.ones(2, jnp.bfloat16)})


def test_unflatten_errors():
    with raises("parameter key 'a//b' is not allowed; keys are '/'-joined non-empty names"):
        unflatten_params({"a//b": np.ones(1)})
    with raises("parameter key 'a/b' conflicts with array 'a'; an array cannot also hold "
                "parameters"):
        unflatten_params({"a": np.ones(1), "a/b": np.ones(1)})
    with raises("parameter key 'a' conflicts with other keys under it; a path is either an "
                "array or a group of parameters"):
        unflatten_params({"a/b": np.ones(1), "a": np.ones(1)})


# --------------------------------------------------------------------------------------------
# save / load
# --------------------------------------------------------------------------------------------


def test_round_trip_exact(tmp_path):
    params = sample_params()
    config = {"resolution": 128, "channels": [16, 8], "name": "biggan", "ratio": 0.5}
    target = tmp_path / "model"
    returned = save_weights(str(target), params, config, "biggan-128", extra={"source": "x"})
    assert returned == target and isinstance(returned, Path)
    assert sorted(os.listdir(target)) == ["config.json", "params.npz"]
    assert siblings(target) == ["model"]

    loaded, meta = load_weights(target)
    assert_same_tree(loaded, params)
    digest = hashlib.sha256((target / "params.npz").read_bytes()).hexdigest()
    assert meta == {"format": "jaxaware-weights", "version": 1, "model_id": "biggan-128",
                    "config": config, "params_sha256": digest,
                    "config_sha256": config_digest("biggan-128", None, config),
                    "extra": {"source": "x"}}
    assert json.loads((target / "config.json").read_text()) == meta

    with np.load(target / "params.npz", allow_pickle=False) as archive:
        assert sorted(archive.files) == sorted(flatten_params(params))


def test_round_trip_jax_arrays(tmp_path):
    jnp = pytest.importorskip("jax.numpy")
    params = {"w": jnp.arange(6, dtype=jnp.float32).reshape(2, 3), "i": jnp.ones(2, jnp.int8)}
    save_weights(tmp_path / "m", params, {}, "m")
    loaded, meta = load_weights(tmp_path / "m")
    assert meta["extra"] == {}
    assert_same_tree(loaded, {k: np.asarray(v) for k, v in params.items()})


def test_param_names_that_are_savez_keywords(tmp_path):
    params = {"file": np.ones(1), "allow_pickle": np.zeros(1), "args": {"kwds": np.ones(2)}}
    save_weights(tmp_path / "m", params, {}, "m")
    assert_same_tree(load_weights(tmp_path / "m")[0], params)


def test_saved_directory_honours_umask(tmp_path):
    umask = os.umask(0o022)
    try:
        save_weights(tmp_path / "m", {"w": np.ones(1)}, {}, "m")
    finally:
        os.umask(umask)
    assert (tmp_path / "m").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "m" / "params.npz").stat().st_mode & 0o777 == 0o644


def test_save_creates_missing_parents(tmp_path):
    target = tmp_path / "a" / "b" / "model"
    save_weights(target, {"w": np.ones(1)}, {}, "m")
    assert load_weights(target)[1]["model_id"] == "m"


def test_save_into_empty_directory(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    save_weights(target, {"w": np.ones(1)}, {}, "m")
    assert sorted(os.listdir(target)) == ["config.json", "params.npz"]


def test_overwrite_existing_weights_dir(tmp_path):
    target = tmp_path / "model"
    save_weights(target, {"old": np.zeros(3)}, {"v": 1}, "old-model")
    save_weights(target, {"new": {"w": np.ones(2, np.float16)}}, {"v": 2}, "new-model")

    params, meta = load_weights(target)
    assert_same_tree(params, {"new": {"w": np.ones(2, np.float16)}})
    assert meta["model_id"] == "new-model" and meta["config"] == {"v": 2}
    assert sorted(os.listdir(target)) == ["config.json", "params.npz"]
    assert siblings(target) == ["model"]


def test_overwrite_keeps_user_files_unless_forced(tmp_path):
    target = tmp_path / "model"
    save_weights(target, {"old": np.zeros(3)}, {"v": 1}, "old-model")
    (target / "notes.txt").write_text("left by the user")
    with raises(f"{target} holds 'notes.txt', which is not among the files written there "
                "(config.json, params.npz); replacing the directory would delete it; move it "
                "elsewhere, or use --force (force=True) to replace it anyway"):
        save_weights(target, {"new": np.ones(2)}, {"v": 2}, "new-model")
    assert load_weights(target)[1]["model_id"] == "old-model"
    save_weights(target, {"new": np.ones(2)}, {"v": 2}, "new-model", force=True)
    assert load_weights(target)[1]["model_id"] == "new-model"
    assert sorted(os.listdir(target)) == ["config.json", "params.npz"]
    assert siblings(target) == ["model"]


def foreign_message(path):
    return (f"{path} exists and is not a jaxaware weights directory; refusing to overwrite it; "
            "remove it or choose another path")


def test_refuses_to_overwrite_foreign_directory(tmp_path):
    target = tmp_path / "photos"
    target.mkdir()
    (target / "cat.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with raises(foreign_message(target)):
        save_weights(target, {"w": np.ones(1)}, {}, "m")
    assert os.listdir(target) == ["cat.jpg"]
    assert (target / "cat.jpg").read_bytes() == b"\xff\xd8 not really a jpeg"
    assert siblings(target) == ["photos"]


def test_refuses_directory_with_other_config_json(tmp_path):
    target = tmp_path / "hf-model"
    target.mkdir()
    (target / "config.json").write_text('{"format": "something-else"}')
    with raises(foreign_message(target)):
        save_weights(target, {"w": np.ones(1)}, {}, "m")
    assert (target / "config.json").read_text() == '{"format": "something-else"}'


def test_refuses_to_overwrite_file(tmp_path):
    target = tmp_path / "model"
    target.write_text("precious")
    with raises(foreign_message(target)):
        save_weights(target, {"w": np.ones(1)}, {}, "m")
    assert target.read_text() == "precious"
    assert siblings(target) == ["model"]


def test_refuses_to_replace_symlink(tmp_path):
    real = tmp_path / "real"
    save_weights(real, {"w": np.ones(1)}, {}, "m")
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    with raises(foreign_message(link)):
        save_weights(link, {"w": np.zeros(1)}, {}, "m")
    assert link.is_symlink()
    np.testing.assert_array_equal(load_weights(real)[0]["w"], np.ones(1))


def failing_after_first_array(monkeypatch):
    """Make writing the second array of params.npz fail, after part of the file is written."""
    real_write_array = np.lib.format.write_array
    calls = []

    def write_array(*args, **kwargs):
        calls.append(1)
        if len(calls) > 1:
            raise OSError("disk full (simulated)")
        return real_write_array(*args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", write_array)


def test_failed_save_leaves_nothing_behind(tmp_path, monkeypatch):
    failing_after_first_array(monkeypatch)
    target = tmp_path / "model"
    with pytest.raises(OSError, match="disk full"):
        save_weights(target, {"a": np.ones(3), "b": np.ones(3)}, {}, "m")
    assert os.listdir(tmp_path) == []


def test_failed_overwrite_keeps_old_weights(tmp_path, monkeypatch):
    target = tmp_path / "model"
    save_weights(target, {"a": np.zeros(3)}, {}, "old")
    failing_after_first_array(monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        save_weights(target, {"a": np.ones(3), "b": np.ones(3)}, {}, "new")
    monkeypatch.undo()
    assert siblings(target) == ["model"]
    params, meta = load_weights(target)
    assert meta["model_id"] == "old"
    np.testing.assert_array_equal(params["a"], np.zeros(3))


def test_save_validates_arguments_before_touching_disk(tmp_path):
    target = tmp_path / "model"
    with raises("model_id must be a non-empty string; got ''"):
        save_weights(target, {"w": np.ones(1)}, {}, "")
    with raises("config must be a dict; got list"):
        save_weights(target, {"w": np.ones(1)}, [], "m")
    with raises("extra must be a dict or None; got str"):
        save_weights(target, {"w": np.ones(1)}, {}, "m", extra="x")
    with raises("config must be JSON-serializable (dicts, lists, strings, finite numbers, "
                "booleans, null); Object of type ndarray is not JSON serializable"):
        save_weights(target, {"w": np.ones(1)}, {"w": np.ones(1)}, "m")
    with raises("extra must be JSON-serializable (dicts, lists, strings, finite numbers, "
                "booleans, null); it contains NaN or infinity"):
        save_weights(target, {"w": np.ones(1)}, {}, "m", extra={"loss": float("nan")})
    with raises("params holds no arrays; give a nested dict with at least one array"):
        save_weights(target, {"empty": {}}, {}, "m")
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------------------------
# load errors
# --------------------------------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path):
    target = tmp_path / "model"
    save_weights(target, {"a": {"w": np.arange(1000, dtype=np.float32)}}, {"k": 1}, "m")
    return target


def test_load_missing_directory(tmp_path):
    missing = tmp_path / "nope"
    with raises(f"weights directory {missing} does not exist; {CONTAINS}"):
        load_weights(missing)


def test_load_not_a_directory(tmp_path):
    file = tmp_path / "params.npz"
    file.write_bytes(b"x")
    with raises(f"{file} is not a directory; {CONTAINS}"):
        load_weights(file)


@pytest.mark.parametrize("name", ["config.json", "params.npz"])
def test_load_missing_file(saved, name):
    (saved / name).unlink()
    with raises(f"{saved} has no {name}; {CONTAINS}"):
        load_weights(saved)


def test_load_bad_json(saved):
    (saved / "config.json").write_text('{"format": "jaxaware-weights",\n  oops}')
    with raises(f"{saved / 'config.json'} is not valid JSON (Expecting property name enclosed "
                "in double quotes at line 2 column 3); re-create the weights directory"):
        load_weights(saved)


def rewrite_config(path, **changes):
    meta = json.loads((path / "config.json").read_text())
    meta.update(changes)
    (path / "config.json").write_text(json.dumps(meta))


def test_load_wrong_format(saved):
    rewrite_config(saved, format="other")
    with raises(f"{saved / 'config.json'} is not a jaxaware weights config: format is 'other', "
                "expected 'jaxaware-weights'"):
        load_weights(saved)
    (saved / "config.json").write_text("[1, 2]")
    with raises(f"{saved / 'config.json'} is not a jaxaware weights config: format is 'list', "
                "expected 'jaxaware-weights'"):
        load_weights(saved)


def test_load_wrong_version(saved):
    rewrite_config(saved, version=2)
    with raises(f"{saved / 'config.json'} has weights format version 2; this jaxaware reads "
                "version 1"):
        load_weights(saved)


def test_load_missing_field(saved):
    rewrite_config(saved, config=None)
    with raises(f"{saved / 'config.json'} field 'config' must be a dict; got None; re-create "
                "the weights directory"):
        load_weights(saved)


def checksum_message(path, expected):
    actual = hashlib.sha256((path / "params.npz").read_bytes()).hexdigest()
    return (f"{path / 'params.npz'} is corrupted or truncated: sha256 {actual} does not match "
            f"config.json ({expected}); re-create it")


def test_load_truncated_npz(saved):
    expected = load_weights(saved)[1]["params_sha256"]
    npz = saved / "params.npz"
    npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])
    with raises(checksum_message(saved, expected)):
        load_weights(saved)


def test_load_flipped_byte(saved):
    expected = load_weights(saved)[1]["params_sha256"]
    npz = saved / "params.npz"
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0x01  # inside the array data: the zip itself would still open
    npz.write_bytes(bytes(data))
    with raises(checksum_message(saved, expected)):
        load_weights(saved)


def test_load_unreadable_npz_with_matching_checksum(saved):
    npz = saved / "params.npz"
    npz.write_bytes(b"this is not a zip archive")
    rewrite_config(saved, params_sha256=hashlib.sha256(npz.read_bytes()).hexdigest())
    with pytest.raises(JaxawareError, match="^" + re.escape(
            f"{npz} cannot be read as a NumPy .npz archive (") + ".*; re-create it$"):
        load_weights(saved)


def test_load_single_npy_instead_of_npz(saved):
    npz = saved / "params.npz"
    with open(npz, "wb") as f:
        np.save(f, np.ones(3))
    rewrite_config(saved, params_sha256=hashlib.sha256(npz.read_bytes()).hexdigest())
    with raises(f"{npz} cannot be read as a NumPy .npz archive (it holds a single array); "
                "re-create it"):
        load_weights(saved)


def test_load_refuses_pickled_arrays(saved):
    npz = saved / "params.npz"
    np.savez(npz, w=np.array([{"a": 1}], dtype=object))
    rewrite_config(saved, params_sha256=hashlib.sha256(npz.read_bytes()).hexdigest())
    with pytest.raises(JaxawareError, match="^" + re.escape(
            f"{npz} cannot be read as a NumPy .npz archive (ValueError: ") + ".*; re-create it$"):
        load_weights(saved)


def test_writer_is_compatible_with_numpy_savez(saved):
    # A params.npz written by np.savez (e.g. by an older converter) loads the same way.
    npz = saved / "params.npz"
    np.savez(npz, **{"a/w": np.arange(4, dtype=np.int16)})
    rewrite_config(saved, params_sha256=hashlib.sha256(npz.read_bytes()).hexdigest())
    params, _ = load_weights(saved)
    assert_same_tree(params, {"a": {"w": np.arange(4, dtype=np.int16)}})


def test_module_constants():
    assert weights_io.WEIGHTS_FORMAT == "jaxaware-weights"
    assert weights_io.WEIGHTS_VERSION == 1
