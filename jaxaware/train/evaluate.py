"""Evaluating a toy-world generator with the world's reference classifier.

* **Accuracy**: the fraction of generated samples (truncation 1.0 by default) that the
  reference classifier (:func:`jaxaware.toyworld.load_classifier`) assigns to the class
  they were generated for.
* **Frechet distance** per class, in the classifier's 128-d feature space, between
  generated samples of the class and rendered world images of the class:
  ``|mu_1 - mu_2|^2 + tr(C_1 + C_2 - 2 (C_1 C_2)^{1/2})``. The trace of the matrix square
  root is computed as ``tr (C_1^{1/2} C_2 C_1^{1/2})^{1/2}`` (the same value as
  ``scipy.linalg.sqrtm(C_1 @ C_2)``'s trace) from symmetric eigendecompositions, which stays
  real and warning-free for the rank-deficient covariances of a few hundred samples.
* A **real-vs-real** Frechet distance per class (two disjoint sets of rendered images of
  the same size) as the floor the sample size allows.

:func:`evaluate` returns a JSON-ready dict; :func:`format_table` prints it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from jaxaware.generate import sample
from jaxaware.model import Model
from jaxaware.toyworld import WORLD, load_classifier, render


def gaussian_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[D]`` and covariance ``[D, D]`` (float64, ``ddof=1``) of ``features [N, D]``."""
    f = np.asarray(features, np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"features must be [N >= 2, D]; got shape {list(f.shape)}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def _psd_sqrt(c: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((c + c.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_from_stats(mu1, c1, mu2, c2) -> float:
    s1 = _psd_sqrt(c1)
    m = s1 @ c2 @ s1
    tr_sqrt = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0.0, None)))
    diff = np.asarray(mu1) - np.asarray(mu2)
    return float(max(diff @ diff + np.trace(c1) + np.trace(c2) - 2.0 * tr_sqrt, 0.0))


def frechet_distance(features_a, features_b) -> float:
    """Frechet distance between Gaussians fitted to two feature sets ``[N, D]``."""
    return frechet_from_stats(*gaussian_stats(features_a), *gaussian_stats(features_b))


def real_class_images(k: int, n: int, seed: int, resolution: int = 32) -> np.ndarray:
    """``n`` rendered world images of class ``k`` (indices ``k * n ...`` of ``seed``)."""
    images, _ = render(np.full(n, k, np.int64), seed=seed, start=k * n, resolution=resolution)
    return images


def evaluate(
    model: Model,
    per_class: int = 200,
    truncation: float = 1.0,
    seed: int = 0,
    real_seed: int = 1000,
    classifier=None,
    progress: bool = False,
) -> dict:
    """Accuracy and per-class Frechet distances of ``model``'s samples (see module doc)."""
    clf = classifier if classifier is not None else load_classifier()
    k = model.config.num_classes
    res = model.config.resolution
    images, labels = sample(model, list(range(k)), truncation, seed, per_class,
                            batch_size=min(64, k * per_class), progress=progress)
    names = [n if isinstance(n, str) else n[0] for n in (model.class_names or WORLD.class_names)]
    n = len(labels)
    real = np.concatenate([real_class_images(c, per_class, real_seed + r, res)
                           for r in (0, 1) for c in range(k)])
    real_labels = np.tile(np.repeat(np.arange(k), per_class), 2)
    everything = np.concatenate([images, real])  # one pass: the classifier pads each call
    all_feats = clf.features(everything)
    all_pred = np.argmax(clf.logits(everything), axis=-1)
    feats, f_real = all_feats[:n], all_feats[n:]
    pred, real_pred = all_pred[:n], all_pred[n:]
    half = k * per_class
    rows = []
    for c in range(k):
        mine = labels == c
        r1 = np.flatnonzero(real_labels[:half] == c)
        r2 = half + np.flatnonzero(real_labels[half:] == c)
        rows.append({
            "class": c,
            "name": names[c],
            "accuracy": float(np.mean(pred[mine] == c)),
            "real_accuracy": float(np.mean(real_pred[r1] == c)),
            "frechet": frechet_distance(feats[mine], f_real[r1]),
            "frechet_real_vs_real": frechet_distance(f_real[r2], f_real[r1]),
        })
    return {
        "model_id": model.model_id,
        "truncation": float(truncation),
        "per_class": int(per_class),
        "seed": int(seed),
        "real_seed": int(real_seed),
        "accuracy": float(np.mean(pred == labels)),
        "mean_frechet": float(np.mean([r["frechet"] for r in rows])),
        "mean_frechet_real_vs_real": float(np.mean([r["frechet_real_vs_real"] for r in rows])),
        "pooled_frechet": frechet_distance(feats, f_real[:half]),
        "classes": rows,
    }


def format_table(result: dict) -> str:
    lines = [(f"model {result['model_id']}  truncation {result['truncation']}  "
              f"{result['per_class']} samples per class"),
             f"{'class':>5} {'name':<12} {'acc':>6} {'real acc':>8} {'FD':>9} {'FD real':>9}"]
    for r in result["classes"]:
        lines.append(f"{r['class']:>5} {r['name']:<12} {r['accuracy']:>6.3f} "
                     f"{r['real_accuracy']:>8.3f} {r['frechet']:>9.3f} "
                     f"{r['frechet_real_vs_real']:>9.3f}")
    lines.append(f"{'all':>5} {'':<12} {result['accuracy']:>6.3f} {'':>8} "
                 f"{result['mean_frechet']:>9.3f} {result['mean_frechet_real_vs_real']:>9.3f}"
                 "  (FD: mean over classes)")
    lines.append(f"pooled FD (all classes together): {result['pooled_frechet']:.3f}")
    return "\n".join(lines)


def save_json(result: dict, path: str | os.PathLike) -> Path:
    """Write ``result`` as JSON atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, path)
    return path
