"""Parameter initialisation from NumPy on the host (deterministic from a seed).

Flax's own ``init`` compiles one random kernel per parameter, tens of seconds on a CPU;
here shapes come from ``jax.eval_shape`` and values from NumPy, as
:func:`jaxaware.init_random` does. Kernels and embeddings get BigGAN's orthogonal
init (their scale is irrelevant under spectral normalisation, but it sets the size of
Adam's relative steps), biases and the attention ``gamma`` 0, the final BN scale 1.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxaware.model import variable_shapes
from jaxaware.train.discriminator import DConfig, Discriminator


def orthogonal(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """A float32 array whose ``reshape(-1, shape[-1])`` matrix has orthonormal rows or
    columns (whichever are fewer)."""
    rows, cols = int(np.prod(shape[:-1])), int(shape[-1])
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return q.reshape(shape).astype(np.float32)


def _fill(shapes, seed: int):
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        name = str(getattr(path[-1], "key", path[-1]))
        if len(leaf.shape) >= 2:
            return jnp.asarray(orthogonal(rng, tuple(leaf.shape)))
        if name == "scale":  # the final BN's scale (CCBN maps are 2-D)
            return jnp.ones(leaf.shape, jnp.float32)
        return jnp.zeros(leaf.shape, jnp.float32)

    return jax.tree_util.tree_map_with_path(fill, shapes)


def init_generator(config, seed: int = 0) -> dict:
    """Plain generator ``params`` in the family generator's layout (any family)."""
    return _fill(variable_shapes(config)["params"], seed)


def init_discriminator(config: DConfig, resolution: int, seed: int = 0) -> dict:
    x = jnp.zeros((config.pack, resolution, resolution, 3))  # one pack
    y = jnp.zeros((config.pack,), jnp.int32)
    shapes = jax.eval_shape(Discriminator(config).init, jax.random.PRNGKey(0), x, y)
    return _fill(shapes["params"], seed)
