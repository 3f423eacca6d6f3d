"""Figures of the analyses, in the layout of the paper's (Fig. 3, 4, 5a, 5b, Tab. 1),
written atomically as PNG with matplotlib's Agg backend."""

from __future__ import annotations

import numpy as np

from jaxaware.outputs import pyplot as _plt
from jaxaware.outputs import save_figure as _save

__all__ = ["ablation_figure", "response_figure", "overlap_figure", "transfer_figure",
           "shared_figure"]






def _rgb(x) -> np.ndarray:
    return np.clip((np.asarray(x, np.float32) + 1) / 2, 0, 1)


def _label(names, k) -> str:
    return str(k) if names is None else str(names[int(k)])


def _off(ax):
    ax.set_xticks([])
    ax.set_yticks([])


def ablation_figure(results, path: str, class_names=None, rows: int = 4) -> str:
    """Fig. 3: per class (one :class:`~jaxaware.analysis.ablation.Ablation` or a list),
    ``rows`` original syntheses, then each zeroed group and its difference map."""
    plt = _plt()
    results = results if isinstance(results, (list, tuple)) else [results]
    per = [min(rows, r.images.shape[1]) for r in results]
    groups = results[0].names
    cols = 1 + 2 * (len(groups) - 1)
    total = sum(per)
    fig, axes = plt.subplots(total, cols, figsize=(1.25 * cols + 0.4, 1.3 * total + 0.9),
                             squeeze=False)
    top = 0
    for result, n in zip(results, per):
        diff = result.difference()
        summary = result.summary()
        vmax = float(diff[:, :n].max()) or 1.0
        for r in range(n):
            row = axes[top + r]
            row[0].imshow(_rgb(result.images[0, r]))
            for g in range(1, len(groups)):
                row[2 * g - 1].imshow(_rgb(result.images[g, r]))
                row[2 * g].imshow(diff[g - 1, r], cmap="magma", vmin=0, vmax=vmax)
            for ax in row:
                _off(ax)
        for g, name in enumerate(groups):
            s = summary[name]
            col = 0 if g == 0 else 2 * g - 1
            axes[top, col].set_title(f"{name}\np={s['prob']:.2f} acc={s['accuracy']:.0%}",
                                     fontsize=7)
            if g:
                axes[top, col + 1].set_title(f"|diff|\n{s['pixel_change']:.3f}", fontsize=7)
        n_zero = sum(len(v) for v in result.channels["highest"].values())
        where = result.sites[0] if len(result.sites) == 1 else f"{len(result.sites)} sites"
        axes[top, 0].set_ylabel(f"{_label(class_names, result.cls)}\n{n_zero} ch, {where}",
                                fontsize=7)
        top += n
    fig.suptitle("zeroing channels of lowest, random and highest category awareness; "
                 "p = classifier's probability of the class", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def response_figure(result, path: str, class_names=None, panels: int = 4) -> str:
    """Fig. 4: per class, awareness (blue) and smoothed response (red) over the groups in
    awareness order; the classes with the highest correlation, as in the paper."""
    plt = _plt()
    order = np.argsort(-np.nan_to_num(result.pearson, nan=-2.0), kind="stable")[:panels]
    fig, axes = plt.subplots(1, len(order), figsize=(3.6 * len(order), 3.0), squeeze=False)
    x = np.arange(result.awareness.shape[1])
    for ax, i in zip(axes[0], order):
        ax.plot(x, result.awareness[i], color="tab:blue", lw=1.2)
        ax.set_ylabel("category awareness", color="tab:blue", fontsize=7)
        ax.tick_params(labelsize=6)
        ax2 = ax.twinx()
        ax2.scatter(x, result.drop[i], s=3, color="tab:red", alpha=0.25)
        ax2.plot(x, result.smoothed[i], color="tab:red", lw=1.2)
        ax2.set_ylabel(f"score drop ({result.score})", color="tab:red", fontsize=7)
        ax2.tick_params(labelsize=6)
        ax.set_xlabel("groups sorted by awareness" if result.group > 1
                      else "channels sorted by awareness", fontsize=7)
        ax.set_title(f"{_label(class_names, result.classes[i])}: r = {result.pearson[i]:.3f}",
                     fontsize=8)
    fig.suptitle(f"{result.site}, g={result.group}, {result.method}, M={result.num_latents}, "
                 f"SG window {result.window}: mean Pearson {result.mean_pearson:.3f}, "
                 f"Spearman {result.mean_spearman:.3f} over {len(result.classes)} classes",
                 fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def overlap_figure(result, path: str, class_names=None, families=None) -> str:
    """Fig. 5a: the overlap heatmap; family blocks outlined when ``families`` is given."""
    plt = _plt()
    n = len(result.classes)
    fig, ax = plt.subplots(figsize=(1.2 + 0.36 * n, 0.9 + 0.34 * n))
    im = ax.imshow(result.matrix, vmin=0, vmax=1, cmap="viridis")
    labels = [_label(class_names, c) for c in result.classes]
    ax.set_xticks(range(n), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(n), labels, fontsize=7)
    if n <= 20:
        for i in range(n):
            for j in range(n):
                v = result.matrix[i, j]
                ax.text(j, i, f"{v:.2f}".lstrip("0") if v < 1 else "1", ha="center",
                        va="center", fontsize=5, color="white" if v < 0.6 else "black")
    if families is not None:
        fam = list(families)
        edges = [i for i in range(1, n) if fam[i] != fam[i - 1]]
        for e in edges:
            ax.axhline(e - 0.5, color="white", lw=1.2)
            ax.axvline(e - 0.5, color="white", lw=1.2)
    fig.colorbar(im, ax=ax, fraction=0.046)
    where = result.sites[0] if len(result.sites) == 1 else f"{len(result.sites)} sites"
    ax.set_title(f"channel overlap, top {result.k} channels ({where}); chance "
                 f"{result.chance:.2f}", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def transfer_figure(result, path: str, class_names=None, latents: int = 2) -> str:
    """Fig. 5b: per target, original | edited | difference for the first latents."""
    plt = _plt()
    t = len(result.targets)
    latents = min(latents, result.original.shape[1])
    cols = 3 * latents
    fig, axes = plt.subplots(t, cols, figsize=(1.1 * cols + 1.0, 1.1 * t + 0.7), squeeze=False)
    diff = np.abs(result.edited - result.original).mean(axis=-1)
    vmax = float(diff[:, :latents].max()) or 1.0
    for r in range(t):
        for j in range(latents):
            axes[r, 3 * j].imshow(_rgb(result.original[r, j]))
            axes[r, 3 * j + 1].imshow(_rgb(result.edited[r, j]))
            axes[r, 3 * j + 2].imshow(diff[r, j], cmap="magma", vmin=0, vmax=vmax)
        for ax in axes[r]:
            _off(ax)
        name = _label(class_names, result.targets[r])
        mark = " *" if result.targets[r] == result.source else ""
        axes[r, 0].set_ylabel(f"{name}{mark}\n{result.pixel_change[r]:.3f}", fontsize=7)
    for j in range(latents):
        for c, title in enumerate(("original", "edited", "|diff|")):
            axes[0, 3 * j + c].set_title(title, fontsize=7)
    fig.suptitle(f"channel {result.channel} of {result.site} from "
                 f"{_label(class_names, result.source)} (*): {result.op} "
                 f"{result.amount:.3g}; row label: mean |pixel change|", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def shared_figure(result, path: str) -> str:
    """Tab. 1 as a figure: counts per criterion and site, and how many channels survive
    as classes are intersected one after another."""
    from jaxaware.analysis.shared import CRITERIA

    plt = _plt()
    counts = np.array([result.counts(c) for c in CRITERIA], np.float64)
    s = len(result.sites)
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(max(6.0, 0.42 * s + 2.5), 5.6),
                                  gridspec_kw={"height_ratios": [1, 1.6]})
    ax.imshow(counts > 0, cmap="Greens", vmin=0, vmax=1.6, aspect="auto")
    for i in range(len(CRITERIA)):
        for j in range(s):
            ax.text(j, i, str(int(counts[i, j])), ha="center", va="center", fontsize=7)
    ax.set_xticks(range(s), result.labels, fontsize=7)
    ax.set_yticks(range(len(CRITERIA)), CRITERIA, fontsize=7)
    ax.set_title(f"channels in the top {result.k} of all {len(result.classes)} classes", fontsize=9)
    x = np.arange(1, len(result.classes) + 1)
    colors = {"category_high": "tab:blue", "category_low": "tab:green",
              "latent_high": "tab:red"}
    for crit in CRITERIA:
        mean = np.mean([result.survivors[crit][n] for n in result.sites], axis=0)
        ax2.plot(x, mean, color=colors[crit], label=crit, lw=1.5)
    ax2.set_xlabel("classes intersected", fontsize=8)
    ax2.set_ylabel("channels left (mean over sites)", fontsize=8)
    ax2.set_yscale("symlog", linthresh=1)
    ax2.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)
