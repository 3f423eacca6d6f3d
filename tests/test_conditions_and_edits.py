"""Per-block conditions, sweepable (flat) edits, block-output sites and the pure function,
for both families (small random models from ``tests/helpers``)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import SMALL, SMALL_BIGGAN, forward_traces, random_model, raises
from jaxaware import interventions as iv
from jaxaware.generate import forward, generate, statistic_weights
from jaxaware.models.layers import NOTHING, Capture
from jaxaware.sites import block_sites, site_table, total_channels

CONFIGS = {"deep": SMALL, "biggan": SMALL_BIGGAN}


@functools.lru_cache(maxsize=None)
def _model(kind):
    return random_model(CONFIGS[kind], seed=2)


def _inputs(cfg, batch=2, seed=0):
    z = np.random.RandomState(seed).standard_normal((batch, cfg.z_dim)).astype(np.float32)
    return 0.5 * z, np.arange(batch) % cfg.num_classes


KINDS = pytest.mark.parametrize("kind", list(CONFIGS))


# --------------------------------------------------------------------------------------------
# Per-block conditions
# --------------------------------------------------------------------------------------------


@KINDS
def test_one_condition_for_all_blocks_is_bit_identical(kind):
    model = _model(kind)
    cfg = model.config
    z, labels = _inputs(cfg)
    y = np.eye(cfg.num_classes, dtype=np.float32)[labels]
    per_block = np.repeat(y[:, None], cfg.n_blocks, axis=1)
    a, cap_a = generate(model, z, y, 0.5, capture=Capture(features=True))
    b, cap_b = generate(model, z, per_block, 0.5, capture=Capture(features=True))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for name in cap_a:
        for key in cap_a[name]:
            np.testing.assert_array_equal(cap_a[name][key], cap_b[name][key])


@KINDS
@pytest.mark.parametrize("j", [1, 2])
def test_switching_class_from_block_j_on_equals_a_composition(kind, j):
    """Class A in blocks < j and class B from block j on, against an independent
    composition: generate class B everywhere but overwrite block j-1's output with the
    class-A synthesis's block j-1 output (a replace edit of every channel)."""
    model = _model(kind)
    cfg = model.config
    z, _ = _inputs(cfg, seed=3)
    a, b = np.array([1, 4]), np.array([7, 2])
    eye = np.eye(cfg.num_classes, dtype=np.float32)
    mixed = np.stack([eye[a] if i < j else eye[b] for i in range(cfg.n_blocks)], axis=1)
    images = np.asarray(generate(model, z, mixed, 0.7))

    site = f"block{j - 1}.out"
    _, cap_a = generate(model, z, a, 0.7, capture=Capture(probes=False, sites=(site,)))
    h_a = np.asarray(cap_a[site]["features"])
    c = h_a.shape[-1]
    edit = {site: iv.replace(np.arange(c), h_a, c)}
    composed = np.asarray(generate(model, z, b, 0.7, interventions=edit))
    assert np.abs(images - composed).max() <= 1e-5
    # The switch matters: neither all-A nor all-B.
    for other in (a, b):
        assert np.abs(images - np.asarray(generate(model, z, other, 0.7))).max() > 1e-3


@KINDS
def test_wrong_block_count_is_an_error(kind):
    model = _model(kind)
    cfg = model.config
    z, _ = _inputs(cfg)
    bad = np.zeros((2, cfg.n_blocks + 1, cfg.num_classes), np.float32)
    with raises(f"per-block class vectors must have shape [B, {cfg.n_blocks}, "
                f"{cfg.num_classes}] ({cfg.n_blocks} blocks); got [2, {cfg.n_blocks + 1}, "
                f"{cfg.num_classes}]"):
        generate(model, z, bad, 0.5)


# --------------------------------------------------------------------------------------------
# Flat edits
# --------------------------------------------------------------------------------------------


