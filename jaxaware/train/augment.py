"""Differentiable augmentation for GAN training (DiffAugment, Zhao et al. 2020).

The same random transformations are applied to every image the discriminator sees, real
and generated, in the discriminator's and the generator's updates, so the generator is not
pushed to produce augmented-looking images while the discriminator sees a harder task.
Policies (NHWC images in [-1, 1], one random draw per image):

* ``color``: brightness ``+ U(-0.5, 0.5)``; saturation ``(x - mean_c) * U(0, 2) + mean_c``;
  contrast ``(x - mean_hwc) * U(0.5, 1.5) + mean_hwc`` (the paper's ranges, on [-1, 1]).
* ``translation``: shift by up to 1/8 of the size in each direction, zero padding.
* ``cutout``: zero a square of half the size at a random position (clipped at borders).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxaware.errors import JaxawareError

POLICIES = ("color", "translation", "cutout")


def parse_policy(policy: str) -> tuple[str, ...]:
    """``"color,translation"`` -> ``("color", "translation")``; ``""`` -> ``()``."""
    names = tuple(p.strip() for p in policy.split(",") if p.strip())
    for name in names:
        if name not in POLICIES:
            raise JaxawareError(f"unknown augmentation {name!r}; known: {', '.join(POLICIES)}")
    return names


def _color(key, x):
    kb, ks, kc = jax.random.split(key, 3)
    b = x.shape[0]
    x = x + (jax.random.uniform(kb, (b, 1, 1, 1)) - 0.5)
    m = jnp.mean(x, axis=3, keepdims=True)
    x = (x - m) * (jax.random.uniform(ks, (b, 1, 1, 1)) * 2.0) + m
    m = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
    return (x - m) * (jax.random.uniform(kc, (b, 1, 1, 1)) + 0.5) + m


def _translation(key, x, ratio: float = 0.125):
    b, h, w, _ = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ky, kx = jax.random.split(key)
    dy = jax.random.randint(ky, (b,), -sh, sh + 1)
    dx = jax.random.randint(kx, (b,), -sw, sw + 1)
    padded = jnp.pad(x, ((0, 0), (sh, sh), (sw, sw), (0, 0)))

    def one(img, oy, ox):
        return jax.lax.dynamic_slice(img, (sh - oy, sw - ox, 0), (h, w, img.shape[-1]))

    return jax.vmap(one)(padded, dy, dx)


def _cutout(key, x, ratio: float = 0.5):
    b, h, w, _ = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ky, kx = jax.random.split(key)
    cy = jax.random.randint(ky, (b, 1, 1), 0, h + (1 - ch % 2))
    cx = jax.random.randint(kx, (b, 1, 1), 0, w + (1 - cw % 2))
    rows = jnp.arange(h)[None, :, None]
    cols = jnp.arange(w)[None, None, :]
    inside = ((rows >= cy - ch // 2) & (rows < cy - ch // 2 + ch)
              & (cols >= cx - cw // 2) & (cols < cx - cw // 2 + cw))
    return x * (1.0 - inside[..., None].astype(x.dtype))


_FUNCTIONS = {"color": _color, "translation": _translation, "cutout": _cutout}


def augment(key, images, policy: tuple[str, ...]):
    """Applies ``policy`` (from :func:`parse_policy`) to ``images`` ``[B, H, W, C]``."""
    for i, name in enumerate(policy):
        images = _FUNCTIONS[name](jax.random.fold_in(key, i), images)
    return images
