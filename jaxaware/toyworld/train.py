"""Train the toy world's reference networks (classifier, part segmenter) on fresh renders.

One loop (:func:`fit`) serves both: every step renders a new batch (images
``step * batch_size ...`` of the training world seed), so a network never sees an image
twice and cannot overfit; AdamW follows a linear warm-up and cosine decay; a callback
reports progress. Everything is a function of the run seed: initial weights, data order
and the held-out evaluation set (the world seed ``eval_seed``, disjoint from the training
seed). What differs between the networks is only the batch, the loss and the evaluation.
"""

from __future__ import annotations

import functools
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxaware.errors import JaxawareError
from jaxaware.toyworld.classifier import DEFAULT_CONFIG, ReferenceClassifier, model_from_config
from jaxaware.toyworld.metadata import PART_NAMES
from jaxaware.toyworld.render import check_count, sample_dataset
from jaxaware.toyworld.segmenter import DEFAULT_CONFIG as SEGMENTER_CONFIG
from jaxaware.toyworld.segmenter import ReferenceSegmenter, segmenter_from_config

#: The world seed training data is drawn from is ``TRAIN_SEED_BASE + seed``; held-out data
#: uses other seeds (``eval_seed``), so the two never coincide.
TRAIN_SEED_BASE = 1000

#: ``callback(step, loss, metric)``: called after every training step.
Callback = Callable[[int, float, float], None]


# --------------------------------------------------------------------------- the loop