@KINDS
def test_flat_edit_equals_the_dict_form(kind):
    model = _model(kind)
    cfg = model.config
    z, labels = _inputs(cfg, seed=5)
    sites = site_table(cfg)
    s1, s2 = sites[1], sites[-2]
    as_dict = {
        s1.name: iv.multiply([0, 2], [0.5, 3.0], s1.channels),
        s2.name: iv.add([1], -0.7, s2.channels),
    }
    flat = iv.flat_from_dict(cfg, as_dict)
    assert flat.scale.shape == (total_channels(cfg),)
    a = np.asarray(generate(model, z, labels, 0.5, interventions=as_dict))
    b = np.asarray(generate(model, z, labels, 0.5, interventions=flat))
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - np.asarray(generate(model, z, labels, 0.5))).max() > 1e-3
    # Columns address the same channels as the awareness file's columns.
    col = iv.flat_zero(cfg, [s1.offset + 2])
    by_col = np.asarray(generate(model, z, labels, 0.5, interventions=col))
    by_site = np.asarray(generate(model, z, labels, 0.5,
                                  interventions={s1.name: iv.zero([2], s1.channels)}))
    np.testing.assert_array_equal(by_col, by_site)


@KINDS
def test_ablation_sweep_over_every_site_compiles_once(kind):
    """vmap over "which channel is ablated", channels from every site: one compilation,
    each result equal to the single-edit generation."""
    model = _model(kind)
    cfg = model.config
    z, labels = _inputs(cfg, batch=1, seed=6)
    sites = site_table(cfg)
    columns = [s.offset + (i % s.channels) for i, s in enumerate(sites)]
    sweep = iv.ablation_sweep(cfg, columns)
    blend = statistic_weights(cfg, 0.5)
    y = jnp.asarray(np.eye(cfg.num_classes, dtype=np.float32)[labels])

    traces = []

    def one(e):  # runs only while jit traces: once per compilation
        traces.append(1)
        return forward(cfg, model.variables, z, y, blend, e)[0][0]

    run = jax.jit(jax.vmap(one))
    images = np.asarray(run(sweep))
    run(iv.ablation_sweep(cfg, columns[::-1]))  # other channels: the same program
    assert len(traces) == 1
    assert images.shape[0] == len(sites)
    # Against the dict form (one compilation per site: a few sites, first to last).
    for i in sorted({0, len(sites) // 3, 2 * len(sites) // 3, len(sites) - 1}):
        s = sites[i]
        single = {s.name: iv.zero([columns[i] - s.offset], s.channels)}
        want = np.asarray(generate(model, z, labels, 0.5, interventions=single))[0]
        assert np.abs(images[i] - want).max() <= 1e-5, s.name
    assert len({images[i].tobytes() for i in range(len(sites))}) > len(sites) // 2


def test_flat_edit_of_the_wrong_length_is_an_error():
    model = _model("biggan")
    cfg = model.config
    z, labels = _inputs(cfg)
    flat = iv.flat_identity(cfg)
    bad = flat.replace(scale=flat.scale[:-1])
    with raises(f"FlatEdit scale has shape [{flat.num_channels - 1}]; it must be "
                f"[{flat.num_channels}] (one value per channel of its sites; vmap over a "
                "leading batch axis)"):
        generate(model, z, labels, 0.5, interventions=bad)
    other = iv.flat_identity(SMALL)
    with raises("FlatEdit site block0.bn0 (width 64) is not a site of this model; build it "
                "with this model's config"):
        generate(model, z, labels, 0.5, interventions=other)


# --------------------------------------------------------------------------------------------
# Block outputs
# --------------------------------------------------------------------------------------------


@KINDS
def test_block_outputs_captured_and_edited(kind):
    model = _model(kind)
    cfg = model.config
    z, labels = _inputs(cfg, seed=8)
    blocks = block_sites(cfg)
    plain, cap = generate(model, z, labels, 0.5, capture=Capture(probes=False,
                                                                 block_outputs=True))
    assert list(cap) == [s.name for s in blocks]
    for s in blocks:
        assert cap[s.name]["features"].shape == (2, s.resolution, s.resolution, s.channels)
    site = blocks[1]
    edit = {site.name: iv.zero(np.arange(site.channels), site.channels)}
    edited, cap_e = generate(model, z, labels, 0.5, interventions=edit,
                             capture=Capture(probes=False, sites=(site.name,)))
    assert np.abs(np.asarray(cap_e[site.name]["features"])).max() == 0
    assert np.abs(np.asarray(edited) - np.asarray(plain)).max() > 1e-3
    # A flat edit over block outputs addresses the same channels.
    flat = iv.flat_zero(cfg, np.arange(site.offset, site.offset + site.channels),
                        sites=[s.name for s in blocks])
    np.testing.assert_array_equal(
        np.asarray(generate(model, z, labels, 0.5, interventions=flat)), np.asarray(edited))


# --------------------------------------------------------------------------------------------
# The pure function inside a user's transformations
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["biggan"])  # the deep test model takes 40 s to compile this
def test_forward_under_user_jit_vmap_and_grad(kind):
    model = _model(kind)
    cfg = model.config
    z, labels = _inputs(cfg, seed=9)
    blend = statistic_weights(cfg, 0.5)
    want = np.asarray(generate(model, z, labels, 0.5))

    @jax.jit
    def images(variables, z, y):
        return forward(cfg, variables, z, y, blend)[0]

    y = jnp.asarray(np.eye(cfg.num_classes, dtype=np.float32)[labels])
    np.testing.assert_allclose(np.asarray(images(model.variables, z, y)), want, atol=1e-6)
    per_image = jax.vmap(lambda zi, yi: images(model.variables, zi[None], yi[None])[0])
    np.testing.assert_allclose(np.asarray(per_image(z, y)), want, atol=1e-5)

    # Gradient of a pixel's brightness w.r.t. the class vector, against finite differences.
    def brightness(yv):
        return jnp.mean(forward(cfg, model.variables, z[:1], yv, blend)[0])

    y0 = y[:1]
    grad = np.asarray(jax.grad(brightness)(y0))
    direction = np.zeros_like(np.asarray(y0))
    direction[0, 3] = 1.0
    eps = 1e-2
    fd = (brightness(y0 + eps * direction) - brightness(y0 - eps * direction)) / (2 * eps)
    assert abs(float(fd) - grad[0, 3]) <= 1e-3 * max(1.0, abs(float(fd)))
    assert np.abs(grad).max() > 0


def test_generate_does_not_recompile_across_edit_values():
    model = _model("biggan")
    cfg = model.config
    z, labels = _inputs(cfg, seed=10)
    with forward_traces() as traces:  # generate's jit of forward, traced afresh
        generate(model, z, labels, 0.5, interventions=iv.flat_zero(cfg, [0]))
        assert len(traces) == 1
        for col in (3, 17, total_channels(cfg) - 1):
            generate(model, z, labels, 0.5, interventions=iv.flat_zero(cfg, [col]))
        assert len(traces) == 1
    assert NOTHING.active is False


@KINDS
def test_split_forward_equals_the_whole(kind):
    """stop=b returns block b's input; start=b with it finishes the pass: for every b, the
    same images (the split a channel sweep uses to skip the shared prefix)."""
    model = _model(kind)
    cfg = model.config
    z, labels = _inputs(cfg, seed=12)
    blend = statistic_weights(cfg, 0.5)
    y = jnp.asarray(np.eye(cfg.num_classes, dtype=np.float32)[labels])
    whole = np.asarray(forward(cfg, model.variables, z, y, blend)[0])
    for b in range(1, cfg.n_blocks):
        h, _ = forward(cfg, model.variables, z, y, blend, stop=b)
        images, cap = forward(cfg, model.variables, z, y, blend, capture=Capture(), start=b, h=h)
        assert np.abs(np.asarray(images) - whole).max() <= 1e-6, b
        assert min(int(name[5]) for name in cap) == b  # blocks before b did not run
    with raises(f"start=0, stop=0: need 0 <= start < stop <= {cfg.n_blocks} blocks, and h (the "
                "input of block start) exactly when start > 0"):
        forward(cfg, model.variables, z, y, blend, stop=0)
