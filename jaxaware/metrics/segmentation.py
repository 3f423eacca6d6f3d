"""Scores of an unsupervised segmentation (clusters) against reference part maps.

He et al. (Sec. 4.3, Fig. 9) segment generated images by clustering the generator's pixel
features; their clusters carry no part names, so a score has to assign clusters to parts
first. Two assignments, both made per image from the ``[clusters, parts]`` contingency
table ``N[j, p] = |{pixels: cluster j and part p}|``:

* **greedy, many-to-one** (as KLiSH scores its clusters): every cluster ``j`` is labelled
  with the part it overlaps most, ``argmax_p N[j, p]`` (ties: the lowest part index); several
  clusters may share a part, so more clusters can only help.
* **Hungarian, one-to-one**: clusters and parts are matched so that the matched pixels
  ``sum_j N[j, m(j)]`` are as many as possible (``scipy.optimize.linear_sum_assignment``,
  as unsupervised-segmentation papers score); a cluster left without a part (more clusters
  than parts) labels its pixels "no part", a part left without a cluster gets IoU 0.

After the assignment, ``IoU_p = |pred = p and truth = p| / |pred = p or truth = p|`` for every
part ``p`` present in the image's reference map (background, label 0, counts as a part), and
the image's mIoU is their mean. The **adjusted Rand index** (Hubert & Arabie, 1985;
``sklearn.metrics.adjusted_rand_score``) needs no assignment: 1 for the same partition up to
renaming, about 0 for chance. Batches ``[N, H, W]`` are scored image by image and averaged.

No model code is imported (numpy, scipy, scikit-learn); bad input raises
:class:`jaxaware.errors.JaxawareError` with a one-line message.
"""

from __future__ import annotations

import numpy as np

from jaxaware.errors import JaxawareError

__all__ = [
    "adjusted_rand_index",
    "assign_greedy",
    "assign_hungarian",
    "contingency",
    "mean_iou",
    "segmentation_scores",
]

#: The label :func:`assign_hungarian` gives clusters left without a part.
NO_PART = -1


def _label_maps(pred, truth):
    """``pred`` and ``truth`` as int64 arrays ``[N, H, W]`` (a single ``[H, W]`` map becomes
    ``N = 1``), or a one-line error."""
    out = []
    for name, x in (("predicted labels", pred), ("reference labels", truth)):
        try:
            a = np.asarray(x)
        except (TypeError, ValueError):
            a = np.asarray(x, dtype=object)
        if a.dtype == bool or not np.issubdtype(a.dtype, np.integer):
            if not (np.issubdtype(a.dtype, np.floating) and np.all(np.isfinite(a))
                    and np.all(a == np.round(a))):
                raise JaxawareError(f"{name} must be integer label maps [H, W] or [N, H, W]; "
                                    f"got dtype {a.dtype}")
        if a.ndim not in (2, 3) or a.size == 0:
            raise JaxawareError(f"{name} must be non-empty label maps [H, W] or [N, H, W]; got "
                                f"shape {tuple(a.shape)}")
        out.append(a.astype(np.int64).reshape((-1,) + a.shape[-2:]))
    pred, truth = out
    if pred.shape != truth.shape:
        raise JaxawareError(f"predicted and reference labels must have the same shape; got "
                            f"{tuple(np.shape(pred))} and {tuple(np.shape(truth))}")
    if truth.min() < 0:
        raise JaxawareError(f"reference labels must be >= 0 (0 = background); got "
                            f"{int(truth.min())}")
    if pred.min() < 0:
        raise JaxawareError(f"predicted labels must be >= 0 (cluster indices); got "
                            f"{int(pred.min())}")
    return pred, truth


