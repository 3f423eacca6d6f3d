"""The generator's contract: jit == eager, no recompilation, batching, probes, truncation,
input errors and the site table.

The model is a small BigGAN-deep (5 blocks, 20 sites, 64x64 output) with random weights
from ``tests/helpers.random_model``: ``init_random`` gives unit statistics and a zero
attention gamma, which would hide statistic-row and attention bugs.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import SMALL, forward_traces, raises, random_model
from jaxaware import awareness
from jaxaware.generate import generate
from jaxaware.models import PRESETS
from jaxaware.models.biggan_deep import BigGANDeepGenerator as Generator
from jaxaware.models.layers import NOTHING, Capture
from jaxaware.sites import resolve_site, site_offsets, site_table, total_channels
from jaxaware.truncation import effective_row, stats_blend, truncated_noise

CFG = SMALL
B = 2  # one batch size for most calls: one compilation per Capture


@pytest.fixture(scope="module")
def model():
    return random_model(CFG)


def latents(n, seed=0, truncation=0.5):
    return truncated_noise(n, CFG.z_dim, truncation, seed)


def one_hot(labels):
    return np.eye(CFG.num_classes, dtype=np.float32)[np.asarray(labels)]


# --------------------------------------------------------------------------------------------
# jit, recompilation, batching
# --------------------------------------------------------------------------------------------


def test_jit_equals_eager(model):
    z, labels = latents(B), np.array([3, 7])
    rows, weights = stats_blend(0.405, CFG.n_stats)
    eager_image, eager_probes = Generator(CFG).apply(
        model.variables, jnp.asarray(z), jnp.asarray(one_hot(labels)), (rows, weights), Capture()
    )
    image, probes = generate(model, z, labels, 0.405, capture=Capture())
    # Same math, different fusion: agreement to float32 rounding, and a non-trivial image.
    assert np.abs(np.asarray(image) - np.asarray(eager_image)).max() <= 1e-6
    assert np.asarray(image).std() > 0.1
    assert set(probes) == set(eager_probes) == {s.name for s in site_table(CFG)}
    for name, entry in probes.items():
        for key in ("gamma", "beta"):
            np.testing.assert_allclose(entry[key], eager_probes[name][key], rtol=1e-6, atol=1e-6)


def test_no_recompilation_batching_and_vmap(model):
    z, labels = latents(B, seed=7), np.array([3, 3])
    with forward_traces() as traces:  # generate's jit of forward, traced afresh
        batched = np.asarray(generate(model, z, labels, 0.7))
        assert len(traces) == 1
        images = []
        for seed, classes, t, lerp in [
            (1, [2, 3], 0.4, False),
            (2, [9, 9], 0.405, False),
            (3, np.array([[0.5] * 2 + [0] * 8, [0.1] * 10], np.float32), 0.14, False),
            (4, [5, 0], 0.58, True),
            (5, np.array([4, 6], np.int64), 1.0, True),
        ]:
            images.append(generate(model, latents(B, seed, t), classes, t, correct_lerp=lerp))
        # New classes, latents, truncations and lerp modes: no new compilation.
        assert len(traces) == 1
        # Different inputs really gave different images (the calls were not no-ops).
        assert np.abs(np.asarray(images[0]) - np.asarray(images[1])).max() > 1e-3

        # A batch of B equals B separate calls. Batch 1 is a new shape: one new compilation
        # for both calls (the counter does move).
        separate = [
            np.asarray(generate(model, z[i : i + 1], labels[i : i + 1], 0.7)) for i in (0, 1)
        ]
        assert len(traces) == 2
    assert np.abs(batched - np.concatenate(separate)).max() <= 1e-6

    # vmap over latents equals the batch.
    rows, weights = stats_blend(0.7, CFG.n_stats)

    @jax.jit
    def one(zi, yi):
        image, _ = Generator(CFG).apply(model.variables, zi[None], yi[None], (rows, weights))
        return image[0]

    vmapped = np.asarray(jax.vmap(one)(jnp.asarray(z), jnp.asarray(one_hot(labels))))
    assert np.abs(batched - vmapped).max() <= 1e-6
    # Both images share a class but not a latent: batching did not mix up rows.
    assert np.abs(batched[0] - batched[1]).max() > 1e-3


# --------------------------------------------------------------------------------------------
# Probes
# --------------------------------------------------------------------------------------------

_probes_only = jax.jit(awareness.probes, static_argnums=0)


def assert_probes_close(got, want):
    """gamma/beta within 1e-6 of each site's scale; t = -beta/gamma within what those errors
    allow, ``(|d beta| + |t| |d gamma|) / |gamma|``, where |gamma| >= 0.05. (The probes-only
    path splits the affine maps into latent and class parts, so it rounds differently from
    the generator's one matmul over the joined condition.)"""
    assert set(got) == set(want)
    for name in want:
        scale = {}
        for key in ("gamma", "beta"):
            g, w = np.asarray(got[name][key]), np.asarray(want[name][key])
            scale[key] = 1e-6 * np.abs(w).max()
            assert np.abs(g - w).max() <= scale[key], (name, key)
        gamma, t = np.asarray(want[name]["gamma"]), np.asarray(want[name]["t"])
        ok = np.abs(gamma) >= 0.05
        bound = (scale["beta"] + np.abs(t) * scale["gamma"]) / np.abs(gamma) + 1e-7
        err = np.abs(np.asarray(got[name]["t"]) - t)
        assert (err[ok] <= bound[ok]).all(), (name, err[ok].max())


def test_probes_only_path_equals_generator_probes(model):
    z = latents(B, seed=11)
    for classes in (np.array([1, 8]), np.array([[0.2] * 5 + [0] * 5, [0.05] * 10], np.float32)):
        _, captured = generate(model, z, classes, 0.4, capture=Capture())
        y = one_hot(classes) if classes.ndim == 1 else classes
        assert_probes_close(_probes_only(CFG, model.params, z, y), captured)


def test_probes_by_hand_in_numpy(model):
    # Independent float64 computation: c = [z, y @ E], gamma = 1 + c @ S, beta = c @ O.
    z, labels = latents(B, seed=12), np.array([4, 2])
    _, captured = generate(model, z, labels, 1.0, capture=Capture())
    p = model.params
    c = np.concatenate([z, one_hot(labels) @ p["embedding"]], axis=1).astype(np.float64)
    for s in site_table(CFG):
        bn = p[s.block_name][s.name.split(".")[1]]
        gamma, beta = 1 + c @ bn["scale"], c @ bn["offset"]
        assert captured[s.name]["gamma"].shape == (B, s.channels)
        np.testing.assert_allclose(captured[s.name]["gamma"], gamma, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(captured[s.name]["beta"], beta, rtol=1e-5, atol=1e-6)


def test_soft_class_vector_probes_are_the_mixture(model):
    # gamma and beta are affine in y, and 0.3 + 0.7 = 1, so for y = 0.3 e_a + 0.7 e_b:
    # gamma(y) = 0.3 gamma(e_a) + 0.7 gamma(e_b) (same for beta), up to float32 rounding.
    a, b = 2, 6
    z = np.repeat(latents(1, seed=13), B, axis=0)
    mix = 0.3 * one_hot([a]) + 0.7 * one_hot([b])
    _, pure = generate(model, z, [a, b], 0.5, capture=Capture())
    _, mixed = generate(model, z, np.concatenate([mix, mix]), 0.5, capture=Capture())
    some_t_differs = False
    for s in site_table(CFG):
        for key in ("gamma", "beta"):
            p = np.asarray(pure[s.name][key], np.float64)
            want = 0.3 * p[0] + 0.7 * p[1]
            got = np.asarray(mixed[s.name][key])[0]
            assert np.abs(got - want).max() <= 4e-7 * max(1.0, np.abs(want).max()), (s.name, key)
        # ... while t = -beta / gamma is not a mixture (a ratio of affine maps).
        t = np.asarray(pure[s.name]["t"], np.float64)
        t_mix = np.asarray(mixed[s.name]["t"])[0]
        some_t_differs |= np.abs(t_mix - (0.3 * t[0] + 0.7 * t[1])).max() > 1e-3
    assert some_t_differs


# --------------------------------------------------------------------------------------------
# Capture
# --------------------------------------------------------------------------------------------


def test_capture_one_site_and_nothing(model):
    z, labels = latents(B, seed=14), [1, 5]
    site = resolve_site(CFG, "block1.bn2")
    _, full = generate(model, z, labels, 0.5, capture=Capture(features=True))
    image, one = generate(
        model, z, labels, 0.5, capture=Capture(features=True, sites=("block1.bn2",))
    )
    assert list(one) == ["block1.bn2"]
    assert set(one["block1.bn2"]) == {"t", "gamma", "beta", "features"}
    # block1 upsamples after bn1: bn2 sees 8x8 maps with input width 16 * 4 // 4 channels.
    assert one["block1.bn2"]["features"].shape == (B, 8, 8, 16) == (B, 8, 8, site.channels)
    for key in ("t", "gamma", "beta", "features"):
        np.testing.assert_array_equal(one["block1.bn2"][key], full["block1.bn2"][key])
    plain = generate(model, z, labels, 0.5, capture=NOTHING)
    assert isinstance(plain, jax.Array) and plain.shape == (B, 64, 64, 3)
    np.testing.assert_allclose(plain, image, rtol=0, atol=1e-6)
    assert set(full) == {s.name for s in site_table(CFG)}
    assert set(full["block0.bn0"]) == {"t", "gamma", "beta", "features"}
    # A label selects the same site; an unknown name is an error, not an empty capture.
    _, by_label = generate(model, z, labels, 0.5, capture=Capture(sites=(site.label,)))
    assert list(by_label) == ["block1.bn2"]
    np.testing.assert_array_equal(by_label["block1.bn2"]["t"], full["block1.bn2"]["t"])
    with raises(
        "unknown site 'block1.bn7'; sites are block0.bn0..block4.bn3 (L0..L19) and block "
        "outputs block0.out..block4.out; closest: block1.bn3, block1.bn2, block1.bn1"
    ):
        generate(model, z, labels, 0.5, capture=Capture(sites=("block1.bn7",)))


# --------------------------------------------------------------------------------------------
# Truncation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "t, rows, weights, lerp_weights, row",
    [
        # t / (1/50) in float64, then math.modf:
        (0.4, (20, 20), (1.0, 0.0), (1.0, 0.0), 20.0),  # 20.0 exactly: on the grid
        (0.405, (20, 21), (0.25, 0.75), (0.75, 0.25), 20.75),  # 20.25: reversed weights
        (0.14, (7, 8), (8.881784e-16, 1.0), (1.0, 8.881784e-16), 8.0),  # 7.000000000000001
        (0.58, (28, 29), (1.0, 3.5527137e-15), (3.5527137e-15, 1.0), 28.0),  # 28.999999999999996
        (1.0, (50, 50), (1.0, 0.0), (1.0, 0.0), 50.0),
    ],
)
def test_stats_blend_by_hand(t, rows, weights, lerp_weights, row):
    got_rows, got_weights = stats_blend(t, 51)
    assert got_rows.dtype == np.int32 and got_weights.dtype == np.float32
    assert tuple(got_rows) == rows
    np.testing.assert_allclose(got_weights, weights, rtol=1e-6, atol=0)
    lerp_rows, got_lerp = stats_blend(t, 51, correct_lerp=True)
    assert tuple(lerp_rows) == rows
    np.testing.assert_allclose(got_lerp, lerp_weights, rtol=1e-6, atol=0)
    assert effective_row(t, 51) == pytest.approx(row, abs=1e-12)
    frac, start = math.modf(t * 50)  # the same row from the formula written another way
    assert effective_row(t, 51, correct_lerp=True) == pytest.approx(start + frac, abs=1e-6)


def test_model_uses_the_blended_rows(model):
    # Reference quirk: 0.405 uses row 20.75 = an ordinary lerp at 0.415; 0.14 snaps to row 8
    # = truncation 0.16. The statistic rows are distinct, so a wrong row would show.
    z, labels = latents(B, seed=15), [0, 4]

    def gen(t, lerp=False):
        return np.asarray(generate(model, z, labels, t, correct_lerp=lerp))

    np.testing.assert_allclose(gen(0.405), gen(0.415, True), rtol=0, atol=1e-6)
    np.testing.assert_allclose(gen(0.14), gen(0.16), rtol=0, atol=1e-6)
    assert np.abs(gen(0.405) - gen(0.405, True)).max() > 1e-3


@pytest.mark.parametrize(
    "bad, message",
    [
        (0, "truncation must be in (0, 1]; got 0"),
        (1.5, "truncation must be in (0, 1]; got 1.5"),
        (float("nan"), "truncation must be in (0, 1]; got nan"),
        (-0.2, "truncation must be in (0, 1]; got -0.2"),
        ("abc", "truncation must be a number in (0, 1]; got 'abc'"),
        (None, "truncation must be a number in (0, 1]; got None"),
    ],
)
def test_bad_truncation(model, bad, message):
    with raises(message):
        stats_blend(bad, 51)
    with raises(message):
        truncated_noise(2, 16, bad)
    with raises(message):
        generate(model, latents(B), [0, 1], bad)


def test_truncated_noise_matches_reference_package():
    utils = pytest.importorskip("pytorch_pretrained_biggan.utils")
    for t in (1.0, 0.4, 0.73):
        ours = truncated_noise(3, 16, t, seed=0)
        want = utils.truncated_noise_sample(batch_size=3, dim_z=16, truncation=t, seed=0)
        assert ours.dtype == np.float32 and ours.shape == (3, 16)
        np.testing.assert_array_equal(ours, want)
        assert np.abs(ours).max() <= 2 * t
    assert not np.array_equal(truncated_noise(3, 16, 1.0, seed=0), truncated_noise(3, 16, 1.0, 1))


# --------------------------------------------------------------------------------------------
# Input errors
# --------------------------------------------------------------------------------------------


def test_bad_latents_and_classes(model):
    with raises("latents must have shape [2, 16]; got [2, 15]"):
        generate(model, np.zeros((2, 15)), [0, 1], 0.5)
    with raises("latents must have shape [2, 16]; got [16]"):
        generate(model, np.zeros(16), [0, 1], 0.5)
    with raises("latents must have shape [2, 16]; got [3, 16]"):
        generate(model, np.zeros((3, 16)), [0, 1], 0.5)
    with raises("class label 10 is out of range; this model has classes 0..9"):
        generate(model, latents(B), [3, 10], 0.5)
    with raises("class label -1 is out of range; this model has classes 0..9"):
        generate(model, latents(B), [-1, 0], 0.5)
    with raises("class vectors must have shape [B, 10]; got (2, 9)"):
        generate(model, latents(B), np.zeros((2, 9), np.float32), 0.5)
    with raises("class vectors contain NaN or infinity; give finite values"):
        generate(model, latents(B), np.full((2, 10), np.nan, np.float32), 0.5)


# --------------------------------------------------------------------------------------------
# Site table
# --------------------------------------------------------------------------------------------


def test_site_table_biggan_deep_256():
    cfg = PRESETS["biggan-deep-256"]
    sites = site_table(cfg)
    assert len(sites) == 48  # 12 blocks x 4 CCBNs
    first = sites[0]
    assert (first.name, first.label, first.channels, first.resolution) == (
        "block0.bn0", "L0", 2048, 4
    )  # fmt: skip
    assert first.reference_name == "generator.layers.0.bn_0"
    # Attention is generator.layers.8, so block 7 keeps index 7 and block 8 becomes 9.
    by_name = {s.name: s for s in sites}
    assert by_name["block7.bn3"].reference_name == "generator.layers.7.bn_3"
    assert by_name["block8.bn0"].reference_name == "generator.layers.9.bn_0"
    assert by_name["block11.bn3"].reference_name == "generator.layers.12.bn_3"
    assert resolve_site(cfg, "L33") == by_name["block8.bn1"]
    # Independently from the layer list: each block has its input width (128 * in) at bn0
    # and a quarter of it at bn1..bn3; bn2/bn3 are after the block's upsampling.
    total, res, expected = 0, 4, []
    for up, cin, _ in cfg.layers:
        c = 128 * cin
        out_res = 2 * res if up else res
        expected += [(c, res), (c // 4, res), (c // 4, out_res), (c // 4, out_res)]
        total += c + 3 * (c // 4)
        res = out_res
    assert [(s.channels, s.resolution) for s in sites] == expected
    assert total == total_channels(cfg) == 24192
    assert sites[-1].resolution == 256
    offsets = site_offsets(cfg)
    assert offsets.shape == (48, 2) and offsets[0, 0] == 0 and offsets[-1, 1] == total
    np.testing.assert_array_equal(offsets[1:, 0], offsets[:-1, 1])  # contiguous columns
