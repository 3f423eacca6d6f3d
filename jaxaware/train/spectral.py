"""Spectral normalisation during training, as a pure function of plain parameters.

Parameters stay in their plain layout (for the generator exactly that of
:class:`jaxaware.model.Generator`). Before each forward pass every normalised kernel ``K``
is replaced by ``K / sigma(K)``, with ``sigma`` estimated by one power iteration from a
stored left vector ``u`` (the ``sn`` state: a dict ``{path: u}``, kept beside the
parameters like a mutable collection). This is ``torch.nn.utils.spectral_norm`` in train
mode: ``u`` and ``v`` carry no gradient, ``sigma = u . (W v)`` does.

Matrix convention: a kernel of shape ``[..., out]`` is the matrix ``M = K.reshape(-1, out)``
(``M = W^T`` for torch's ``W [out, in * kh * kw]`` up to a permutation of rows, which
changes no singular value); ``u`` has ``out`` entries as in torch.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxaware.models.family import spectrally_normalised

Filter = Callable[[str, tuple], bool]

EPS = 1e-12  # torch's spectral_norm default (the reference uses the config eps, 1e-4)


def _key(path) -> str:
    return "/".join(str(getattr(p, "key", p)) for p in path)


#: Which generator leaves are spectrally normalised: the rule both families share.
generator_filter = spectrally_normalised


def discriminator_filter(name: str, shape: tuple) -> bool:
    """Every kernel and the class embedding of the discriminator (BigGAN's SN embedding)."""
    return len(shape) >= 2


def sn_paths(params, which: Filter) -> list[str]:
    leaves = jax.tree_util.tree_leaves_with_path(params)
    return [_key(p) for p, leaf in leaves if which(_key(p).split("/")[-1], tuple(leaf.shape))]


def init_sn_state(params, which: Filter, seed: int = 0) -> dict[str, jnp.ndarray]:
    """``{path: u}``: a random unit vector per normalised kernel (``out`` entries)."""
    rng = np.random.default_rng(seed)
    state = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        key = _key(path)
        if which(key.split("/")[-1], tuple(leaf.shape)):
            u = rng.standard_normal(leaf.shape[-1])
            state[key] = jnp.asarray(u / np.linalg.norm(u), jnp.float32)
    return state


def _normalize(x, eps=EPS):
    return x / jnp.maximum(jnp.linalg.norm(x), eps)


def power_iteration(kernel, u, n_iter: int = 1):
    """``(sigma, u_new)``: ``n_iter`` torch-style power iterations from ``u``; ``sigma``
    carries gradients to ``kernel`` only."""
    m = kernel.reshape(-1, kernel.shape[-1])
    u = jax.lax.stop_gradient(u)
    mm = jax.lax.stop_gradient(m)
    v = None
    for _ in range(max(int(n_iter), 1)):
        v = _normalize(mm @ u)
        u = _normalize(mm.T @ v)
    u, v = jax.lax.stop_gradient(u), jax.lax.stop_gradient(v)
    sigma = v @ (m @ u)
    return sigma, u


def spectral_normalize(params, sn_state: dict, n_iter: int = 1):
    """``(params with every kernel in sn_state divided by its sigma, new sn_state)``."""
    new_state = {}

    def visit(path, leaf):
        key = _key(path)
        if key not in sn_state:
            return leaf
        sigma, u = power_iteration(leaf, sn_state[key], n_iter)
        new_state[key] = u
        return leaf / sigma

    out = jax.tree_util.tree_map_with_path(visit, params)
    return out, new_state


def exact_sigma(kernel) -> float:
    """The spectral norm of ``kernel.reshape(-1, out)`` (float64 SVD)."""
    m = np.asarray(kernel, np.float64).reshape(-1, np.shape(kernel)[-1])
    return float(np.linalg.svd(m, compute_uv=False)[0])


def fold_spectral_norm(params, which: Filter):
    """Plain params with every normalised kernel divided by its exact spectral norm
    (float64 SVD, cast to float32): what the trained network computes once its power
    iteration has converged. Used when saving a trained generator."""

    def visit(path, leaf):
        key = _key(path)
        if not which(key.split("/")[-1], tuple(np.shape(leaf))):
            return np.asarray(leaf, np.float32)
        return (np.asarray(leaf, np.float32) / np.float32(exact_sigma(leaf))).astype(np.float32)

    return jax.tree_util.tree_map_with_path(visit, params)