@functools.lru_cache(maxsize=8)
def _compiled(model, init_shape: tuple[int, ...], loss_fn, steps: int, learning_rate: float,
              weight_decay: float):
    """Jitted init and train step for one architecture, loss and schedule (cached, so
    repeated runs with the same settings compile once)."""
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, learning_rate, warmup_steps=max(1, steps // 20), decay_steps=steps,
        end_value=learning_rate * 0.01)
    tx = optax.adamw(schedule, weight_decay=weight_decay)

    @jax.jit
    def init(key):
        return model.init(key, jnp.zeros(init_shape, jnp.float32))["params"]

    @jax.jit
    def step_fn(params, opt_state, batch):
        (loss, metric), grads = jax.value_and_grad(
            lambda p: loss_fn(model, p, batch), has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, metric

    return init, step_fn, tx


def fit(model, init_shape: tuple[int, ...], loss_fn, next_batch: Callable[[int], tuple],
        *, seed: int, steps: int, learning_rate: float, weight_decay: float,
        callback: Callback | None = None):
    """Train ``model`` from scratch: the shared loop of the reference networks.

    Args:
        model: a Flax module; ``init_shape`` is the input shape whose ``init`` creates
            every param.
        loss_fn: ``loss_fn(model, params, batch) -> (loss, metric)``, a module-level
            function (it is part of the compilation cache key).
        next_batch: ``next_batch(step) -> batch`` (a tuple of arrays); rendered while XLA
            runs the previous step.
        seed: seed of the initial weights.
        steps, learning_rate, weight_decay: AdamW with warm-up and cosine decay to 1%.
        callback: ``callback(step, loss, metric)`` after every step.

    Returns:
        ``(params, seconds)``: the trained params and the loop's wall time.
    """
    init, step_fn, tx = _compiled(model, tuple(init_shape), loss_fn, steps,
                                  float(learning_rate), float(weight_decay))
    params = init(jax.random.PRNGKey(seed))
    opt_state = tx.init(params)
    t0 = time.perf_counter()
    batch = next_batch(0)
    for step in range(steps):
        params, opt_state, loss, metric = step_fn(params, opt_state, batch)
        if step + 1 < steps:  # render the next batch while XLA runs this step
            batch = next_batch(step + 1)
        if callback is not None:
            callback(step, float(loss), float(metric))
    jax.block_until_ready(params)
    return params, time.perf_counter() - t0


def _check_run(seed, steps, batch_sizes: dict, eval_seed) -> tuple[int, int, int]:
    """Validate a run's counts; returns ``(seed, steps, training world seed)``."""
    steps = check_count(steps, "steps")
    sizes = [check_count(v, k) for k, v in batch_sizes.items()]
    if steps == 0 or 0 in sizes:
        raise JaxawareError(f"steps and {' and '.join(batch_sizes)} must be positive")
    seed = check_count(seed, "seed")
    eval_seed = check_count(eval_seed, "eval_seed")
    if eval_seed == TRAIN_SEED_BASE + seed:
        raise JaxawareError(f"eval_seed {eval_seed} is the training data's world seed")
    return seed, steps, TRAIN_SEED_BASE + seed


# --------------------------------------------------------------------------- classifier


def _classifier_loss(model, params, batch):
    x, y = batch
    _, logits = model.apply({"params": params}, x)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, jnp.mean(jnp.argmax(logits, -1) == y)


def train_classifier(seed: int = 0, steps: int = 600, batch_size: int = 128,
                     learning_rate: float = 3e-3, weight_decay: float = 1e-4,
                     eval_seed: int = 7, eval_size: int = 4096, config: dict | None = None,
                     callback: Callback | None = None):
    """Train a :class:`~jaxaware.toyworld.classifier.ToyCNN` from scratch.

    Args:
        seed: the run's seed (initial weights; training data is world seed
            ``TRAIN_SEED_BASE + seed``).
        steps, batch_size, learning_rate, weight_decay: AdamW with warm-up and cosine decay.
        eval_seed, eval_size: the held-out set the returned accuracy is measured on.
        config: model config (defaults to :data:`DEFAULT_CONFIG`).
        callback: called as ``callback(step, loss, batch_accuracy)`` after every step.

    Returns:
        ``(params, info)``: the trained Flax params and a dict with the settings, the
        training time in seconds and the held-out accuracy.
    """
    seed, steps, data_seed = _check_run(seed, steps, {"batch_size": batch_size}, eval_seed)
    config = dict(DEFAULT_CONFIG if config is None else config)
    model = model_from_config(config)
    res = int(config["resolution"])

    def next_batch(step):
        x, y, _ = sample_dataset(batch_size, seed=data_seed, resolution=res,
                                 start=step * batch_size)
        return x, y

    params, seconds = fit(model, (1, res, res, 3), _classifier_loss, next_batch, seed=seed,
                          steps=steps, learning_rate=learning_rate,
                          weight_decay=weight_decay, callback=callback)

    clf = ReferenceClassifier(params, config, batch_size=min(512, max(1, eval_size)))
    xe, ye, _ = sample_dataset(eval_size, seed=eval_seed, resolution=res)
    accuracy = clf.accuracy(xe, ye)
    info = {"seed": seed, "train_world_seed": data_seed, "steps": steps,
            "batch_size": batch_size, "learning_rate": learning_rate,
            "weight_decay": weight_decay, "train_seconds": round(seconds, 1),
            "eval_seed": eval_seed, "eval_size": eval_size,
            "heldout_accuracy": round(accuracy, 5)}
    return params, info


# --------------------------------------------------------------------------- segmenter


def _segmenter_loss(model, params, batch):
    """Label-weighted cross entropy at 32 px plus the same at 64 px; the metric is the
    32 px pixel accuracy."""
    x32, y32, x64, y64, weights = batch

    def ce(x, y):
        logits = model.apply({"params": params}, x)
        per_pixel = optax.softmax_cross_entropy_with_integer_labels(logits, y)
        return jnp.mean(per_pixel * weights[y]), logits

    loss32, logits32 = ce(x32, y32)
    loss64, _ = ce(x64, y64)
    return loss32 + loss64, jnp.mean(jnp.argmax(logits32, -1) == y32)


def label_weights(part_maps: np.ndarray, num_labels: int, exponent: float) -> np.ndarray:
    """Per-label loss weights ``frequency ** -exponent``, scaled so the average pixel
    weighs 1: the background (about 83% of the pixels) would otherwise drown the small
    parts (ears, tails, doors are well under 1% each). ``exponent`` 0 gives plain
    cross entropy."""
    freq = np.bincount(np.asarray(part_maps).ravel(), minlength=num_labels)[:num_labels]
    freq = np.maximum(freq / max(1, freq.sum()), 1e-4)
    w = freq ** -float(exponent)
    return (w / np.sum(w * freq)).astype(np.float32)


def part_iou(pred: np.ndarray, target: np.ndarray, num_labels: int = len(PART_NAMES)):
    """Intersection over union of every label over a whole set of label maps,
    float64 [num_labels] (NaN for a label neither map contains)."""
    pred, target = np.asarray(pred).ravel(), np.asarray(target).ravel()
    both = np.bincount(target[pred == target], minlength=num_labels)[:num_labels]
    union = (np.bincount(pred, minlength=num_labels)[:num_labels]
             + np.bincount(target, minlength=num_labels)[:num_labels] - both)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, both / np.maximum(union, 1), np.nan)


def iou_summary(iou: np.ndarray) -> dict:
    """``{"miou": mean over the parts (background excluded), "background": ...,
    "parts": {name: iou}}`` from a :func:`part_iou` vector, rounded to 4 digits."""
    iou = np.asarray(iou, dtype=np.float64)
    return {"miou": round(float(np.nanmean(iou[1:])), 4),
            "background": round(float(iou[0]), 4),
            "parts": {name: round(float(v), 4) for name, v in zip(PART_NAMES[1:], iou[1:])}}


