"""An extent term for training: tie one latent coordinate to the object's area.

Every toy-world image draws its object's scale from a stream shared by all classes, and
the world knows each real render's part map, so it knows each real object's area. The
generators trained so far draw each class at a narrower range of sizes than the world
does (docs/world-models.md): pixel-space and edge-space mode seeking widen them only by
giving up accuracy. This term is a signal on the size itself, in the manner of InfoGAN's
continuous codes but supervised by the world:

* an **extent regressor** (:class:`ExtentNet`, a small CNN) learns the foreground's share
  of the pixels from real renders of world seed :data:`EXTENT_WORLD_SEED`, with the
  ground truth of their part maps (never the reference segmenter, which the diversity bar
  is measured with, and never generated images); it is trained once, deterministically,
  before the GAN steps that use it, and then held fixed;
* the **target** of a generated sample of class ``y`` with latent ``z`` is the real area
  of class ``y`` at the quantile the first latent coordinate sits at under the family's
  latent law, ``Q_y(F(z_0))`` (the per-class quantiles from real renders of the same seed);
* G's loss adds ``extent * mean(((regressor(G(z, y)) - target) / sd_y) ** 2)``, ``sd_y``
  the real areas' standard deviation for class ``y`` (so the term is about 1 when the
  samples' areas ignore ``z_0`` and 0 when they follow it exactly).

The regressor reads a size less far from its class's typical one than it is (regression to
the mean: within a class it explains 83-99% of the spread, not all of it), so a generator
that satisfies it with true areas as targets draws sizes further out than the world's.
With ``target="calibrated"`` the targets are instead the regressor's *expected reading* of
a real object of the target's area: per class, the least-squares line of its readings of
the same real renders on their true areas, ``a_y + b_y * Q_y(F(z_0))``, and the spread
``b_y * sd_y`` (a generator that draws the world's sizes satisfies it on average; a
reading's noise about the line cannot be asked of a size and averages out).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.scipy.stats import norm

from jaxaware.toyworld import WORLD, balanced_classes, render
from jaxaware.toyworld.diversity import object_factors

#: The world seed whose renders train the regressor and give the quantiles (distinct from
#: the GAN's data seed 1, the evaluation's 21,000 and the reference networks' seeds).
EXTENT_WORLD_SEED = 31_000
QUANTILES = 101  # quantile points per class (0%, 1%, ..., 100%)
#: The term's targets: the real renders' true areas, or the regressor's expected reading of
#: them (its calibration line per class).
TARGETS = ("world", "calibrated")


class ExtentNet(nn.Module):
    """``([B, R, R, 3], classes [B]) -> [B]``: the object's area (share of the pixels) of
    each image of a known class. Per width (16, 32, 64) a stride-2 and a stride-1 3x3
    conv/ReLU layer, a mean over positions, the class one-hot beside it and a 64-unit
    ReLU layer before the linear read-out (the class sets the typical size; the image
    says how far from it). A 64 px image is first averaged over 2x2 blocks."""

    widths: tuple[int, ...] = (16, 32, 64)

    num_classes: int = WORLD.num_classes

    @nn.compact
    def __call__(self, x, y):
        if x.shape[1] == 64:
            x = nn.avg_pool(x, (2, 2), (2, 2))
        for w in self.widths:
            x = nn.relu(nn.Conv(w, (3, 3), strides=(2, 2))(x))
            x = nn.relu(nn.Conv(w, (3, 3))(x))
        x = jnp.concatenate([jnp.mean(x, axis=(1, 2)), jax.nn.one_hot(y, self.num_classes)], 1)
        return nn.Dense(1)(nn.relu(nn.Dense(64)(x)))[:, 0]


def real_extents(per_class: int, resolution: int = 32, start: int = 0,
                 seed: int = EXTENT_WORLD_SEED):
    """Real renders of ``seed`` (``per_class`` of every class, balanced, from image
    ``start``): ``(images, classes, areas)``, the areas from the world's part maps."""
    n = per_class * WORLD.num_classes
    classes = balanced_classes(n, seed=seed, start=start)
    images, maps = render(classes, seed=seed, start=start, resolution=resolution)
    return images, classes, object_factors(images, maps)["area"].astype(np.float32)


def area_quantiles(resolution: int = 32, per_class: int = 1000,
                   seed: int = EXTENT_WORLD_SEED, read=None) -> tuple[np.ndarray, np.ndarray]:
    """Per class, the real areas' quantiles ``[K, QUANTILES]`` and standard deviation
    ``[K]``, from ``per_class`` renders of each class of world ``seed`` (images from
    10,000,000 on, apart from the regressor's training images). With ``read``
    (``read(images, classes) -> areas``, called 500 images at a time), both are put through
    its calibration line per class (:func:`calibration`): the expected reading of a real
    object at each quantile, and the spread times the line's slope."""
    images, classes, areas = real_extents(per_class, resolution, start=10_000_000, seed=seed)
    q = np.linspace(0.0, 1.0, QUANTILES)
    quant = np.stack([np.quantile(areas[classes == c], q) for c in range(WORLD.num_classes)])
    sd = np.array([areas[classes == c].std() for c in range(WORLD.num_classes)])
    if read is not None:
        readings = np.concatenate([np.asarray(read(images[i:i + 500], classes[i:i + 500]))
                                   for i in range(0, len(images), 500)])
        intercept, slope = calibration(areas, readings, classes)
        quant = intercept[:, None] + slope[:, None] * quant
        sd = slope * sd
    return quant.astype(np.float32), sd.astype(np.float32)


