"""Train the reference classifier on freshly rendered toy-world images.

Every step renders a new balanced batch (images ``step * batch_size ...`` of the training
seed), so the network never sees an image twice and cannot overfit. Everything is a
function of the seed: initial weights, data order and the held-out evaluation set (the
world seed ``eval_seed``, disjoint from the training seed).
"""

from __future__ import annotations

import functools
import time
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from jaxaware.errors import JaxawareError
from jaxaware.toyworld.classifier import DEFAULT_CONFIG, ReferenceClassifier, model_from_config
from jaxaware.toyworld.render import check_count, sample_dataset

#: The world seed training data is drawn from is ``TRAIN_SEED_BASE + seed``; held-out data
#: uses other seeds (``eval_seed``), so the two never coincide.
TRAIN_SEED_BASE = 1000


@functools.lru_cache(maxsize=8)
def _compiled(model, res: int, steps: int, learning_rate: float, weight_decay: float):
    """Jitted init and train step for one architecture and schedule (cached, so repeated
    runs with the same settings compile once)."""
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, learning_rate, warmup_steps=max(1, steps // 20), decay_steps=steps,
        end_value=learning_rate * 0.01)
    tx = optax.adamw(schedule, weight_decay=weight_decay)

    @jax.jit
    def init(key):
        return model.init(key, jnp.zeros((1, res, res, 3), jnp.float32))["params"]

    @jax.jit
    def step_fn(params, opt_state, x, y):
        def loss_fn(p):
            _, logits = model.apply({"params": p}, x)
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
            return loss, jnp.mean(jnp.argmax(logits, -1) == y)

        (loss, acc), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, acc

    return init, step_fn, tx


def train_classifier(seed: int = 0, steps: int = 600, batch_size: int = 128,
                     learning_rate: float = 3e-3, weight_decay: float = 1e-4,
                     eval_seed: int = 7, eval_size: int = 4096, config: dict | None = None,
                     callback: Callable[[int, float, float], None] | None = None):
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
    steps = check_count(steps, "steps")
    batch_size = check_count(batch_size, "batch_size")
    if steps == 0 or batch_size == 0:
        raise JaxawareError("steps and batch_size must be positive")
    seed = check_count(seed, "seed")
    if eval_seed == TRAIN_SEED_BASE + seed:
        raise JaxawareError(f"eval_seed {eval_seed} is the training data's world seed")
    config = dict(DEFAULT_CONFIG if config is None else config)
    model = model_from_config(config)
    res = int(config["resolution"])
    init, step_fn, tx = _compiled(model, res, steps, float(learning_rate), float(weight_decay))
    params = init(jax.random.PRNGKey(seed))
    opt_state = tx.init(params)

    data_seed = TRAIN_SEED_BASE + seed
    t0 = time.perf_counter()
    x, y, _ = sample_dataset(batch_size, seed=data_seed, resolution=res, start=0)
    for step in range(steps):
        params, opt_state, loss, acc = step_fn(params, opt_state, x, y)
        if step + 1 < steps:  # render the next batch while XLA runs this step
            x, y, _ = sample_dataset(batch_size, seed=data_seed, resolution=res,
                                     start=(step + 1) * batch_size)
        if callback is not None:
            callback(step, float(loss), float(acc))
    jax.block_until_ready(params)
    train_seconds = time.perf_counter() - t0

    clf = ReferenceClassifier(params, config, batch_size=min(512, max(1, eval_size)))
    xe, ye, _ = sample_dataset(eval_size, seed=eval_seed, resolution=res)
    accuracy = clf.accuracy(xe, ye)
    info = {"seed": seed, "train_world_seed": data_seed, "steps": steps,
            "batch_size": batch_size, "learning_rate": learning_rate,
            "weight_decay": weight_decay, "train_seconds": round(train_seconds, 1),
            "eval_seed": eval_seed, "eval_size": eval_size,
            "heldout_accuracy": round(accuracy, 5)}
    return params, info
