"""Frechet distance between two feature sets (the FID formula), exact without ``sqrtm``.

Reference: M. Heusel, H. Ramsauer, T. Unterthiner, B. Nessler, S. Hochreiter, *GANs Trained
by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium* (NeurIPS 2017), and
pytorch-fid's ``calculate_frechet_distance`` (github.com/mseitzer/pytorch-fid), which fits
the Gaussians with ``np.cov(rowvar=False)`` (``ddof = 1``) and takes ``scipy.linalg.sqrtm``
of ``S_a S_b``. The paper under study (He et al., App. B) computes it per class on
Inception-v3 features.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from jaxaware.errors import JaxawareError
from jaxaware.metrics import _checks

_SVD_MAX = 512  # SVD of the cross factor up to this size, square roots of eigenvalues above


def frechet_distance(features_a, features_b) -> float:
    """Frechet distance between Gaussians fitted to two ``[n, d]`` feature sets.

        FD = ||mu_a - mu_b||^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^{1/2})

    with the sample means ``mu`` and covariances ``S`` (``ddof = 1``, as pytorch-fid).

    The trace of the square root without a matrix square root. For any factors with
    ``S_a = F_a F_a^T`` and ``S_b = F_b F_b^T``, the eigenvalues of ``S_a S_b`` are the
    squared singular values of ``F_a^T F_b`` (cyclic property; zero eigenvalues aside), so

        tr((S_a S_b)^{1/2}) = ||F_a^T F_b||_*   (nuclear norm: sum of singular values).

    Per set we take the smaller factor: with ``n <= d`` the centred data,
    ``F = X_c^T / sqrt(n - 1)`` (``d x n``; then ``F_a^T F_b`` is the ``n_a x n_b`` cross
    Gram matrix, so fewer samples than dimensions costs less and needs no regulariser);
    with ``n > d`` a Cholesky factor of ``S`` (``d x d``; when ``S`` is singular, e.g. with
    constant features, LAPACK's rank-revealing pivoted Cholesky ``dpstrf`` instead). The
    singular values ``s_i`` of ``N = F_a^T F_b`` come from an SVD when ``N`` is small
    (``min(p, q) <= 512``: accurate to ``eps s_max`` each, even for the many zero singular
    values of rank-deficient sets), otherwise as square roots of the eigenvalues of the
    smaller of ``N N^T`` and ``N^T N`` (symmetric PSD, ``eigh``; 3x faster than an SVD at
    d = 2048). There an eigenvalue that is 0 in exact arithmetic comes out as
    ``+-eps s_max^2``, is clipped at 0, and adds at most ``sqrt(eps) s_max`` (``1.5e-8
    s_max``) to the sum, the same floor as ``sqrtm(S_a S_b)`` (the reference) has; with
    ``n > d`` and full-rank covariances there are no such eigenvalues.
    Everything is float64. A result below 0 can only be rounding (FD is a squared
    distance) and is returned as 0.

    Args:
        features_a, features_b: ``[n_a, d]`` and ``[n_b, d]`` finite features,
            ``n_a, n_b >= 2``.

    Returns:
        FD as a Python float; symmetric in its arguments (up to rounding).
    """
    a = _checks.features(features_a, "features_a")
    b = _checks.features(features_b, "features_b")
    _checks.same_width(a, b, "features_a", "features_b")
    for x, name in ((a, "features_a"), (b, "features_b")):
        if x.shape[0] < 2:
            raise JaxawareError(
                f"{name} has {x.shape[0]} sample{'s' if x.shape[0] != 1 else ''}; the "
                "covariance (ddof=1) needs at least 2"
            )
    mu_a, fa, tr_a = _moments(a)
    mu_b, fb, tr_b = _moments(b)
    nuclear = _nuclear_norm(fa.T @ fb)
    diff = mu_a - mu_b
    fd = float(diff @ diff) + tr_a + tr_b - 2.0 * nuclear
    return max(fd, 0.0)


def _nuclear_norm(m: np.ndarray) -> float:
    """Sum of the singular values of ``m`` (see :func:`frechet_distance` for the two ways)."""
    if min(m.shape) <= _SVD_MAX:
        try:
            return float(scipy.linalg.svd(m, compute_uv=False, check_finite=False).sum())
        except np.linalg.LinAlgError:  # gesdd rarely fails to converge; then the Gram way
            pass
    gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    eig = scipy.linalg.eigh(gram, eigvals_only=True, check_finite=False)
    return float(np.sqrt(np.clip(eig, 0.0, None)).sum())


def _moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """``(mean, F, tr(S))`` with ``S = F F^T`` the ``ddof = 1`` covariance, float64."""
    x = x.astype(np.float64)
    n, d = x.shape
    mu = x.mean(axis=0)
    xc = x - mu
    trace = float(np.einsum("ij,ij->", xc, xc)) / (n - 1)
    if n <= d:
        return mu, xc.T / np.sqrt(n - 1), trace
    cov = (xc.T @ xc) / (n - 1)
    try:
        return mu, scipy.linalg.cholesky(cov, lower=True, check_finite=False), trace
    except np.linalg.LinAlgError:  # singular: rank-revealing pivoted Cholesky
        pass
    c, piv, rank, info = scipy.linalg.lapack.dpstrf(cov, lower=0)
    if info < 0:
        raise AssertionError(f"dpstrf: bad argument {-info}")
    # P^T S P = U^T U with U upper triangular (only its first `rank` rows are computed):
    # S = F F^T with F^T = U[:rank] with its columns put back in their original order.
    ft = np.zeros((rank, d))
    ft[:, piv - 1] = np.triu(c)[:rank]
    return mu, ft.T, trace