def calibration(areas, readings, classes) -> tuple[np.ndarray, np.ndarray]:
    """Per class, the least-squares line of ``readings`` on the true ``areas``:
    ``(intercept [K], slope [K])``. A slope below 1 is the reader's regression to the mean:
    it reads a size ``slope`` times as far from the class's typical one as it is."""
    areas, readings = np.asarray(areas, np.float64), np.asarray(readings, np.float64)
    intercept, slope = np.zeros(WORLD.num_classes), np.zeros(WORLD.num_classes)
    for c in range(WORLD.num_classes):
        a, r = areas[classes == c], readings[classes == c]
        slope[c] = np.mean((a - a.mean()) * (r - r.mean())) / np.var(a)
        intercept[c] = r.mean() - slope[c] * a.mean()
    return intercept, slope


def latent_cdf(z0, law: str):
    """Where ``z0`` sits under the latent law (``"normal"`` or ``"truncnorm"`` on [-2, 2])."""
    if law == "truncnorm":
        lo, hi = norm.cdf(-2.0), norm.cdf(2.0)
        return jnp.clip((norm.cdf(z0) - lo) / (hi - lo), 0.0, 1.0)
    return norm.cdf(z0)


def area_targets(z0, y, quantiles, law: str):
    """``Q_y(F(z0))`` per sample: the real area of class ``y`` at ``z0``'s quantile."""
    p = latent_cdf(z0, law) * (quantiles.shape[1] - 1)
    lo = jnp.clip(jnp.floor(p).astype(jnp.int32), 0, quantiles.shape[1] - 2)
    frac = p - lo
    rows = quantiles[y]
    a = jnp.take_along_axis(rows, lo[:, None], axis=1)[:, 0]
    b = jnp.take_along_axis(rows, lo[:, None] + 1, axis=1)[:, 0]
    return a + frac * (b - a)


def extent_error(predicted, z0, y, quantiles, sd, law: str):
    """The term: ``mean(((predicted - Q_y(F(z0))) / sd_y) ** 2)``."""
    target = area_targets(z0, y, quantiles, law)
    return jnp.mean(((predicted - target) / sd[y]) ** 2)


_TRAINED: dict = {}


def extent_regressor(resolution: int = 32, steps: int = 5000, batch: int = 128,
                     per_class: int = 2000, seed: int = 0, progress: bool = False):
    """The trained regressor: ``(apply, params, record)``; ``apply(params, images,
    classes)`` gives areas, ``record`` its held-out error (on 200 renders per class from
    image 20,000,000 of :data:`EXTENT_WORLD_SEED`): RMSE, R^2 overall and within each
    class (how much of a class's spread of sizes it reads; 0 for a regressor that knows
    only the class).
    Deterministic from its arguments (``progress`` aside); trained once per process."""
    key = (resolution, steps, batch, per_class, seed)
    if key not in _TRAINED:
        _TRAINED[key] = _train_regressor(*key, progress=progress)
    return _TRAINED[key]


def _train_regressor(resolution, steps, batch, per_class, seed, progress):
    net = ExtentNet()
    images, classes, areas = real_extents(per_class, resolution)
    params = net.init(jax.random.PRNGKey(seed), images[:1], classes[:1])["params"]
    opt = optax.adam(optax.cosine_decay_schedule(2e-3, steps))
    opt_state = opt.init(params)

    @jax.jit
    def update(params, opt_state, x, y, a):
        def loss_fn(p):
            return jnp.mean((net.apply({"params": p}, x, y) - a) ** 2)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    rng = np.random.default_rng(seed)
    it = range(steps)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="extent regressor", unit="step")
    for _ in it:
        idx = rng.integers(0, len(images), batch)
        params, opt_state, _ = update(params, opt_state, images[idx], classes[idx], areas[idx])
    apply = jax.jit(lambda p, x, y: net.apply({"params": p}, x, y))
    test_x, test_y, test_a = real_extents(200, resolution, start=20_000_000)
    pred = np.concatenate([np.asarray(apply(params, test_x[i:i + 500], test_y[i:i + 500]))
                           for i in range(0, len(test_x), 500)])

    def r2(p, a):
        return float(1.0 - np.mean((p - a) ** 2) / np.var(a))

    per_class_r2 = [r2(pred[test_y == c], test_a[test_y == c])
                    for c in range(WORLD.num_classes)]
    record = {"steps": steps, "per_class": per_class,
              "rmse": float(np.sqrt(np.mean((pred - test_a) ** 2))),
              "r2": r2(pred, test_a), "r2_per_class_min": min(per_class_r2),
              "r2_per_class": dict(zip(WORLD.class_names, per_class_r2))}
    return apply, params, record
