"""Single-channel editing: a channel the model provably ignores changes nothing, the
vmapped sweep equals one edited ``generate`` per (channel, strength) and compiles once,
channel choices from hand-made awareness, change shares on ground-truth part maps, and
one-line errors.

The generator is the shipped toy-world model (its config, so the compiled programs are
shared with tests/test_applications_cli.py), with one channel cut off."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from helpers import forward_traces, raises
from jaxaware import interventions as iv
from jaxaware.applications import editing as ed
from jaxaware.applications.edit_measures import score_edits, summarize_edits
from jaxaware.awareness import Awareness
from jaxaware.errors import JaxawareError
from jaxaware.generate import generate
from jaxaware.model import load
from jaxaware.models.layers import Capture
from jaxaware.sites import resolve_site
from jaxaware.toyworld import render
from jaxaware.truncation import truncated_noise

IGNORED = ("block1.bn1", 5)  # conv1 of block1 reads this channel with all-zero weights
USED = ("block1.bn1", 6)


@pytest.fixture(scope="module")
def model():
    """The default model (original BigGAN) with the weights that read block1.bn1's channel 5
    set to 0: bn1's output feeds only conv1 (after ReLU and upsampling; the skip path takes
    the block input), so nothing downstream can depend on that channel."""
    m = load()
    variables = copy.deepcopy(m.variables)
    kernel = np.array(variables["params"]["block1"]["conv1"]["kernel"])  # [3, 3, in, out]
    kernel[:, :, IGNORED[1]] = 0.0
    variables["params"]["block1"]["conv1"]["kernel"] = kernel
    return type(m)(m.config, variables, m.model_id)


@pytest.fixture(scope="module")
def z(model):
    return truncated_noise(2, model.config.z_dim, 1.0, seed=0)


@pytest.fixture(scope="module")
def sweep(model, z):
    return ed.edit_sweep(model, z, [3, 7], [IGNORED, USED], (-4.0, 3.0), mode="add")


def test_ignored_channel_changes_nothing(sweep):
    ignored, used = sweep.images
    # every strength gives the input back, bit for bit (the same compiled program)
    assert np.array_equal(ignored, np.broadcast_to(sweep.inputs, ignored.shape))
    assert score_edits(sweep)["magnitude"][0].max() == 0.0
    # the test can fail: the neighbouring channel, which conv1 reads, does change the image
    assert np.abs(used[0] - sweep.inputs).max() > 1e-3
    assert np.array_equal(sweep.strengths, [-4.0, 0.0, 3.0])  # 0 added, sorted


def test_sweep_equals_one_generate_per_edit(model, z, sweep):
    site = resolve_site(model.config, USED[0])
    for s_idx in (0, 2):
        amount = sweep.amounts[1, s_idx]
        edit = {site.name: iv.add([USED[1]], amount, site.channels)}
        want = np.asarray(generate(model, z, [3, 7], 1.0, interventions=edit))
        np.testing.assert_allclose(sweep.images[1, s_idx], want, atol=2e-5)
    # the added constant is strength x the channel's std over the unedited batch
    capture = Capture(probes=False, features=True, sites=(site.name,))
    _, cap = generate(model, z, [3, 7], 1.0, capture=capture)
    sigma = np.asarray(cap[site.name]["features"])[..., USED[1]].std()
    np.testing.assert_allclose(sweep.amounts[1], sigma * np.array([-4.0, 0.0, 3.0]), rtol=1e-5)


def test_multiply_and_one_compilation(model, z):
    with forward_traces("jaxaware.applications.editing") as calls:
        ed.edit_sweep(model, z, [3, 7], [IGNORED, USED], (-4.0, 3.0), mode="add")
        # one sweep program and one of the channel stds (the "std" units of add)
        assert sorted("std" if "capture" in c else "sweep" for c in calls) == ["std", "sweep"]
        calls.clear()
        sw = ed.edit_sweep(model, z, 3, "block2.bn2:1,L2:0", (-1.0, 1.0), mode="multiply")
        assert calls == []  # other channels, sites, strengths, mode: no new trace
    site = resolve_site(model.config, "block2.bn2")
    edit = {site.name: iv.multiply([1], 0.0, site.channels)}  # 1 + s with s = -1
    want = np.asarray(generate(model, z, [3, 3], 1.0, interventions=edit))
    np.testing.assert_allclose(sw.images[0, 0], want, atol=2e-5)
    assert [c.label for c in sw.channels] == ["block2.bn2:1", "block1.bn1:0"]  # L2 = block1.bn1


def fake_awareness(category, latent, flip, offsets, classes=(0, 1, 2)):
    names = tuple(f"block{i}.bn0" for i in range(len(offsets)))
    return Awareness(np.asarray(category, np.float32), np.asarray(latent, np.float32),
                     np.asarray(flip, np.float32), np.asarray(classes), names,
                     np.asarray(offsets), 100, 1.0, 0, "fake")


def test_category_channels_skip_flipped():
    cat = np.array([[9.0, 1.0, 3.0, 2.0, 5.0, 0.0]] * 3)
    flip = np.zeros_like(cat)
    flip[:, 0] = 0.01  # gamma crossed 0: the 9.0 is not to be trusted
    aw = fake_awareness(cat, np.zeros_like(cat), flip, [[0, 2], [2, 6]])
    got = ed.category_channels(aw, 1, n=3)
    assert [(c.site, c.channel, c.column) for c in got] == [
        ("block1.bn0", 2, 4), ("block1.bn0", 0, 2), ("block1.bn0", 1, 3)]
    assert [c.score for c in got] == [5.0, 3.0, 2.0]
    assert [c.column for c in ed.category_channels(aw, 1, n=1, sites="block0.bn0")] == [1]


def test_shared_latent_channels_rank_by_worst_class():
    # one site of 4 channels; within-class ranks (0 = highest Var_z[t]) by hand:
    #   class 0: ch0 0, ch2 1, ch1 2, ch3 3;  class 1: ch2 0, ch3 1, ch1 2, ch0 3;
    #   class 2: ch0 0, ch2 1, ch1 2, ch3 3.  Worst ranks: ch0 3, ch1 2, ch2 1, ch3 3.
    lat = np.array([[5.0, 1.0, 4.0, 0.0], [0.0, 1.0, 4.0, 3.0], [9.0, 0.5, 8.0, 0.0]])
    aw = fake_awareness(np.zeros_like(lat), lat, np.zeros_like(lat), [[0, 4]])
    got = ed.shared_latent_channels(aw, n=2)
    assert [c.channel for c in got] == [2, 1]
    assert [c.score for c in got] == [2 / 4, 3 / 4]  # (worst rank + 1) / width


def test_change_shares_on_ground_truth_parts():
    """A hand-made sweep whose edit changes only background pixels, then only one part."""
    images, parts = render(["cat", "bus"], seed=0, resolution=32)
    bg = parts == 0
    part = parts == parts.max()
    edited_bg = np.where(bg[..., None], images + 0.5, images)
    edited_part = np.where(part[..., None], images - 0.25, images)
    stack = np.stack([np.stack([edited_bg, images]), np.stack([edited_part, images])])
    sw = ed.EditSweep(stack, (ed.Channel("block0.bn0", 0, 0, "latent"),
                              ed.Channel("block0.bn0", 1, 1, "category")),
                      np.array([-1.0, 0.0]), np.zeros((2, 2)), "add", "std",
                      np.array([0, 5]), np.zeros((2, 4)), 1.0)
    sc = score_edits(sw, parts=parts)
    assert sc["change"][0, 0, 0] / sc["change"][0, 0].sum() == pytest.approx(1.0)
    summary = summarize_edits(["latent", "category"], sw.strengths, sc, ["p"] * 14)
    assert summary["latent"]["both"]["background_share"] == pytest.approx(1.0)
    assert summary["category"]["both"]["object_share"] == pytest.approx(1.0)
    assert summary["latent"]["both"]["background_area"] == pytest.approx(bg.mean())
    # magnitude: mean |change| per pixel (RGB mean) = 0.5 x background share of the pixels
    assert sc["magnitude"][0, 0] == pytest.approx(0.5 * bg.mean(), rel=1e-5)


def test_bad_input(model, z):
    with raises("strengths must be finite numbers; got nan"):
        ed.edit_sweep(model, z, 3, [USED], [float("nan"), 1.0])
    with raises("unknown edit mode 'scale'; use add or multiply"):
        ed.edit_sweep(model, z, 3, [USED], [1.0], mode="scale")
    with raises("channel of block1.bn1 must be an integer in 0..63; got 64"):
        ed.parse_channels(model.config, "block1.bn1:64")
    with raises("channel 'block1.bn1' is not SITE:CHANNEL; give e.g. block3.bn1:5 or L13:5"):
        ed.parse_channels(model.config, "block1.bn1")
    with pytest.raises(JaxawareError, match="^unknown site 'block9.bn1'; CCBN sites are "):
        ed.parse_channels(model.config, "block9.bn1:1")
    aw = fake_awareness(np.zeros((3, 6)), np.zeros((3, 6)), np.zeros((3, 6)), [[0, 2], [2, 6]])
    with raises("number of channels must be an integer in 1..6; got 7"):
        ed.category_channels(aw, 0, n=7)
    with raises("the awareness has no row for class 9; compute it for the classes you use"):
        ed.category_channels(aw, 9)
