"""K-Means over the pixels of many images at once: a jitted JAX one and scikit-learn's.

Both minimise the inertia ``sum_i min_j ||x_i - c_j||^2`` over the ``P`` pixel vectors
``x_i`` of ONE image (each image is clustered on its own) with Lloyd's iterations from
k-means++ seeds (Arthur & Vassilvitskii, 2007), keeping the best of ``n_init`` restarts:

* ``"jax"`` (:func:`kmeans_jax`): plain k-means++ (each new seed drawn with probability
  proportional to ``D(x)^2``), then Lloyd's steps in a ``while_loop`` until the centres move
  less than ``tol * mean_d Var(x_d)`` (summed squared shift; scikit-learn's rule) or
  ``max_iter`` steps; a cluster that loses all its pixels keeps its centre. Restarts and
  images are ``vmap``-ed: one compiled program per (batch, pixels, width, k). Every image
  uses the same random key (from ``seed``), so an image's clusters do not depend on which
  images share its batch (as scikit-learn's ``random_state=seed`` for every image).
* ``"sklearn"`` (:func:`kmeans_sklearn`): ``sklearn.cluster.KMeans`` (greedy k-means++,
  Lloyd in Cython), one image after another, on one thread.

Measured on this project's 2-core CPU (``python experiments/segment_clusters.py --bench``,
16 images x 1024 pixels x 756 features, k = 5, 3 restarts): the jitted one and one-thread
scikit-learn take about the same time per image (0.05 s), with the same inertia to 0.1%;
scikit-learn with its default threads took 1 s per image. :data:`DEFAULT_BACKEND` is the
jitted one: as fast here, batched, and it runs where JAX runs (GPU, TPU); it compiles once
per (images, pixels, features, k), a few seconds on this CPU.
"""

from __future__ import annotations

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from jaxaware.checks import check_int, check_seed
from jaxaware.errors import JaxawareError

__all__ = ["BACKENDS", "DEFAULT_BACKEND", "check_k", "kmeans", "kmeans_jax", "kmeans_sklearn"]

BACKENDS = ("jax", "sklearn")
DEFAULT_BACKEND = "jax"


def check_k(k, pixels: int) -> int:
    """``k`` as an int, or a one-line error unless ``2 <= k <= pixels``."""
    ok = isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_))
    if not ok or not 2 <= int(k) <= pixels:
        raise JaxawareError(f"k-means k must be an integer in 2..{pixels} (the pixels of an "
                            f"image); got {k!r}")
    return int(k)


def _check_points(x) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 3 or a.shape[1] == 0 or a.shape[2] == 0 or a.shape[0] == 0:
        raise JaxawareError(f"k-means points must be [images, pixels, features] with none "
                            f"empty; got shape {tuple(a.shape)}")
    if a.dtype.kind not in "biuf" or not np.all(np.isfinite(a)):
        raise JaxawareError("k-means points must be finite real numbers")
    return a.astype(np.float32)


def kmeans(x, k: int, *, seed: int = 0, n_init: int = 3, max_iter: int = 100,
           tol: float = 1e-4, backend: str = DEFAULT_BACKEND) -> tuple[np.ndarray, np.ndarray]:
    """Cluster the pixels of every image: ``x`` ``[N, P, D]`` -> ``(labels int32 [N, P],
    inertia float [N])``; image ``n`` is clustered on its own."""
    if backend not in BACKENDS:
        raise JaxawareError(f"unknown k-means backend {backend!r}; use one of "
                            f"{', '.join(BACKENDS)}")
    x = _check_points(x)
    k = check_k(k, x.shape[1])
    n_init, max_iter = check_int(n_init, "n_init"), check_int(max_iter, "max_iter")
    seed = check_seed(seed)
    fn = kmeans_jax if backend == "jax" else kmeans_sklearn
    return fn(x, k, seed=seed, n_init=n_init, max_iter=max_iter, tol=tol)


