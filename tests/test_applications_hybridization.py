"""Category hybridization on both families: reference == input gives the input, a block
output transplanted whole reproduces the reference, k = 0 is style mixing, the channel
ranking from hand-made awareness, the classifier scores by hand, one-line errors.

Generators: the shipped toy-world BigGAN-deep (32 px, 6 blocks) and tests/helpers.py's
small random original BigGAN (32 px, 3 blocks, hierarchical latents; the shipped default
model is exercised through the command line in tests/test_applications_cli.py)."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import SMALL, SMALL_BIGGAN, raises, random_model
from jaxaware.applications import hybridization as hy
from jaxaware.applications import awareness_for
from jaxaware.awareness import Awareness
from jaxaware.model import load
from jaxaware.sites import site_table

FAMILIES = {"deep": ("block2.out", "block3.bn1"), "biggan": ("block0.out", "block1.bn2")}


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def case(request):
    block_out, ccbn = FAMILIES[request.param]
    if request.param == "deep":
        model = load("toyworld-biggan-deep")
    else:
        model = random_model(SMALL_BIGGAN, seed=1)
    z = model.family.sample_latents(3, model.config, 1.0, 0)
    aw = awareness_for(model, [2, 5, 7])
    return model, z, aw, block_out, ccbn


def test_reference_equal_to_input_gives_the_input(case):
    model, z, aw, block_out, ccbn = case
    a = np.array([2, 5, 7])
    inputs = hy.style_mixing(model, z, a, a, model.config.n_blocks)
    for site in (block_out, [block_out, ccbn]):
        images, _ = hy.channel_mixing(model, z, a, a, site, 2, awareness=aw)
        np.testing.assert_allclose(images, inputs, atol=1e-5)
    np.testing.assert_allclose(hy.style_mixing(model, z, a, a, 1), inputs, atol=1e-5)


def test_whole_block_output_reproduces_the_reference(case):
    model, z, aw, block_out, ccbn = case
    a, b = np.array([2, 5, 7]), np.array([5, 7, 2])
    reference = hy.style_mixing(model, z, a, b, 0)
    inputs = hy.style_mixing(model, z, a, b, model.config.n_blocks)
    images, channels = hy.channel_mixing(model, z, a, b, block_out, "all")
    np.testing.assert_allclose(images, reference, atol=1e-5)
    assert np.abs(reference - inputs).max() > 1e-2  # the classes do differ
    # half the channels: neither the input nor the reference
    half, _ = hy.channel_mixing(model, z, a, b, block_out, channels[block_out].shape[1] // 2,
                                awareness=aw)
    assert np.abs(half - reference).max() > 1e-3 and np.abs(half - inputs).max() > 1e-3


def test_no_channels_is_style_mixing_after_the_block(case):
    model, z, aw, block_out, ccbn = case
    a, b = np.array([2, 5, 7]), np.array([7, 2, 5])
    for sites, switch in ((block_out, int(block_out[5]) + 1),
                          ([ccbn, block_out], int(ccbn[5]) + 1)):  # after the last site's block
        images, _ = hy.channel_mixing(model, z, a, b, sites, 0)
        style = hy.style_mixing(model, z, a, b, switch)
        np.testing.assert_allclose(images, style, atol=1e-5)
        assert np.abs(style - hy.style_mixing(model, z, a, b, switch - 1)).max() > 1e-4


def _aw(category, flip, names, offsets):
    category = np.asarray(category, np.float32)
    return Awareness(category, np.zeros_like(category), np.asarray(flip, np.float32),
                     np.array([0, 1]), tuple(names), np.asarray(offsets), 10, 1.0, 0, "fake")


def test_transplant_channels_ranking():
    sites = site_table(SMALL)
    total = sites[-1].offset + sites[-1].channels
    cat = np.zeros((2, total))
    flip = np.zeros((2, total))
    nxt = next(s for s in sites if s.block == 2)  # block2.bn0 reads block1.out
    cat[1, nxt.offset + 3] = 5.0
    cat[1, nxt.offset + 7] = 2.0
    cat[1, nxt.offset + 1] = 9.0
    flip[1, nxt.offset + 1] = 0.2  # gamma crossed 0: ranked after all the others
    aw = _aw(cat, flip, [s.name for s in sites], [[s.offset, s.offset + s.channels]
                                                 for s in sites])
    got = hy.transplant_channels(aw, SMALL, 1, "block1.out", 3)
    assert got.tolist() == [3, 7, 0]
    assert hy.transplant_channels(aw, SMALL, 1, "block1.out", "all").tolist() == \
        list(range(nxt.channels))
    assert hy.ranking_site(SMALL, "block1.out").name == "block2.bn0"
    assert hy.ranking_site(SMALL_BIGGAN, "block0.out").name == "block1.bn1"
    last = f"block{SMALL.n_blocks - 1}.out"
    with raises(f"{last} feeds no CCBN, so its channels have no awareness ranking; use k = all "
                "(4) or another site"):
        hy.transplant_channels(aw, SMALL, 1, last, 2)


def test_hybrid_scores_by_hand():
    probs = np.array([[0.5, 0.5, 0.0], [0.1, 0.6, 0.3], [0.0, 0.0, 1.0], [0.2, 0.2, 0.6]])
    s = hy.hybrid_scores(probs, [0, 0, 0, 0], [1, 1, 1, 1])
    np.testing.assert_allclose(s["mass"], [1.0, 0.7, 0.0, 0.4])
    np.testing.assert_allclose(s["reference_share"], [0.5, 6 / 7, 0.5, 0.5])
    np.testing.assert_allclose(s["evenness"], [1.0, 2 / 7, 1.0, 1.0])
    assert s["plausible"].tolist() == [True, True, False, False]


def test_bad_input(case):
    model, z, aw, block_out, ccbn = case
    width = next(s.channels for s in site_table(model.config) if s.name == ccbn)
    with raises(f"k at {ccbn} must be an integer in 0..{width}; got {width + 1}"):
        hy.channel_mixing(model, z, 2, 5, ccbn, width + 1, awareness=aw)
    with raises(f"style-mixing block must be an integer in 0..{model.config.n_blocks}; got -1"):
        hy.style_mixing(model, z, 2, 5, -1)
    with pytest.raises(hy.JaxawareError, match="^unknown site 'block9.out'; sites are "):
        hy.channel_mixing(model, z, 2, 5, "block9.out", 1, awareness=aw)
    n = model.config.num_classes
    with raises(f"reference class {n} is out of range; this model has classes 0..{n - 1}"):
        hy.channel_mixing(model, z, 2, np.array([1, 2, n]), block_out, 1, awareness=aw)
