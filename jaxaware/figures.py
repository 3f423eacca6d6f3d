"""Figures for awareness results, written atomically as PNG."""

from __future__ import annotations

import numpy as np

from jaxaware.atomic import atomic_write
from jaxaware.awareness import Awareness

MAX_CLASSES_SHOWN = 48


def _class_label(names, k: int) -> str:
    if names is None:
        return str(k)
    n = names[k]
    return n if isinstance(n, str) else n[0]


def awareness_figure(aw: Awareness, path: str, class_names=None) -> str:
    """Three panels: which classes use the same channels (correlation of category
    awareness between classes), per-site latent awareness, and per-site flip fraction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = min(len(aw.classes), MAX_CLASSES_SHOWN)
    # Spearman: rank channels within each class, so a few channels with gamma near 0
    # (huge |t|) do not dominate.
    cat = np.argsort(np.argsort(aw.category[:k], axis=1), axis=1).astype(np.float64)
    centred = cat - cat.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(centred, axis=1, keepdims=True)
    corr = (centred / np.maximum(norms, 1e-12)) @ (centred / np.maximum(norms, 1e-12)).T
    labels = [_class_label(class_names, int(c)) for c in aw.classes[:k]]

    per_site_latent = [np.median(aw.latent[:, slice(*o)]) for o in aw.site_offsets]
    per_site_flip = [aw.flip_fraction[:, slice(*o)].mean() for o in aw.site_offsets]
    x = np.arange(len(aw.site_names))

    fig = plt.figure(figsize=(14, 6.5))
    ax = fig.add_axes([0.06, 0.12, 0.38, 0.78])
    im = ax.imshow(corr, vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_title("Category awareness: rank correlation between classes")
    if k <= 32:
        ax.set_xticks(range(k), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(k), labels, fontsize=7)
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax2 = fig.add_axes([0.55, 0.56, 0.42, 0.34])
    ax2.bar(x, per_site_latent, color="tab:orange")
    ax2.set_yscale("log")
    ax2.set_title("Latent awareness Var_z[t], median over classes and channels")
    ax2.set_xticks(x[::4], [f"L{i}" for i in x[::4]], fontsize=7)
    ax3 = fig.add_axes([0.55, 0.12, 0.42, 0.30])
    ax3.bar(x, per_site_flip, color="tab:gray")
    ax3.set_title("Fraction of (latent, class, channel) with gamma <= 0")
    ax3.set_xticks(x[::4], [f"L{i}" for i in x[::4]], fontsize=7)
    fig.suptitle(
        f"{aw.model_id or 'model'}: N={aw.num_latents} latents, truncation {aw.truncation}, "
        f"seed {aw.seed}"
    )
    try:
        with atomic_write(path) as f:
            fig.savefig(f, dpi=90, format="png")
    finally:
        plt.close(fig)
    return path
