"""What a model family supplies to the family-agnostic core, and the vocabulary it shares.

Vocabulary (every family, every module):

* **Layout.** Feature maps are NHWC: ``[batch, height, width, channels]``.
* **Block.** ``block{i}``: the i-th residual block of the generator, in forward order.
* **Channel.** One feature channel of one class-conditional batch norm (CCBN).
* **CCBN site.** One CCBN layer, ``block{i}.bn{k}``, numbered ``L0, L1, ...`` in forward
  order. Probes are read there and interventions act on its output after the ReLU that
  always follows it. The columns of all CCBN sites side by side form the *flat channel
  axis* (``C_total``) of awareness files and of :class:`~jaxaware.interventions.FlatEdit`.
* **Block-output site.** ``block{i}.out``: the block's output after the residual sum
  (before any attention that follows the block); it can be captured and edited, it has no
  probes.
* **Condition.** What a CCBN's affine maps read: each family builds one per block from the
  latent and the block's class vector (the class vector may differ per block, for style
  and channel mixing). ``gamma = 1 + cond @ W_gain`` and ``beta = cond @ W_bias``; the
  paper's probe (Sec. 2.2, Eq. 3) is ``t = -beta / gamma``.
* **Statistic rows.** Every batch norm holds ``n_stats`` rows of statistics; a truncation
  selects a blend of two rows (``(rows, weights)``, computed on the host by the family's
  :attr:`Family.stats_blend`), so changing it never recompiles.

A :class:`Family` bundles the family's config class, its Flax generator, its site table,
its CCBN affine maps split into latent and class parts (:class:`AffineMaps`), its
statistic-row selection and its latent sampler. The core (probes, awareness, generate,
sample, weights files, the CLI) is written once against it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Site:
    """A named place in the generator where probes are read and edits are applied."""

    name: str  # block{i}.bn{k} or block{i}.out
    index: int  # L number for CCBN sites; position among block outputs otherwise
    block: int
    kind: str  # "ccbn" or "block"
    channels: int
    resolution: int  # spatial size of the feature map at the site
    offset: int  # first column of this site on its flat channel axis
    reference_name: str  # module path in the family's PyTorch reference

    @property
    def block_name(self) -> str:
        return f"block{self.block}"

    @property
    def label(self) -> str:
        return f"L{self.index}" if self.kind == "ccbn" else self.name


@dataclasses.dataclass(frozen=True)
class AffineMaps:
    """All CCBN affine maps of a generator, stacked over the flat channel axis and split
    into a latent part and a class part::

        e     = y @ class_embedding            (y: class vector [K]; e = y without embedding)
        gamma = 1 + z @ gain_latent + e @ gain_class
        beta  =     z @ bias_latent + e @ bias_class

    ``gain_latent``/``bias_latent`` are ``[z_dim, C_total]`` with zero rows where a site does
    not read a latent coordinate (hierarchical latents read one chunk per block; a family
    without latent-dependent CCBNs has all zeros); ``gain_class``/``bias_class`` are
    ``[D_e, C_total]``. ``class_embedding`` is ``[num_classes, D_e]``, or None when the
    CCBNs read the class vector itself (``D_e = num_classes``).
    """

    gain_latent: Any
    bias_latent: Any
    gain_class: Any
    bias_class: Any
    class_embedding: Any | None

    def embed(self, y):
        """Class features ``e`` of class vectors ``y`` ``[..., num_classes]``."""
        return y if self.class_embedding is None else y @ self.class_embedding

    def class_rows(self, classes):
        """``e`` of integer class indices, as a gather (no one-hot matmul)."""
        if self.class_embedding is None:
            return None
        return jnp.asarray(self.class_embedding)[classes]

    def class_parts(self, classes):
        """``(gain, bias)`` class parts ``[K, C_total]`` of integer class indices."""
        if self.class_embedding is None:
            idx = jnp.asarray(classes)
            return jnp.asarray(self.gain_class)[idx], jnp.asarray(self.bias_class)[idx]
        e = self.class_rows(classes)
        return e @ self.gain_class, e @ self.bias_class


def spectrally_normalised(name: str, shape: tuple) -> bool:
    """Which generator parameters both reference codebases spectrally normalise (and the
    converters fold): every matrix or conv kernel, the CCBN maps included; not the class
    embedding, biases, batch-norm scales or the attention gamma. (BigGAN-PyTorch's
    unshared CCBN tables are plain ``nn.Embedding``s; jaxaware trains shared models only.)"""
    return len(shape) >= 2 and name != "embedding"


@dataclasses.dataclass(frozen=True)
class Family:
    """A model family: everything the family-agnostic core needs to know about it."""

    name: str  # e.g. "biggan-deep"; recorded as ``family`` in weights directories
    title: str  # for people, e.g. "BigGAN-deep"
    config_class: type
    generator: Callable  # (config, train=False) -> flax Module
    ccbn_sites: Callable  # config -> tuple[Site, ...] (kind "ccbn", flat-axis offsets)
    block_sites: Callable  # config -> tuple[Site, ...] (kind "block")
    affine_maps: Callable  # (params, config) -> AffineMaps
    stats_blend: Callable  # (config, truncation, correct_lerp) -> (rows, weights)
    sample_latents: Callable  # (num, config, truncation, seed) -> float32 [num, z_dim]
    latent_convention: str  # one line for docs: how sample/awareness draw latents
    latent_law: str  # "truncnorm" (truncation x truncnorm(-2, 2)) or "normal" (x N(0, 1))
    presets: dict = dataclasses.field(default_factory=dict)  # name -> config
    sn_filter: Callable | None = None  # (leaf name, shape) -> bool: spectrally normalised?
