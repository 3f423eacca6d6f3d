"""Training a class-conditional BigGAN (either family) on the toy world (hinge, SN, EMA).

One step (jitted, pure): ``d_steps`` discriminator updates on real toy-world images and
generated ones, then one generator update; spectral norm with one power iteration per
network per update (:mod:`.spectral`); the generator runs with batch statistics
(the family's generator with ``train=True``); Adam with BigGAN's betas ``(0, 0.999)``; an
exponential moving average of the generator's plain parameters.

Randomness is a pure function of ``(seed, step)``: latents and fake classes come from
``fold_in(PRNGKey(seed), step)``; real images are toy-world images
``step * d_steps * batch ...`` of ``data_seed`` (an endless, never-repeating stream; with
``d_class_groups`` rendered in classes drawn ``d_group`` (four) at a time, see
:func:`real_batch`). So a run resumed from a checkpoint computes exactly what the
uninterrupted run computes. With ``mode_seeking_start`` the first steps run the very step
the config without mode seeking compiles, so such a run can also branch from a plain run's
checkpoint (:meth:`TrainConfig.before`); with ``mode_seeking_stop`` the steps after it run
the plain step again, and such a run can branch from the checkpoint of a run that kept the
term.

With ``d_layout > 0`` a second, small discriminator (the *layout* D,
:func:`~jaxaware.train.discriminator.layout_dconfig`) judges the same reals and fakes
average-pooled to ``d_layout_size`` px, in packs of ``d_layout_pack`` of one class, and
never augmented; G's loss adds ``d_layout`` times its hinge term. It sees only where an
object is, how large, on what background, so the pressure it puts on the generator to
spread those as the data does is not spent on texture (as the pixel-space mode-seeking
term's is).

:func:`train` checkpoints every ``checkpoint_every`` steps (atomically, to
``out/checkpoint``), resumes from it when present, and at the end folds the spectral
norm into the (EMA) generator, fills the 51 standing-statistics rows and saves a plain
jaxaware model (``out/model``) with the toy world's class names.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxaware.environment import environment, environment_differences
from jaxaware.errors import JaxawareError
from jaxaware.generate import statistic_weights
from jaxaware.model import Model
from jaxaware.models import config_from_dict, family_of
from jaxaware.toyworld import WORLD, balanced_classes, render, sample_dataset
from jaxaware.train import checkpoint as ckpt
from jaxaware.train.augment import augment, parse_policy
from jaxaware.train.discriminator import (
    MINIBATCH_GROUP,
    DConfig,
    Discriminator,
    class_group_layout,
    default_dconfig,
    layout_dconfig,
    layout_view,
)
from jaxaware.train.extent import TARGETS, area_quantiles, extent_error, extent_regressor
from jaxaware.train.init import init_discriminator, init_generator
from jaxaware.train.spectral import (
    discriminator_filter,
    fold_spectral_norm,
    generator_filter,
    init_sn_state,
    spectral_normalize,
)
from jaxaware.train.standing import base_latents, standing_stats

AUGMENT_STREAM = 0x5EED  # augmentation keys are fold_in(step key, this): other draws unchanged
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
CPU_CONVOLUTIONS = ("ynnpack", "xla")  # who computes a CPU step's convolutions (see below)
# jax 0.10's XLA hands CPU convolutions, single dots and reductions to YNNPACK by default;
# these are the same minus the convolutions, which XLA then emits itself
_YNN_WITHOUT_CONVOLUTIONS = {"xla_cpu_experimental_ynn_fusion_type":
                             "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (the output directory aside)."""

    model: object  # a family config (BigGANConfig or BigGANDeepConfig)
    d_ch: int = 32
    batch_size: int = 64
    steps: int = 1000
    lr_g: float = 1e-4
    lr_d: float = 4e-4
    beta1: float = 0.0
    beta2: float = 0.999
    adam_eps: float = 1e-6
    d_steps: int = 1
    ema_decay: float = 0.999
    ema_start: int = 0
    use_ema: bool = True
    seed: int = 0
    data_seed: int = 1
    checkpoint_every: int = 500
    log_every: int = 50
    standing_batches: int = 4
    standing_batch_size: int = 64
    fast_compile: bool = False  # XLA backend opt level 0: 2x faster compile, slower steps
    augment: str = ""  # DiffAugment policies for D's inputs, e.g. "translation,cutout"
    d_coords: bool = False  # D sees pixel coordinates (CoordConv), so it can judge position
    d_minibatch_std: bool = False  # D sees the batch's feature spread (ProGAN)
    mode_seeking: float = 0.0  # weight of MSGAN's mode-seeking term in G's loss (0: off)
    mode_seeking_start: int = 0  # the term joins G's loss after this many steps, which run
    # exactly as the run without it would: a plain run's checkpoint up to here resumes
    mode_seeking_stop: int = 0  # the term leaves G's loss after this many steps (0: never);
    # a checkpoint of the run that kept it, written at or before this step, resumes
    mode_seeking_view: str = "pixels"  # what the term compares: "pixels", "edges",
    # "coarse_edges" or "relative_edges" (edge_view: second differences of the blurred
    # image, blind to the flat and linear backgrounds, so the term cannot be paid in
    # background colour; coarse: of the image average-pooled to half its side; relative:
    # over the edges' own size, so it cannot be paid in contrast either)
    d_class_groups: bool = False  # minibatch-std groups share one class (real and fake)
    d_pack: int = 1  # D judges packs of this many same-class samples (PacGAN); divides d_group
    d_group: int = MINIBATCH_GROUP  # samples per class group (d_class_groups)
    d_layout: float = 0.0  # weight in G's loss of a layout D on d_layout_size-px views (0: off)
    d_layout_size: int = 8  # the layout D's view: the images average-pooled to this many px
    d_layout_pack: int = 1  # the layout D judges packs of this many (divides d_group)
    extent: float = 0.0  # weight of the extent term in G's loss (0: off; see .extent): the
    # first latent coordinate's quantile sets the sample's object area, read by a regressor
    # trained on real renders' ground truth
    extent_start: int = 0  # the term joins G's loss after this many steps (as mode seeking's)
    extent_stop: int = 0  # the term leaves G's loss after this many steps (0: never)
    extent_regressor_steps: int = 5000  # training steps of the extent term's regressor
    extent_target: str = "world"  # the term's targets: real renders' true areas ("world") or
    # the regressor's expected reading of them ("calibrated": its calibration line per class)
    cpu_convolutions: str = "ynnpack"  # on a CPU, who computes the step's convolutions:
    # YNNPACK (jax 0.10's default) or XLA's own emitter ("xla": 3.5x faster steps on an
    # AVX2-only EPYC); the sums round differently, so a run keeps its choice

    def __post_init__(self):
        if self.model.num_classes != WORLD.num_classes:
            raise JaxawareError(f"the toy world has {WORLD.num_classes} classes; the model "
                                f"config has {self.model.num_classes}")
        if self.mode_seeking < 0:
            raise JaxawareError(f"mode_seeking must be >= 0; got {self.mode_seeking}")
        if self.mode_seeking_start < 0:
            raise JaxawareError(f"mode_seeking_start must be >= 0; got "
                                f"{self.mode_seeking_start}")
        if self.mode_seeking_start and not self.mode_seeking:
            raise JaxawareError("mode_seeking_start is the step mode seeking starts at; "
                                "set mode_seeking > 0 too")
        if self.mode_seeking_stop and not self.mode_seeking:
            raise JaxawareError("mode_seeking_stop is the step mode seeking stops at; "
                                "set mode_seeking > 0 too")
        if self.mode_seeking_stop and self.mode_seeking_stop <= self.mode_seeking_start:
            raise JaxawareError(f"mode_seeking_stop must be 0 (never) or past "
                                f"mode_seeking_start ({self.mode_seeking_start}); got "
                                f"{self.mode_seeking_stop}")
        if self.mode_seeking_view not in MODE_SEEKING_VIEWS:
            raise JaxawareError(f"mode_seeking_view must be one of "
                                f"{', '.join(MODE_SEEKING_VIEWS)}; got "
                                f"{self.mode_seeking_view!r}")
        if self.mode_seeking_view != "pixels" and not self.mode_seeking:
            raise JaxawareError("mode_seeking_view is what the mode-seeking term compares; "
                                "set mode_seeking > 0 too")
        if self.mode_seeking and self.batch_size % 2:
            raise JaxawareError(f"mode_seeking pairs the samples of a G batch; batch_size "
                                f"must be even, got {self.batch_size}")
        if self.extent < 0:
            raise JaxawareError(f"extent must be >= 0; got {self.extent}")
        if self.extent_start < 0:
            raise JaxawareError(f"extent_start must be >= 0; got {self.extent_start}")
        if (self.extent_start or self.extent_stop) and not self.extent:
            raise JaxawareError("extent_start and extent_stop bound the extent term; set "
                                "extent > 0 too")
        if self.extent_stop and self.extent_stop <= self.extent_start:
            raise JaxawareError(f"extent_stop must be 0 (never) or past extent_start "
                                f"({self.extent_start}); got {self.extent_stop}")
        if self.extent_target not in TARGETS:
            raise JaxawareError(f"extent_target must be one of {', '.join(TARGETS)}; got "
                                f"{self.extent_target!r}")
        if self.extent_target != _default("extent_target") and not self.extent:
            raise JaxawareError("extent_target sets the extent term's targets; set extent > 0 "
                                "too")
        if self.cpu_convolutions not in CPU_CONVOLUTIONS:
            cpu_convolution_options(self.cpu_convolutions)  # raises, saying what is accepted
        if self.extent_regressor_steps < 1:
            raise JaxawareError(f"extent_regressor_steps must be >= 1; got "
                                f"{self.extent_regressor_steps}")
        if self.extent and self.mode_seeking:
            raise JaxawareError("the extent term and mode seeking cannot be combined (each "
                                "has its own window); choose one")
        if self.d_group < 1:
            raise JaxawareError(f"d_group must be >= 1; got {self.d_group}")
        if self.d_pack < 1 or self.d_group % self.d_pack:
            raise JaxawareError(f"d_pack must divide the class groups of {self.d_group} "
                                f"samples (d_group); got {self.d_pack}")
        if self.d_group != MINIBATCH_GROUP and not self.d_class_groups:
            raise JaxawareError("d_group sizes the class groups; set d_class_groups too")
        if self.d_group != MINIBATCH_GROUP and self.d_minibatch_std:
            raise JaxawareError(f"the minibatch standard deviation works on groups of "
                                f"{MINIBATCH_GROUP}; d_group must stay {MINIBATCH_GROUP} "
                                f"with d_minibatch_std, got {self.d_group}")
        if self.d_pack > 1 and not self.d_class_groups:
            raise JaxawareError("d_pack packs samples of one class; set d_class_groups too")
        if self.d_pack > 1 and self.d_minibatch_std:
            raise JaxawareError("d_pack and d_minibatch_std cannot be combined: the minibatch "
                                "groups of packs would mix classes; choose one")
        if self.d_class_groups and not (self.d_minibatch_std or self.d_pack > 1):
            raise JaxawareError("d_class_groups arranges the batches for the minibatch "
                                "standard deviation or packing; set d_minibatch_std or "
                                "d_pack too")
        if self.d_class_groups and self.batch_size % self.d_group:
            raise JaxawareError(f"d_class_groups draws groups of {self.d_group} samples "
                                f"of one class; batch_size must be a multiple of "
                                f"{self.d_group}, got {self.batch_size}")
        if self.d_layout < 0:
            raise JaxawareError(f"d_layout must be >= 0; got {self.d_layout}")
        if not self.d_layout and (self.d_layout_size != 8 or self.d_layout_pack != 1):
            raise JaxawareError("d_layout_size and d_layout_pack shape the layout "
                                "discriminator; set d_layout > 0 too")
        if self.d_layout_pack < 1 or self.d_group % self.d_layout_pack:
            raise JaxawareError(f"d_layout_pack must divide the class groups of "
                                f"{self.d_group} samples (d_group); got {self.d_layout_pack}")
        if self.d_layout_pack > 1 and not self.d_class_groups:
            raise JaxawareError("d_layout_pack packs samples of one class; set "
                                "d_class_groups too")
        if (self.d_layout_size < 4 or self.d_layout_size >= self.model.resolution
                or self.model.resolution % self.d_layout_size):
            raise JaxawareError(f"d_layout_size must be >= 4, below the resolution "
                                f"{self.model.resolution} and divide it; got "
                                f"{self.d_layout_size}")
        if self.model.resolution not in (32, 64):
            raise JaxawareError(f"the toy world renders 32 or 64 px; the model config gives "
                                f"{self.model.resolution}")
        parse_policy(self.augment)
        for name in ("batch_size", "d_steps", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise JaxawareError(f"{name} must be >= 1; got {getattr(self, name)}")

    @property
    def dconfig(self) -> DConfig:
        return default_dconfig(self.model.resolution, self.d_ch, self.model.num_classes,
                               self.d_coords, self.d_minibatch_std, self.d_pack)

    @property
    def layout_dconfig(self) -> DConfig:
        return layout_dconfig(self.d_ch, self.model.num_classes, self.d_coords,
                              self.d_layout_pack)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["model"] = {"family": family_of(self.model).name, "config": self.model.to_dict()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        m = d["model"]
        # Written before there were two families: the BigGAN-deep config itself.
        d["model"] = (config_from_dict(m["config"], m["family"]) if "family" in m
                      else config_from_dict(m))
        return cls(**d)

    def _plain(self) -> TrainConfig:
        return dataclasses.replace(self, mode_seeking=0.0, mode_seeking_start=0,
                                   mode_seeking_stop=0, mode_seeking_view="pixels",
                                   extent=0.0, extent_start=0, extent_stop=0,
                                   extent_regressor_steps=_default("extent_regressor_steps"),
                                   extent_target=_default("extent_target"))

    def _window(self) -> tuple[float, int, int, str]:
        """The G term with a window (mode seeking or extent; never both): weight, start,
        stop and the name of its stop field."""
        if self.extent:
            return self.extent, self.extent_start, self.extent_stop, "extent_stop"
        return (self.mode_seeking, self.mode_seeking_start, self.mode_seeking_stop,
                "mode_seeking_stop")

    def before(self, step: int) -> TrainConfig:
        """The config that computed a run's first ``step`` updates (its state at ``step``):
        this one without its windowed term (mode seeking or extent) while ``step <=`` the
        term's start, this one without the term's stop while ``step <=`` its stop, else
        this one."""
        weight, start, stop, stop_field = self._window()
        if weight and step <= start:
            return self._plain()
        if stop and step <= stop:
            return dataclasses.replace(self, **{stop_field: 0})
        return self

    def phase(self, step: int) -> TrainConfig:
        """The config whose compiled step computes update number ``step`` (from 1): this
        one while its windowed term is on, the plain one before its start and after its
        stop."""
        weight, start, stop, _ = self._window()
        if weight and (step <= start or (stop and step > stop)):
            return self._plain()
        return self

    def compute_key(self) -> TrainConfig:
        """The fields the compiled step depends on (others zeroed): the jit cache key.

        ``mode_seeking_start``, ``mode_seeking_stop`` and the extent term's are not:
        :meth:`phase` picks the phase, and a late run's mode-seeking (or extent) steps
        are the very steps of a run with the term from the start (one compile for
        both)."""
        return dataclasses.replace(self, steps=0, checkpoint_every=1, log_every=1, seed=0,
                                   data_seed=0, standing_batches=1, standing_batch_size=1,
                                   mode_seeking_start=0, mode_seeking_stop=0,
                                   extent_start=0, extent_stop=0)


def _default(name: str):
    return TrainConfig.__dataclass_fields__[name].default


def hinge_d_loss(real_logits, fake_logits):
    return jnp.mean(jax.nn.relu(1.0 - real_logits)) + jnp.mean(jax.nn.relu(1.0 + fake_logits))


def hinge_g_loss(fake_logits):
    return -jnp.mean(fake_logits)


MODE_SEEKING_VIEWS = ("pixels", "edges", "coarse_edges", "relative_edges")


def edge_view(images):
    """``[B, H, W, C] -> [B, H - 4, W - 4, C]``: each channel blurred by the binomial
    ``[1, 2, 1] / 4`` in both directions, then its five-point Laplacian, both without
    padding. Both are exact on affine images, and the Laplacian of an affine image is zero,
    so a flat colour or a linear gradient (the toy world's two backgrounds) gives zero and
    what is left are the object's edges and shading, blurred to about two pixels."""
    x = (images[:, :-2] + 2.0 * images[:, 1:-1] + images[:, 2:]) / 4.0
    x = (x[:, :, :-2] + 2.0 * x[:, :, 1:-1] + x[:, :, 2:]) / 4.0
    return (x[:, :-2, 1:-1] + x[:, 2:, 1:-1] + x[:, 1:-1, :-2] + x[:, 1:-1, 2:]
            - 4.0 * x[:, 1:-1, 1:-1])


def mode_seeking_ratio(images, z, view: str = "pixels"):
    """MSGAN's ratio for a batch whose halves are pairs of one class: the mean absolute
    image difference of the pairs over the mean absolute latent difference. G's loss adds
    ``weight / (ratio + 1e-5)``, so two latents of a class must not give one image.
    ``view="edges"`` compares the pairs' :func:`edge_view` instead of their pixels,
    ``"coarse_edges"`` the edge view of the images average-pooled to half their side, and
    ``"relative_edges"`` divides the edge views' mean absolute difference by the sum of
    their mean absolute values (so it lies in [0, 1] and scaling every image's contrast
    leaves it unchanged) before dividing by the latents'."""
    if view == "relative_edges":
        a, b = jnp.split(edge_view(images), 2)
        za, zb = jnp.split(z, 2)
        share = jnp.mean(jnp.abs(a - b)) / (jnp.mean(jnp.abs(a)) + jnp.mean(jnp.abs(b)) + 1e-8)
        return share / jnp.mean(jnp.abs(za - zb))
    if view == "edges":
        images = edge_view(images)
    elif view == "coarse_edges":
        images = edge_view(layout_view(images, images.shape[1] // 2))
    elif view != "pixels":
        raise JaxawareError(f"view must be one of {', '.join(MODE_SEEKING_VIEWS)}; "
                            f"got {view!r}")
    a, b = jnp.split(images, 2)
    za, zb = jnp.split(z, 2)
    return jnp.mean(jnp.abs(a - b)) / jnp.mean(jnp.abs(za - zb))


def _optimizers(tc: TrainConfig):
    opt_g = optax.adam(tc.lr_g, b1=tc.beta1, b2=tc.beta2, eps=tc.adam_eps)
    opt_d = optax.adam(tc.lr_d, b1=tc.beta1, b2=tc.beta2, eps=tc.adam_eps)
    return opt_g, opt_d


def init_state(tc: TrainConfig) -> dict:
    """The full training state at step 0, deterministic from ``tc.seed``."""
    g = init_generator(tc.model, tc.seed)
    d = init_discriminator(tc.dconfig, tc.model.resolution, tc.seed + 1)
    opt_g, opt_d = _optimizers(tc)
    state = {
        "step": jnp.zeros((), jnp.int32),
        "g": g,
        "d": d,
        "g_sn": init_sn_state(g, generator_filter, tc.seed + 2),
        "d_sn": init_sn_state(d, discriminator_filter, tc.seed + 3),
        "g_opt": opt_g.init(g),
        "d_opt": opt_d.init(d),
        "ema": jax.tree_util.tree_map(jnp.array, g),
    }
    if tc.d_layout:  # only then, so the states of runs without it keep their structure
        dl = init_discriminator(tc.layout_dconfig, tc.d_layout_size, tc.seed + 11)
        state.update(dl=dl, dl_sn=init_sn_state(dl, discriminator_filter, tc.seed + 12),
                     dl_opt=opt_d.init(dl))
    return state


def real_batch(tc: TrainConfig, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Real images ``[d_steps, B, R, R, 3]`` and labels ``[d_steps, B]`` of a step.

    With ``d_class_groups`` the classes come balanced per group of ``d_group`` samples
    (each group one class, laid out by :func:`class_group_layout`); the images are still
    the world's images ``step * d_steps * B ...``, rendered in those classes.
    """
    n = tc.d_steps * tc.batch_size
    shape = (tc.d_steps, tc.batch_size)
    if tc.d_class_groups:
        g = n // tc.d_group
        groups = balanced_classes(g, seed=tc.data_seed, start=int(step) * g)
        classes = class_group_layout(groups.reshape(tc.d_steps, -1), tc.d_group).reshape(-1)
        images, _ = render(classes, seed=tc.data_seed, start=int(step) * n,
                           resolution=tc.model.resolution)
    else:
        images, classes, _ = sample_dataset(n, seed=tc.data_seed,
                                            resolution=tc.model.resolution,
                                            start=int(step) * n)
    return images.reshape(shape + images.shape[1:]), classes.reshape(shape).astype(np.int32)


@functools.lru_cache(maxsize=8)
def compiled_step(tc: TrainConfig):
    """``step(state, real [d_steps, B, R, R, 3], labels [d_steps, B], key) -> (state,
    metrics)``, jitted; cached per :meth:`TrainConfig.compute_key`."""
    cfg = tc.model
    G = family_of(cfg).generator(cfg, train=True)
    D = Discriminator(tc.dconfig)
    DL = Discriminator(tc.layout_dconfig)
    blend = statistic_weights(cfg, 1.0)
    opt_g, opt_d = _optimizers(tc)
    k = cfg.num_classes
    policy = parse_policy(tc.augment)
    if tc.extent:
        extent_apply, extent_params, _ = extent_regressor(cfg.resolution,
                                                          tc.extent_regressor_steps)
        read = (None if tc.extent_target == "world"
                else lambda images, classes: extent_apply(extent_params, images, classes))
        quantiles, spreads = (jnp.asarray(a) for a in area_quantiles(cfg.resolution, read=read))
        law = family_of(cfg).latent_law

    def seen(images, key):
        """What D sees: the images, DiffAugment-ed with ``key`` when a policy is set."""
        return augment(key, images, policy) if policy else images

    def generate(g_params, key, paired=False):
        """A batch of fakes; ``paired``: the second half repeats the first's classes (so
        does the class-group layout)."""
        kz, ky = jax.random.split(key)
        z = base_latents(cfg, kz, (tc.batch_size, cfg.z_dim))
        if tc.d_class_groups:
            y = class_group_layout(
                jax.random.randint(ky, (tc.batch_size // tc.d_group,), 0, k), tc.d_group)
        elif paired:
            y = jax.random.randint(ky, (tc.batch_size // 2,), 0, k)
            y = jnp.concatenate([y, y])
        else:
            y = jax.random.randint(ky, (tc.batch_size,), 0, k)
        images, _ = G.apply({"params": g_params}, z, jax.nn.one_hot(y, k), blend)
        return images, y, z

    def d_loss_fn(d_params, d_sn, real, real_y, fake, fake_y, aug_key):
        d_norm, d_sn = spectral_normalize(d_params, d_sn)
        both = seen(jnp.concatenate([real, fake]), aug_key)
        if tc.d_minibatch_std or tc.d_pack > 1:  # real and fake never share a group or pack
            real_seen, fake_seen = jnp.split(both, 2)
            real_logits = D.apply({"params": d_norm}, real_seen, real_y)
            fake_logits = D.apply({"params": d_norm}, fake_seen, fake_y)
        else:
            logits = D.apply({"params": d_norm}, both, jnp.concatenate([real_y, fake_y]))
            real_logits, fake_logits = jnp.split(logits, 2)
        loss = hinge_d_loss(real_logits, fake_logits)
        return loss, (d_sn, jnp.mean(real_logits), jnp.mean(fake_logits))

    def layout_logits(dl_norm, images, y):
        """The layout D on the pooled images, never augmented: where and how large an
        object is, is what it judges, and a translation would blur that."""
        return DL.apply({"params": dl_norm}, layout_view(images, tc.d_layout_size), y)

    def dl_loss_fn(dl_params, dl_sn, real, real_y, fake, fake_y):
        dl_norm, dl_sn = spectral_normalize(dl_params, dl_sn)
        loss = hinge_d_loss(layout_logits(dl_norm, real, real_y),
                            layout_logits(dl_norm, fake, fake_y))
        return loss, dl_sn

    def g_loss_fn(g_params, g_sn, d_params, d_sn, dl_params, dl_sn, key):
        g_norm, g_sn = spectral_normalize(g_params, g_sn)
        fake, y, z = generate(g_norm, key, paired=bool(tc.mode_seeking))
        d_norm, _ = spectral_normalize(d_params, d_sn)
        loss = hinge_g_loss(D.apply({"params": d_norm},
                                    seen(fake, jax.random.fold_in(key, AUGMENT_STREAM)), y))
        extra = {}
        if tc.d_layout:
            dl_norm, _ = spectral_normalize(dl_params, dl_sn)
            extra["g_layout"] = hinge_g_loss(layout_logits(dl_norm, fake, y))
            loss = loss + tc.d_layout * extra["g_layout"]
        if tc.extent:
            extra["extent_err"] = extent_error(extent_apply(extent_params, fake, y),
                                               z[:, 0], y, quantiles, spreads, law)
            loss = loss + tc.extent * extra["extent_err"]
        if tc.mode_seeking:
            extra["ms_ratio"] = mode_seeking_ratio(fake, z, tc.mode_seeking_view)
            loss = loss + tc.mode_seeking / (extra["ms_ratio"] + 1e-5)
        return loss, (g_sn, extra)

    def step(state, real, real_y, key):
        keys = jax.random.split(key, tc.d_steps + 1)
        g_norm, _ = spectral_normalize(state["g"], state["g_sn"])  # same u as the G update
        g_norm = jax.lax.stop_gradient(g_norm)
        d, d_sn, d_opt = state["d"], state["d_sn"], state["d_opt"]
        dl, dl_sn, dl_opt = state.get("dl"), state.get("dl_sn"), state.get("dl_opt")
        layout = {}
        for i in range(tc.d_steps):
            fake, fake_y, _ = generate(g_norm, keys[i])
            (d_loss, (d_sn, real_mean, fake_mean)), grads = jax.value_and_grad(
                d_loss_fn, has_aux=True)(d, d_sn, real[i], real_y[i], fake, fake_y,
                                         jax.random.fold_in(keys[i], AUGMENT_STREAM))
            updates, d_opt = opt_d.update(grads, d_opt, d)
            d = optax.apply_updates(d, updates)
            if tc.d_layout:  # the same reals and fakes, seen as layouts
                (layout["dl_loss"], dl_sn), grads = jax.value_and_grad(
                    dl_loss_fn, has_aux=True)(dl, dl_sn, real[i], real_y[i], fake, fake_y)
                updates, dl_opt = opt_d.update(grads, dl_opt, dl)
                dl = optax.apply_updates(dl, updates)
        (g_loss, (g_sn, g_extra)), grads = jax.value_and_grad(g_loss_fn, has_aux=True)(
            state["g"], state["g_sn"], d, d_sn, dl, dl_sn, keys[-1])
        updates, g_opt = opt_g.update(grads, state["g_opt"], state["g"])
        g = optax.apply_updates(state["g"], updates)
        decay = jnp.where(state["step"] >= tc.ema_start, tc.ema_decay, 0.0)
        ema = jax.tree_util.tree_map(lambda e, p: decay * e + (1.0 - decay) * p,
                                     state["ema"], g)
        new = {"step": state["step"] + 1, "g": g, "d": d, "g_sn": g_sn, "d_sn": d_sn,
               "g_opt": g_opt, "d_opt": d_opt, "ema": ema}
        if tc.d_layout:
            new.update(dl=dl, dl_sn=dl_sn, dl_opt=dl_opt)
        metrics = {"d_loss": d_loss, "g_loss": g_loss, "d_real": real_mean,
                   "d_fake": fake_mean, **layout, **g_extra}
        return new, metrics

    return jax.jit(step, donate_argnums=0, compiler_options=compiler_options(tc))


def compiler_options(tc: TrainConfig) -> dict | None:
    """The XLA options the training step compiles with: ``FAST_COMPILE`` with
    ``fast_compile``, and :func:`cpu_convolution_options` of ``cpu_convolutions``."""
    options = dict(FAST_COMPILE) if tc.fast_compile else {}
    options.update(cpu_convolution_options(tc.cpu_convolutions))
    return options or None


def cpu_convolution_options(choice: str) -> dict:
    """The XLA options for a choice of :data:`CPU_CONVOLUTIONS`: none for ``"ynnpack"``
    (jax's default); for ``"xla"`` the CPU library fusions without YNNPACK's convolutions
    (none where this jax's XLA has no such option: before YNNPACK, XLA emitted every
    convolution itself)."""
    if choice not in CPU_CONVOLUTIONS:
        raise JaxawareError(f"cpu_convolutions must be one of {', '.join(CPU_CONVOLUTIONS)}; "
                            f"got {choice!r}")
    if choice == "xla" and _has_ynn_option():
        return dict(_YNN_WITHOUT_CONVOLUTIONS)
    return {}


@functools.lru_cache(maxsize=1)
def _has_ynn_option() -> bool:
    try:
        jax.jit(lambda x: x + 1.0).lower(0.0).compile(compiler_options=_YNN_WITHOUT_CONVOLUTIONS)
    except Exception:  # an XLA without YNNPACK rejects the unknown option
        return False
    return True


def step_key(seed: int, step: int):
    return jax.random.fold_in(jax.random.PRNGKey(seed), step)


def run_steps(tc: TrainConfig, state: dict, until: int, on_step=None) -> dict:
    """Advance ``state`` to step ``until``; ``on_step(step, state, metrics)`` after each."""
    step = int(state["step"])
    while step < until:
        step_fn = compiled_step(tc.phase(step + 1).compute_key())  # lru-cached per phase
        real, labels = real_batch(tc, step)
        state, metrics = step_fn(state, real, labels, step_key(tc.seed, step))
        step += 1
        if on_step is not None:
            on_step(step, state, metrics)
    return state


def finalize(tc: TrainConfig, state: dict, model_id: str = "toyworld-biggan-deep",
             progress: bool = False) -> Model:
    """The plain jaxaware model of a training state: (EMA) generator, spectral norm folded
    (exact sigma), 51 standing-statistics rows, toy-world class names."""
    params = state["ema"] if tc.use_ema else state["g"]
    params = fold_spectral_norm(jax.device_get(params), generator_filter)
    params = jax.tree_util.tree_map(jnp.asarray, params)
    stats = standing_stats(tc.model, params, tc.standing_batches, tc.standing_batch_size,
                           seed=tc.seed + 7, progress=progress)
    variables = {"params": jax.device_get(params), "stats": stats}
    return Model(tc.model, variables, model_id, WORLD.class_names)


def model_from_checkpoint(run_dir: str | os.PathLike, standing_batches: int | None = None,
                          model_id: str | None = None, use_ema: bool | None = None) -> Model:
    """The model of a run's latest checkpoint (e.g. to look at a run in progress): the
    run's config from ``train_config.json``, its EMA generator (``use_ema=False``: the
    trained generator itself), fresh standing statistics (``standing_batches`` overrides
    the config's count, for a quicker look)."""
    run_dir = Path(run_dir)
    try:
        tc = TrainConfig.from_dict(json.loads((run_dir / "train_config.json").read_text()))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise JaxawareError(f"{run_dir} has no readable train_config.json ({type(e).__name__}); "
                            "give a run directory written by jaxaware.train") from None
    if not ckpt.exists(run_dir / "checkpoint"):
        raise JaxawareError(f"{run_dir} has no checkpoint yet")
    state = ckpt.load(run_dir / "checkpoint", init_state(tc), tc)
    if standing_batches is not None:
        tc = dataclasses.replace(tc, standing_batches=int(standing_batches))
    if use_ema is not None:
        tc = dataclasses.replace(tc, use_ema=bool(use_ema))
    step = int(state["step"])
    return finalize(tc, state, model_id or f"{run_dir.name}-step{step}")


def _trim_log(log: Path, step: int) -> None:
    """Drop log lines past ``step`` (written after the checkpoint we resume from)."""
    if not log.is_file():
        return
    keep = [line for line in log.read_text().splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step]
    log.write_text("".join(line + "\n" for line in keep))


def _record_environment(path: Path, start: int) -> list[dict]:
    """Append this sitting's :func:`~jaxaware.environment.environment` (from ``start``) to
    ``path``, dropping records of sittings that began at or after ``start`` (their steps are
    recomputed now); warn when it differs from the sitting the checkpoint continues."""
    records = []
    if path.is_file():
        records = [r for r in map(json.loads, filter(str.strip, path.read_text().splitlines()))
                   if r.get("from_step", 0) < start]
    here = {"from_step": start, **environment()}
    if records and (changed := environment_differences(records[-1], here)):
        warnings.warn(
            f"resuming at step {start} on another machine or software ({'; '.join(changed)}): "
            "from here the run will not match an uninterrupted one bit for bit",
            stacklevel=3)
    records.append(here)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return records


def train(
    tc: TrainConfig,
    out: str | os.PathLike,
    *,
    progress: bool = True,
    stop_after: int | None = None,
    model_id: str = "toyworld-biggan-deep",
) -> Model | None:
    """Train (or resume) into ``out``; returns the final model, saved at ``out/model``.

    ``out/checkpoint`` holds the latest training state (every ``checkpoint_every`` steps
    and at the end), ``out/log.jsonl`` the metrics every ``log_every`` steps,
    ``out/train_config.json`` the config, ``out/environment.jsonl`` the CPU and software
    of each sitting (from which step; see :mod:`jaxaware.environment`: bit-for-bit
    reproducibility holds on one CPU model and software). A run finding a checkpoint
    resumes from it (the config must match, ``steps`` may differ; a warning says when it
    resumes on another machine or software). ``stop_after``: stop after that
    step without saving anything more, as if killed (for tests); returns None.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_config.json").write_text(json.dumps(tc.to_dict(), indent=2) + "\n")
    log = out / "log.jsonl"
    template = init_state(tc)
    if ckpt.exists(out / "checkpoint"):
        state = ckpt.load(out / "checkpoint", template, tc)
        _trim_log(log, int(state["step"]))
    else:
        state = template
        if log.exists():
            log.unlink()
    start = int(state["step"])
    sittings = _record_environment(out / "environment.jsonl", start)
    if tc.extent and start < tc.steps:  # trained once per process; its held-out error kept
        _, _, record = extent_regressor(tc.model.resolution, tc.extent_regressor_steps,
                                        progress=progress)
        (out / "extent_regressor.json").write_text(json.dumps(record, indent=2) + "\n")
    until = tc.steps if stop_after is None else min(tc.steps, stop_after)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=tc.steps, initial=start, desc="training", unit="step")
    t0 = time.perf_counter()

    def on_step(step, state, metrics):
        if bar is not None:
            bar.update(1)
        if step % tc.log_every == 0 or step == tc.steps:
            m = {k: float(v) for k, v in metrics.items()}
            if not all(np.isfinite(list(m.values()))):
                raise JaxawareError(f"non-finite loss at step {step}: {m}")
            rate = (step - start) / max(time.perf_counter() - t0, 1e-9)
            with open(log, "a") as f:
                f.write(json.dumps({"step": step, **m, "steps_per_s": rate}) + "\n")
            if bar is not None:
                bar.set_postfix({k: f"{v:.3f}" for k, v in m.items()})
        if step % tc.checkpoint_every == 0 or step == tc.steps:
            ckpt.save(out / "checkpoint", state, tc)

    try:
        state = run_steps(tc, state, until, on_step)
    finally:
        if bar is not None:
            bar.close()
    if stop_after is not None and until < tc.steps:
        return None
    if start == tc.steps:  # nothing ran: make sure the final checkpoint exists
        ckpt.save(out / "checkpoint", state, tc)
    model = finalize(tc, state, model_id, progress=progress)
    model.save(str(out / "model"), extra={
        "source": "jaxaware.train", "steps": tc.steps, "train_config": tc.to_dict(),
        "ema": tc.use_ema, "environment": sittings,
    })
    return model