def upsampled_predict(segmenter, images64: np.ndarray, chunk: int = 256) -> np.ndarray:
    """The alternative to the 64 px head, kept for comparison: run the 32 px network on
    2x2-averaged 64x64 images and upsample its logits bilinearly; int32 [N, 64, 64]."""
    out = []
    for lo in range(0, len(images64), chunk):
        x = np.asarray(images64[lo:lo + chunk], np.float32)
        pooled = x.reshape(len(x), 32, 2, 32, 2, 3).mean(axis=(2, 4))
        lg = segmenter.logits(pooled)
        up = jax.image.resize(lg, (len(x), 64, 64, lg.shape[-1]), "bilinear")
        out.append(np.asarray(jnp.argmax(up, -1), np.int32))
    return np.concatenate(out) if out else np.zeros((0, 64, 64), np.int32)


def evaluate_segmenter(segmenter, seed: int, size: int, compare_upsampled: bool = False):
    """Per-part IoU of ``segmenter`` on ``size`` held-out renders of world seed ``seed`` at
    32 and 64 px: ``{"32": iou_summary, "64": iou_summary}`` (plus ``"64_upsampled"``,
    the 32 px network's logits upsampled, with ``compare_upsampled``)."""
    out = {}
    for res in (32, 64):
        x, _, y = sample_dataset(size, seed=seed, resolution=res)
        out[str(res)] = iou_summary(part_iou(segmenter.predict(x), y))
        if res == 64 and compare_upsampled:
            out["64_upsampled"] = iou_summary(part_iou(upsampled_predict(segmenter, x), y))
    return out


def train_segmenter(seed: int = 0, steps: int = 1600, batch_size: int = 32,
                    batch_size_64: int = 16, learning_rate: float = 3e-3,
                    weight_decay: float = 1e-4, weight_exponent: float = 0.25,
                    eval_seed: int = 7, eval_size: int = 2048, config: dict | None = None,
                    callback: Callback | None = None, compare_upsampled: bool = False):
    """Train a :class:`~jaxaware.toyworld.segmenter.ToySegNet` from scratch.

    Every step renders ``batch_size`` 32x32 and ``batch_size_64`` 64x64 images (64 px ones
    continue the training seed's index range after all the 32 px ones) and minimises the
    sum of the two label-weighted cross entropies (:func:`label_weights`, measured on the
    first 1024 training images).

    Args:
        seed: the run's seed (initial weights; training data is world seed
            ``TRAIN_SEED_BASE + seed``).
        steps, learning_rate, weight_decay: AdamW with warm-up and cosine decay.
        weight_exponent: the label-frequency exponent of the loss weights.
        eval_seed, eval_size: the held-out set (both resolutions) the IoU is measured on.
        config: model config (defaults to the segmenter's ``DEFAULT_CONFIG``).
        callback: called as ``callback(step, loss, pixel_accuracy_32)`` after every step.
        compare_upsampled: also measure the 64 px alternative (:func:`upsampled_predict`).

    Returns:
        ``(params, info)``: the trained params and a dict with the settings, the training
        time (wall and CPU seconds) and the held-out IoU (:func:`evaluate_segmenter`).
    """
    seed, steps, data_seed = _check_run(
        seed, steps, {"batch_size": batch_size, "batch_size_64": batch_size_64}, eval_seed)
    eval_size = check_count(eval_size, "eval_size")
    config = dict(SEGMENTER_CONFIG if config is None else config)
    model = segmenter_from_config(config)
    num_labels = int(config["num_labels"])
    first = sample_dataset(1024, seed=data_seed, resolution=32)[2]
    weights = label_weights(first, num_labels, weight_exponent)
    start64 = steps * batch_size

    def next_batch(step):
        x32, _, y32 = sample_dataset(batch_size, seed=data_seed, resolution=32,
                                     start=step * batch_size)
        x64, _, y64 = sample_dataset(batch_size_64, seed=data_seed, resolution=64,
                                     start=start64 + step * batch_size_64)
        return x32, y32, x64, y64, weights

    cpu0 = time.process_time()
    params, seconds = fit(model, (1, 64, 64, 3), _segmenter_loss, next_batch, seed=seed,
                          steps=steps, learning_rate=learning_rate,
                          weight_decay=weight_decay, callback=callback)
    cpu = time.process_time() - cpu0
    seg = ReferenceSegmenter(params, config, batch_size=min(256, max(1, eval_size)))
    info = {"seed": seed, "train_world_seed": data_seed, "steps": steps,
            "batch_size": batch_size, "batch_size_64": batch_size_64,
            "learning_rate": learning_rate, "weight_decay": weight_decay,
            "weight_exponent": weight_exponent,
            "label_weights": [round(float(w), 4) for w in weights],
            "train_seconds": round(seconds, 1), "train_cpu_seconds": round(cpu, 1),
            "eval_seed": eval_seed, "eval_size": eval_size,
            "heldout_iou": evaluate_segmenter(seg, eval_seed, eval_size, compare_upsampled)}
    return params, info
