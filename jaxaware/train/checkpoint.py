"""Training checkpoints: the whole training state in a weights directory, atomically.

A checkpoint is a :mod:`jaxaware.weights_io` directory (``params.npz`` + ``config.json``,
written beside its destination and renamed into place, sha256-checked on load) whose
arrays are the leaves of the training state in ``jax.tree_util`` order
(``leaf00000 ...``); the structure comes from a template state built from the same
config, and ``config.json`` records the training config, the step and the structure's
description so a checkpoint of another config is refused instead of misread.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxaware.errors import JaxawareError
from jaxaware.weights_io import load_weights, save_weights

MODEL_ID = "jaxaware-train-state"


def _structure(state) -> str:
    leaves, treedef = jax.tree_util.tree_flatten(state)
    shapes = [f"{np.dtype(x.dtype).str}{list(np.shape(x))}" for x in leaves]
    return f"{treedef}|{';'.join(shapes)}"


def exists(path: str | os.PathLike) -> bool:
    return os.path.isfile(os.path.join(path, "config.json"))


def save(path: str | os.PathLike, state, tc) -> None:
    leaves = jax.device_get(jax.tree_util.tree_leaves(state))
    arrays = {f"leaf{i:05d}": np.asarray(x) for i, x in enumerate(leaves)}
    from jaxaware.models import family_of

    save_weights(path, arrays, tc.model.to_dict(), MODEL_ID, extra={
        "step": int(np.asarray(state["step"])),
        "train_config": tc.to_dict(),
        "structure": _structure(state),
    }, family=family_of(tc.model).name)


def _comparable(d: dict) -> dict:
    """A training config dict without the fields a resumed run may change."""
    return {k: v for k, v in d.items() if k not in ("steps", "checkpoint_every", "log_every")}


def load(path: str | os.PathLike, template, tc):
    """The state saved at ``path``, in ``template``'s structure, for config ``tc``."""
    flat, meta = load_weights(path)
    if meta.get("model_id") != MODEL_ID:
        raise JaxawareError(f"{path} is not a training checkpoint")
    extra = meta["extra"]
    stored = extra.get("train_config", {})
    try:  # through the config class, so fields added since take their defaults
        stored = type(tc).from_dict(stored).to_dict()
    except (KeyError, TypeError, ValueError, JaxawareError):
        pass
    done = tc.before(int(extra.get("step", 0)))  # e.g. a plain run branching into mode seeking
    if _comparable(stored) not in (_comparable(tc.to_dict()), _comparable(done.to_dict())):
        raise JaxawareError(f"{path} was written by a run with another training config; "
                            "use a new output directory or the same config")
    if extra.get("structure") != _structure(template):
        raise JaxawareError(f"{path} holds a training state of another structure")
    leaves, treedef = jax.tree_util.tree_flatten(template)
    if len(flat) != len(leaves):
        raise JaxawareError(f"{path} holds {len(flat)} arrays; expected {len(leaves)}")
    loaded = [jnp.asarray(flat[f"leaf{i:05d}"]) for i in range(len(leaves))]
    return jax.tree_util.tree_unflatten(treedef, loaded)
