"""Constructed models and classifiers with known answers, shared by the analysis tests
(imported as ``from test_analysis_models import ...``), and checks that the constructions
do what they claim at the generator level."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from helpers import random_model
from jaxaware.awareness import Awareness
from jaxaware.generate import generate
from jaxaware.interventions import flat_multiply, flat_zero
from jaxaware.model import Model
from jaxaware.models import BigGANDeepConfig
from jaxaware.sites import resolve_site, site_offsets, site_table

# 2 blocks, 8 CCBN sites (16, 4, 4, 4, 16, 4, 4, 4 channels), 8x8 images, 4 classes.
TINY = BigGANDeepConfig(layers=((False, 2, 2), (True, 2, 1)), output_dim=8, z_dim=8,
                        class_embed_dim=8, channel_width=8, num_classes=4,
                        attention_layer_position=2)

#: Which convolution reads each CCBN site of a BigGAN-deep block, and along which axis of
#: its kernel the site's channels lie (Dense kernels [in, out]; convs [3, 3, in, out]).
_READER = {"bn0": ("conv0", 0), "bn1": ("conv1", 2), "bn2": ("conv2", 2), "bn3": ("conv3", 0)}


def tiny_model(seed: int = 0) -> Model:
    return random_model(TINY, seed)


def _copy(variables):
    return jax.tree_util.tree_map(lambda x: np.array(x, copy=True), variables)


def with_dead_channel(model: Model, site: str, channel: int) -> Model:
    """``model`` with every weight that reads ``channel`` of ``site`` set to 0: zeroing that
    channel provably changes nothing downstream."""
    s = resolve_site(model.config, site, kinds=("ccbn",))
    variables = _copy(model.variables)
    conv, axis = _READER[s.name.split(".")[1]]
    kernel = variables["params"][s.block_name][conv]["kernel"]
    index = [slice(None)] * kernel.ndim
    index[axis] = channel
    kernel[tuple(index)] = 0.0
    return Model(model.config, variables, model.model_id + "-dead")


def with_linear_tail(model: Model) -> Model:
    """``model`` whose output ReLU never clips (output BN bias 50) and whose ``to_rgb`` is
    small (tanh far from saturation): the pre-tanh image is affine in the last block's
    output, hence in the channels of the last CCBN site (block{n-1}.bn3 -> conv3). That
    site's statistics mean is -3, so its channels are mostly active."""
    variables = _copy(model.variables)
    last = site_table(model.config)[-1]
    variables["stats"][last.block_name]["bn3"]["mean"][:] = -3.0
    variables["params"]["bn"]["bias"][:] = 50.0
    variables["params"]["to_rgb"]["kernel"] *= 0.01
    variables["params"]["to_rgb"]["bias"][:] = 0.0
    return Model(model.config, variables, model.model_id + "-linear-tail")


@functools.lru_cache(maxsize=None)
def linear_classifier(config, seed: int = 0, undo_tanh: bool = False):
    """``logits = x.reshape(B, -1) @ W + b`` (``x = arctanh(images)`` with ``undo_tanh``:
    then the logits are affine in the generator's pre-tanh output). Cached: the same
    function for the same arguments, so compiled sweeps are shared between tests."""
    rng = np.random.RandomState(seed)
    d = config.resolution ** 2 * 3
    w = jnp.asarray(rng.randn(d, config.num_classes).astype(np.float32) * 4 / np.sqrt(d))
    b = jnp.asarray(rng.randn(config.num_classes).astype(np.float32))

    def logits(images):
        x = jnp.arctanh(images) if undo_tanh else images
        return x.reshape(x.shape[0], -1) @ w + b

    return logits


def fake_awareness(config, category, latent=None, classes=None) -> Awareness:
    """An :class:`Awareness` holding the given ``[K, C_total]`` arrays for ``config``."""
    category = np.asarray(category, np.float32)
    latent = np.zeros_like(category) if latent is None else np.asarray(latent, np.float32)
    k = category.shape[0]
    return Awareness(category=category, latent=latent, flip_fraction=np.zeros_like(category),
                     classes=np.arange(k) if classes is None else np.asarray(classes),
                     site_names=tuple(s.name for s in site_table(config)),
                     site_offsets=site_offsets(config), num_latents=1, truncation=1.0,
                     seed=-1, model_id="constructed")


def _latents(n=3, seed=0):
    return np.random.RandomState(seed).randn(n, TINY.z_dim).astype(np.float32) * 0.7


def test_dead_channel_is_dead_and_a_live_one_is_not():
    model = with_dead_channel(tiny_model(), "block1.bn1", 2)
    z, y = _latents(), np.array([0, 1, 3])
    base = np.asarray(generate(model, z, y, 1.0))
    dead = np.asarray(generate(model, z, y, 1.0,
                               interventions=flat_zero(TINY, [site_offsets(TINY)[5, 0] + 2])))
    live = np.asarray(generate(model, z, y, 1.0,
                               interventions=flat_zero(TINY, [site_offsets(TINY)[5, 0] + 1])))
    np.testing.assert_array_equal(dead, base)
    assert np.abs(live - base).max() > 1e-3


def test_linear_tail_makes_the_pre_tanh_image_affine_in_the_last_site():
    model = with_linear_tail(tiny_model())
    z, y = _latents(), np.array([0, 1, 3])
    col = int(site_offsets(TINY)[-1, 0]) + 1
    pre = [np.arctanh(np.asarray(generate(model, z, y, 1.0,
                                          interventions=flat_multiply(TINY, [col], a))))
           for a in (0.0, 1.0, 2.0)]
    assert np.abs(pre[1]).max() < 0.95  # far from saturation
    assert np.abs(pre[1] - pre[0]).max() > 1e-3  # the channel matters ...
    np.testing.assert_allclose(pre[2] - pre[1], pre[1] - pre[0], atol=2e-5)  # ... linearly
