"""Channel interventions: the edit arithmetic, and edits applied inside the generator.

Expected arrays are written by hand in NumPy from the documented meaning of each edit
(zero / multiply / add / replace the selected channels, only where the mask is 1), not
from the implementation's blend formula. The generator is a small BigGAN-deep with random
weights built with NumPy (see tests/test_model_contract.py for why not ``init_random``).
Generator calls use batch 2 (batch 1 per image under vmap) and one site, so a handful of
compilations serve the file.
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import SMALL, raises, random_model
from jaxaware.generate import generate, jitted_forward
from jaxaware import interventions as iv
from jaxaware.errors import JaxawareError
from jaxaware.interventions import ChannelEdit
from jaxaware.models.layers import NOTHING, Capture
from jaxaware.truncation import stats_blend, truncated_noise

CFG = SMALL
SITE = "block1.bn2"  # after block1's upsampling: [B, 8, 8, 16]
C = 16
FEATURES = Capture(features=True)


@pytest.fixture(scope="module")
def model():
    return random_model(CFG)


@pytest.fixture(scope="module")
def inputs():
    return truncated_noise(2, CFG.z_dim, 0.5, seed=0), np.array([3, 8])


@pytest.fixture(scope="module")
def baseline(model, inputs):
    """(image, captured) with no intervention."""
    z, labels = inputs
    image, captured = generate(model, z, labels, 0.5, capture=FEATURES)
    return np.asarray(image), jax.tree_util.tree_map(np.asarray, captured)


# --------------------------------------------------------------------------------------------
# ChannelEdit.apply on a random feature map
# --------------------------------------------------------------------------------------------

H = np.random.RandomState(0).randn(2, 3, 4, 5).astype(np.float32)  # [B, H, W, C]
MASK_HW = np.array([[1, 0, 0, 1], [0, 1, 1, 0], [1, 1, 0, 0]], np.float32)
MASK_BHW = np.stack([MASK_HW, 1 - MASK_HW])


def applied(edit, h=H):
    return np.asarray(edit.apply(jnp.asarray(h)))


def test_zero():
    want = H.copy()
    want[..., 1] = 0
    want[..., 3] = 0
    np.testing.assert_array_equal(applied(iv.zero([1, 3], 5)), want)
    # A boolean channel mask selects the same channels.
    np.testing.assert_array_equal(applied(iv.zero(np.array([0, 1, 0, 1, 0], bool), 5)), want)


def test_multiply_scalar_and_per_channel():
    want = H.copy()
    want[..., 0] *= 2.5
    want[..., 2] *= 2.5
    np.testing.assert_allclose(applied(iv.multiply([0, 2], 2.5, 5)), want, rtol=1e-6, atol=1e-7)
    want = H.copy()
    want[..., 4] *= -1.0
    want[..., 1] *= 3.0
    got = applied(iv.multiply([4, 1], [-1.0, 3.0], 5))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_add():
    want = H.copy()
    want[..., 4] += 0.7
    np.testing.assert_allclose(applied(iv.add([4], 0.7, 5)), want, rtol=1e-6, atol=1e-7)
    want = H.copy()
    want[..., 0] -= 1.0
    want[..., 3] += 2.0
    got = applied(iv.add([0, 3], [-1.0, 2.0], 5))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("value_shape", [(5,), (3, 4, 5), (2, 3, 4, 5)])
def test_replace(value_shape):
    values = np.random.RandomState(1).randn(*value_shape).astype(np.float32)
    full = np.broadcast_to(values, H.shape)
    want = H.copy()
    want[..., 1] = full[..., 1]  # only the selected channels of the values are used
    want[..., 2] = full[..., 2]
    got = applied(iv.replace([1, 2], values, 5))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_replace_with_a_constant():
    want = H.copy()
    want[..., 0] = -3.0
    np.testing.assert_allclose(applied(iv.replace([0], -3.0, 5)), want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mask", [MASK_HW, MASK_BHW], ids=["HW", "BHW"])
def test_masked_edits(mask):
    m = np.broadcast_to(mask, H.shape[:3]).astype(bool)  # [B, H, W]
    values = np.random.RandomState(2).randn(3, 4, 5).astype(np.float32)
    cases = [
        (iv.zero([2], 5), lambda x: np.where(np.arange(5) == 2, 0.0, x)),
        (iv.multiply([0], -2.0, 5), lambda x: x * np.array([-2.0, 1, 1, 1, 1])),
        (iv.add([1, 4], 0.5, 5), lambda x: x + np.array([0, 0.5, 0, 0, 0.5])),
    ]
    for edit, everywhere in cases:
        want = H.copy()
        want[m] = everywhere(H)[m]  # the edit where the mask is 1, untouched elsewhere
        np.testing.assert_allclose(applied(edit.with_mask(mask)), want, rtol=1e-6, atol=1e-6)
    want = H.copy()
    for b, i, j in zip(*np.nonzero(m)):
        want[b, i, j, 3] = values[i, j, 3]
    got = applied(iv.replace([3], values, 5).with_mask(mask))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_soft_mask_blends():
    # mask 0.25: a quarter of the way from h to the edited value.
    mask = np.full((3, 4), 0.25, np.float32)
    want = H.copy()
    want[..., 0] = 0.75 * H[..., 0] + 0.25 * 4.0
    got = applied(iv.replace([0], 4.0, 5).with_mask(mask))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_identity_is_bit_exact():
    np.testing.assert_array_equal(applied(ChannelEdit.identity(5)), H)
    np.testing.assert_array_equal(applied(ChannelEdit.identity(5).with_mask(MASK_BHW)), H)


# --------------------------------------------------------------------------------------------
# Edits inside the generator
# --------------------------------------------------------------------------------------------


def test_identity_edit_leaves_generate_unchanged(model, inputs, baseline):
    z, labels = inputs
    image, captured = generate(
        model, z, labels, 0.5, capture=FEATURES, interventions={SITE: ChannelEdit.identity(C)}
    )
    np.testing.assert_array_equal(np.asarray(image), baseline[0])
    assert set(captured) == set(baseline[1])
    for name, entry in captured.items():
        for key, value in entry.items():
            np.testing.assert_array_equal(np.asarray(value), baseline[1][name][key])


def test_zeroing_channels(model, inputs, baseline):
    z, labels = inputs
    channels = [0, 5, 11]
    before = baseline[1][SITE]["features"]
    assert (before[..., channels] > 0).any(axis=(0, 1, 2)).all()  # something to zero
    image, captured = generate(
        model, z, labels, 0.5, capture=FEATURES, interventions={SITE: iv.zero(channels, C)}
    )
    after = np.asarray(captured[SITE]["features"])
    want = before.copy()
    want[..., channels] = 0.0
    np.testing.assert_array_equal(after, want)
    # The image changes ...
    assert np.abs(np.asarray(image) - baseline[0]).max() > 1e-3
    # ... a later site's features change, earlier sites' do not ...
    assert np.abs(np.asarray(captured["block2.bn0"]["features"])
                  - baseline[1]["block2.bn0"]["features"]).max() > 1e-4  # fmt: skip
    np.testing.assert_array_equal(
        np.asarray(captured["block1.bn1"]["features"]), baseline[1]["block1.bn1"]["features"]
    )
    # ... and no probe changes anywhere: probes depend only on (z, class).
    for name, entry in captured.items():
        for key in ("t", "gamma", "beta"):
            np.testing.assert_array_equal(np.asarray(entry[key]), baseline[1][name][key])


def test_replace_with_features(model, inputs, baseline):
    z, labels = inputs
    own = baseline[1][SITE]["features"]  # [2, 8, 8, 16]
    all_channels = np.arange(C)
    image, captured = generate(
        model, z, labels, 0.5, capture=FEATURES,
        interventions={SITE: iv.replace(all_channels, own, C)},
    )  # fmt: skip
    # Replacing every channel by the values it already has changes nothing, bit for bit.
    np.testing.assert_array_equal(np.asarray(image), baseline[0])
    # Another synthesis's features (other latents and classes) at the site:
    z2, labels2 = truncated_noise(2, CFG.z_dim, 0.5, seed=1), np.array([1, 6])
    other_image, other = generate(model, z2, labels2, 0.5, capture=FEATURES)
    theirs = np.asarray(other[SITE]["features"])
    image, captured = generate(
        model, z, labels, 0.5, capture=FEATURES,
        interventions={SITE: iv.replace(all_channels, theirs, C)},
    )  # fmt: skip
    np.testing.assert_allclose(np.asarray(captured[SITE]["features"]), theirs, atol=1e-6)
    assert np.abs(np.asarray(image) - baseline[0]).max() > 1e-3
    # Later CCBNs still use the original condition vector, so this is not the other image.
    assert np.abs(np.asarray(image) - np.asarray(other_image)).max() > 1e-3


def test_vmap_over_edits_equals_loop(model, inputs):
    """One ablated channel per image: a batch of edits (leading axis) under ``jax.vmap``."""
    z, labels = inputs
    y = np.eye(CFG.num_classes, dtype=np.float32)[labels]
    rows, weights = stats_blend(0.5, CFG.n_stats)
    apply = jitted_forward(CFG)

    def one(zi, yi, edit):
        image, _ = apply(model.variables, zi[None], yi[None], (rows, weights), {SITE: edit},
                         capture=NOTHING)
        return image[0]

    edits = [iv.zero([2], C), iv.zero([9], C)]
    stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *edits)
    assert stacked.scale.shape == (2, C)
    vmapped = np.asarray(jax.vmap(one)(jnp.asarray(z), jnp.asarray(y), stacked))
    loop = np.stack([np.asarray(one(z[i], y[i], edits[i])) for i in range(2)])
    assert np.abs(vmapped - loop).max() <= 1e-6
    # Each image really got its own edit: not the unedited image, and not the other edit.
    plain = np.asarray(generate(model, z, labels, 0.5))
    swapped = np.asarray(one(z[0], y[0], edits[1]))
    for i in range(2):
        assert np.abs(vmapped[i] - plain[i]).max() > 1e-4
    assert np.abs(vmapped[0] - swapped).max() > 1e-4


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def test_unknown_site(model, inputs):
    z, labels = inputs
    with raises(
        "intervention names unknown site 'block1.bn9'; sites are block0.bn0..block4.bn3 and "
        "block0.out..block4.out; "
        "closest: block1.bn3, block1.bn2, block1.bn1"
    ):
        generate(model, z, labels, 0.5, interventions={"block1.bn9": iv.zero([0], C)})
    with raises(
        "intervention names unknown site 'blok1.bn2'; sites are block0.bn0..block4.bn3 and "
        "block0.out..block4.out; "
        "closest: block1.bn2, block4.bn2, block3.bn2"
    ):
        generate(model, z, labels, 0.5, interventions={"blok1.bn2": iv.zero([0], C)})


def test_wrong_channel_count(model, inputs):
    z, labels = inputs
    with raises("intervention at block1.bn2 has 5 channels; the site has 16"):
        generate(model, z, labels, 0.5, interventions={SITE: iv.zero([0], 5)})
    with raises("intervention at block1.bn2 must be a ChannelEdit; got dict"):
        generate(model, z, labels, 0.5, interventions={SITE: {"scale": np.ones(C)}})
    with raises("edit has 16 channels but the site has 5"):
        iv.zero([0], C).apply(jnp.asarray(H))
    with raises("replacement values must end in the site's 16 channels; got shape (8, 8, 5)"):
        iv.replace([0], np.zeros((8, 8, 5)), C)


def test_channel_out_of_range():
    with raises("channel 16 is out of range; this site has channels 0..15"):
        iv.zero([3, 16], C)
    with raises("channel -1 is out of range; this site has channels 0..15"):
        iv.multiply([-1], 2.0, C)
    with raises("a channel mask must have 16 entries; got 5"):
        iv.add(np.ones(5, bool), 1.0, C)
    with raises("channels must be integers or a boolean mask; got float64"):
        iv.zero([1.5], C)


def test_bad_mask_shape(model, inputs):
    with raises("mask must have shape [H, W] or [B, H, W]; got (8,)"):
        iv.zero([0], C).with_mask(np.ones(8))
    with raises("mask must have shape [H, W] or [B, H, W]; got (1, 2, 8, 8)"):
        iv.zero([0], C).with_mask(np.ones((1, 2, 8, 8)))
    # Right rank but the wrong size for the site (8x8): rejected when the edit is applied.
    # (Raised while jit traces the generator; JAX adds a traceback note, not to the message.)
    z, labels = inputs
    with pytest.raises(JaxawareError) as e:
        edit = iv.zero([0], C).with_mask(np.ones((4, 4)))
        generate(model, z, labels, 0.5, interventions={SITE: edit})
    assert str(e.value) == (
        "mask of shape (4, 4) does not fit the feature map (2, 8, 8, 16) of the site; "
        "give [H, W] or [B, H, W]"
    )
    with pytest.raises(JaxawareError) as e:
        edit = iv.zero([0], C).with_mask(np.ones((3, 8, 8)))  # batch 3 for 2 images
        generate(model, z, labels, 0.5, interventions={SITE: edit})
    assert str(e.value) == (
        "mask of shape (3, 8, 8) does not fit the feature map (2, 8, 8, 16) of the site; "
        "give [H, W] or [B, H, W]"
    )
    with raises(
        "replacement values of shape (4, 4, 16) do not fit the feature map (2, 8, 8, 16) of the "
        "site; give [C], [H, W, C] or [B, H, W, C]"
    ):
        iv.replace([0], np.zeros((4, 4, C)), C).apply(jnp.zeros((2, 8, 8, C)))