def contingency(pred, truth) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(N, clusters, parts)`` of one map: ``N[j, p]`` pixels in cluster ``clusters[j]``
    and part ``parts[p]``, over the labels present (sorted)."""
    pred, truth = _label_maps(pred, truth)
    if pred.shape[0] != 1:
        raise JaxawareError(f"contingency takes one map [H, W]; got {pred.shape[0]} maps")
    clusters, pi = np.unique(pred[0], return_inverse=True)
    parts, ti = np.unique(truth[0], return_inverse=True)
    table = np.zeros((len(clusters), len(parts)), np.int64)
    np.add.at(table, (pi.ravel(), ti.ravel()), 1)
    return table, clusters, parts


def assign_greedy(pred, truth) -> np.ndarray:
    """Part labels of one map after giving every cluster the part it overlaps most
    (many-to-one)."""
    table, clusters, parts = contingency(pred, truth)
    lookup = dict(zip(clusters.tolist(), parts[np.argmax(table, axis=1)].tolist()))
    return _relabel(np.asarray(pred), lookup)


def assign_hungarian(pred, truth) -> np.ndarray:
    """Part labels of one map after matching clusters and parts one to one so that the
    matched pixels are as many as possible; unmatched clusters get :data:`NO_PART`."""
    from scipy.optimize import linear_sum_assignment

    table, clusters, parts = contingency(pred, truth)
    rows, cols = linear_sum_assignment(table, maximize=True)
    lookup = {int(c): NO_PART for c in clusters}
    lookup.update(zip(clusters[rows].tolist(), parts[cols].tolist()))
    return _relabel(np.asarray(pred), lookup)


def _relabel(pred: np.ndarray, lookup: dict) -> np.ndarray:
    keys = np.array(sorted(lookup), np.int64)
    values = np.array([lookup[k] for k in keys], np.int64)
    return values[np.searchsorted(keys, pred.astype(np.int64))]


def mean_iou(parts_pred, truth) -> float:
    """Mean over the parts present in ``truth`` (one map) of ``|P and T| / |P or T|``, with
    ``P`` the pixels ``parts_pred`` (already part labels; :data:`NO_PART` allowed) gives
    that part."""
    p = np.asarray(parts_pred, np.int64)
    t = np.asarray(truth, np.int64)
    if p.shape != t.shape:
        raise JaxawareError(f"part labels and reference labels must have the same shape; got "
                            f"{tuple(p.shape)} and {tuple(t.shape)}")
    ious = []
    for part in np.unique(t):
        a, b = p == part, t == part
        ious.append(np.logical_and(a, b).sum() / np.logical_or(a, b).sum())
    return float(np.mean(ious))


def adjusted_rand_index(pred, truth) -> float:
    """``sklearn.metrics.adjusted_rand_score`` of one map's pixels (no assignment needed)."""
    from sklearn.metrics import adjusted_rand_score

    pred, truth = _label_maps(pred, truth)
    if pred.shape[0] != 1:
        raise JaxawareError(f"adjusted_rand_index takes one map [H, W]; got {pred.shape[0]}")
    return float(adjusted_rand_score(truth.ravel(), pred.ravel()))


def segmentation_scores(pred, truth) -> dict:
    """Per-image and mean scores of cluster maps ``pred`` against part maps ``truth``.

    Args:
        pred: cluster indices ``[H, W]`` or ``[N, H, W]`` (any non-negative integers).
        truth: reference part labels of the same shape (0 = background).

    Returns:
        ``{'miou_greedy', 'miou_hungarian', 'ari'}``: the means over images (floats), and
        the same keys with ``_per_image`` (lists of ``N`` floats).
    """
    pred, truth = _label_maps(pred, truth)
    per = {"miou_greedy": [], "miou_hungarian": [], "ari": []}
    for p, t in zip(pred, truth):
        per["miou_greedy"].append(mean_iou(assign_greedy(p, t), t))
        per["miou_hungarian"].append(mean_iou(assign_hungarian(p, t), t))
        per["ari"].append(adjusted_rand_index(p, t))
    out = {k: float(np.mean(v)) for k, v in per.items()}
    out.update({f"{k}_per_image": [float(x) for x in v] for k, v in per.items()})
    return out