def kmeans_sklearn(x, k, *, seed=0, n_init=3, max_iter=100, tol=1e-4, threads=1):
    """scikit-learn's ``KMeans`` per image (``random_state=seed``), on ``threads`` BLAS and
    OpenMP threads (None: scikit-learn's default). One image is too small a problem for
    threads: on the 2-core machine of the README, its default threading made it 20x slower
    than one thread."""
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    labels, inertia = [], []
    with threadpool_limits(threads):
        for points in np.asarray(x, np.float32):
            with warnings.catch_warnings():  # fewer distinct pixels than k: clusters repeat
                warnings.simplefilter("ignore", ConvergenceWarning)
                km = KMeans(k, n_init=n_init, max_iter=max_iter, tol=tol, random_state=seed)
                labels.append(km.fit_predict(points).astype(np.int32))
            inertia.append(float(km.inertia_))
    return np.stack(labels), np.asarray(inertia)


def kmeans_jax(x, k, *, seed=0, n_init=3, max_iter=100, tol=1e-4):
    """The jitted K-Means of every image in one call (see the module docstring)."""
    x = jnp.asarray(x, jnp.float32)
    key = jax.random.PRNGKey(seed)  # the same for every image: results do not depend on
    labels, inertia = _batched(int(k), int(n_init), int(max_iter))(x, key, jnp.float32(tol))
    return np.asarray(labels), np.asarray(inertia, np.float64)


def _sq_dist(x, sq, centers):
    """``||x_i - c_j||^2`` ``[P, k]`` via ``|x|^2 - 2 x.c + |c|^2`` (clipped at 0)."""
    cross = x @ centers.T
    return jnp.maximum(sq[:, None] - 2 * cross + jnp.sum(centers * centers, -1)[None], 0.0)


def _plusplus(x, sq, key, k):
    """k-means++ seeds ``[k, D]``: the first uniform, each next with probability ~ D^2."""
    p = x.shape[0]
    key, sub = jax.random.split(key)
    first = jax.random.randint(sub, (), 0, p)
    centers = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(x[first])
    d2 = _sq_dist(x, sq, x[first][None])[:, 0]

    def body(i, carry):
        centers, d2, key = carry
        key, sub = jax.random.split(key)
        # all pixels equal to a seed already: fall back to uniform
        logits = jnp.where(jnp.sum(d2) > 0, jnp.log(d2), jnp.zeros_like(d2))
        c = x[jax.random.categorical(sub, logits)]
        return centers.at[i].set(c), jnp.minimum(d2, _sq_dist(x, sq, c[None])[:, 0]), key

    centers, _, _ = jax.lax.fori_loop(1, k, body, (centers, d2, key))
    return centers


def _lloyd(x, sq, centers, k, max_iter, threshold):
    def assign(centers):
        return jnp.argmin(_sq_dist(x, sq, centers), axis=-1)

    def step(state):
        it, centers, _ = state
        onehot = jax.nn.one_hot(assign(centers), k, dtype=x.dtype)
        counts = onehot.sum(0)
        means = (onehot.T @ x) / jnp.maximum(counts, 1)[:, None]
        new = jnp.where(counts[:, None] > 0, means, centers)
        return it + 1, new, jnp.sum(jnp.square(new - centers))

    def cond(state):
        it, _, shift = state
        return (it < max_iter) & (shift > threshold)

    _, centers, _ = jax.lax.while_loop(cond, step, (0, centers, jnp.inf))
    d = _sq_dist(x, sq, centers)
    labels = jnp.argmin(d, axis=-1)
    return labels.astype(jnp.int32), jnp.sum(jnp.min(d, axis=-1))


@functools.lru_cache(maxsize=None)
def _batched(k: int, n_init: int, max_iter: int):
    def one_image(x, key, tol):
        sq = jnp.sum(x * x, -1)
        threshold = tol * jnp.mean(jnp.var(x, axis=0))

        def restart(key):
            return _lloyd(x, sq, _plusplus(x, sq, key, k), k, max_iter, threshold)

        labels, inertia = jax.vmap(restart)(jax.random.split(key, n_init))
        best = jnp.argmin(inertia)
        return labels[best], inertia[best]

    return jax.jit(jax.vmap(one_image, in_axes=(0, None, None)))
