"""Total channel awareness: sum over channels of |category awareness| per class, from an
array, an Awareness-like object or an awareness file; one-line errors."""

import re
import types

import numpy as np
import pytest

from jaxaware.errors import JaxawareError
from jaxaware.metrics import total_awareness


def test_sum_of_absolute_values_per_class(tmp_path):
    category = np.array([[1.0, -2.0, 0.5], [-0.25, 0.0, 0.25]], np.float32)
    want = np.array([3.5, 0.5])
    got = total_awareness(category)
    assert got.dtype == np.float64 and got.shape == (2,)
    np.testing.assert_array_equal(got, want)
    # the paper's E_z[t] is minus our category awareness: the same absolute values
    np.testing.assert_array_equal(total_awareness(-category), want)
    # duck-typed on .category (jaxaware.awareness.Awareness has it)
    np.testing.assert_array_equal(total_awareness(types.SimpleNamespace(category=category)),
                                  want)  # fmt: skip
    # an awareness .npz file: its category array
    path = tmp_path / "aw.npz"
    np.savez(path, category=category, classes=np.array([3, 7]))
    np.testing.assert_array_equal(total_awareness(path), want)
    np.testing.assert_array_equal(total_awareness(str(path)), want)


def test_with_a_real_awareness_object():
    from jaxaware.awareness import Awareness

    rng = np.random.default_rng(0)
    cat = rng.normal(size=(4, 10)).astype(np.float32)
    aw = Awareness(category=cat, latent=np.abs(cat), flip_fraction=np.zeros_like(cat),
                   classes=np.arange(4), site_names=("block0.bn0",),
                   site_offsets=np.array([[0, 10]]), num_latents=8, truncation=1.0, seed=0,
                   model_id="test")  # fmt: skip
    np.testing.assert_allclose(total_awareness(aw), np.abs(cat).sum(1, dtype=np.float64))


def raises(message):
    return pytest.raises(JaxawareError, match="^" + re.escape(message) + "$")


def test_bad_input(tmp_path):
    with raises("awareness category must be a non-empty 2-D array [classes, channels]; "
                "got shape (3,)"):  # fmt: skip
        total_awareness(np.ones(3))
    with raises("awareness category must be a non-empty 2-D array [classes, channels]; "
                "got shape (0, 5)"):  # fmt: skip
        total_awareness(np.ones((0, 5)))
    with raises("awareness category has NaN or inf values; it must be finite"):
        total_awareness(np.array([[1.0, np.nan]]))
    with raises("awareness category must be an array of real numbers; got dtype <U3"):
        total_awareness(np.array([["abc"]]))
    missing = tmp_path / "none.npz"
    with raises(f"awareness file {missing} does not exist"):
        total_awareness(missing)
    other = tmp_path / "other.npz"
    np.savez(other, latent=np.ones((2, 2)))
    with raises(f"{other} is not an awareness file: it lacks category"):
        total_awareness(other)
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a zip")
    with raises(f"cannot read {broken} as an awareness .npz (ValueError); "
                "is the file complete?"):  # fmt: skip
        total_awareness(broken)
