"""Labelled image grids for the applications' figures (matplotlib, Agg, written atomically).

A grid is a list of rows of uint8 images ``[h, w, 3]`` (all the same size), shown at their
own pixels (integer zoom, no smoothing), with a label left of every row and above every
column, optional column groups, and an optional framed column (the input of an edit).
"""

from __future__ import annotations

import numpy as np

from jaxaware.applications._common import pyplot, save_figure

#: Distinct colours for cluster maps (tab20 without its greys), as uint8 RGB.
PALETTE = np.array([
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (188, 189, 34), (23, 190, 207), (174, 199, 232),
    (255, 187, 120), (152, 223, 138), (255, 152, 150), (197, 176, 213), (196, 156, 148),
    (247, 182, 210), (219, 219, 141), (158, 218, 229), (60, 60, 60), (200, 200, 200),
], np.uint8)


def colour_labels(labels, palette=PALETTE) -> np.ndarray:
    """Integer maps ``[..., H, W]`` as RGB ``[..., H, W, 3]`` (label ``i`` gets colour
    ``i mod len(palette)``; negative labels are white)."""
    lab = np.asarray(labels)
    out = palette[np.mod(lab, len(palette))]
    out[lab < 0] = 255
    return out


def by_size(labels) -> np.ndarray:
    """Cluster maps ``[H, W]`` renumbered by size (0 = the largest), so that colours are
    stable across panels (the background is usually the largest cluster)."""
    lab = np.asarray(labels)
    ids, counts = np.unique(lab, return_counts=True)
    order = ids[np.argsort(-counts, kind="stable")]
    lookup = np.zeros(int(ids.max()) + 1, np.int64)
    lookup[order] = np.arange(len(order))
    return lookup[lab]


def zoom(image: np.ndarray, factor: int) -> np.ndarray:
    return image.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else image


def grid_figure(rows, path: str, *, row_labels=(), col_labels=(), title: str = "",
                framed_col: int | None = None, groups=(), zoom_factor: int = 1,
                gap: int = 4, footnote: str = "") -> str:
    """Writes the grid as a PNG at ``path``.

    Args:
      rows: ``[R][C]`` uint8 images ``[h, w, 3]`` (None leaves a cell blank).
      row_labels, col_labels: text left of each row and above each column.
      framed_col: a column drawn with a red frame (e.g. the unedited input).
      groups: ``(first_col, last_col, text)`` headers spanning columns, above the labels.
      zoom_factor: integer upscaling of every cell.
    """
    plt = pyplot()
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    first = next(c for r in rows for c in r if c is not None)
    h, w = first.shape[0] * zoom_factor, first.shape[1] * zoom_factor
    canvas = np.full((n_rows * (h + gap) + gap, n_cols * (w + gap) + gap, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, cell in enumerate(row):
            if cell is None:
                continue
            top, left = gap + i * (h + gap), gap + j * (w + gap)
            canvas[top:top + h, left:left + w] = zoom(np.asarray(cell, np.uint8), zoom_factor)
    label_w = 0.0 if not row_labels else max(len(s) for s in row_labels) * 7.0 + 16
    head_h = (16 if col_labels else 0) + (18 if groups else 0) + (26 if title else 0)
    foot_h = 20 if footnote else 0
    dpi = 100
    width_px, height_px = canvas.shape[1] + label_w + 8, canvas.shape[0] + head_h + foot_h + 8
    fig = plt.figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    ax = fig.add_axes([label_w / width_px, (foot_h + 4) / height_px,
                       canvas.shape[1] / width_px, canvas.shape[0] / height_px])
    ax.imshow(canvas, interpolation="nearest")
    ax.set_axis_off()
    for i, text in enumerate(row_labels):
        ax.text(-8, gap + i * (h + gap) + h / 2, text, ha="right", va="center", fontsize=8)
    for j, text in enumerate(col_labels):
        ax.text(gap + j * (w + gap) + w / 2, -6, text, ha="center", va="bottom", fontsize=8)
    for first_col, last_col, text in groups:
        left = gap + first_col * (w + gap)
        right = gap + last_col * (w + gap) + w
        y = -24 if col_labels else -6
        ax.text((left + right) / 2, y, text, ha="center", va="bottom", fontsize=8,
                fontweight="bold")
        ax.plot([left, right], [y + 2, y + 2], color="black", lw=0.8, clip_on=False)
    if framed_col is not None:
        left = gap + framed_col * (w + gap) - 1.5
        ax.add_patch(plt.Rectangle((left, gap - 1.5), w + 2, canvas.shape[0] - 2 * gap + 2,
                                   fill=False, edgecolor="red", lw=1.5))
    # the header line and the frame must not widen the view: keep it on the canvas, 1:1
    ax.set_xlim(-0.5, canvas.shape[1] - 0.5)
    ax.set_ylim(canvas.shape[0] - 0.5, -0.5)
    if title:
        fig.text(0.5, 1 - 6 / height_px, title, ha="center", va="top", fontsize=10)
    if footnote:
        fig.text(0.01, 4 / height_px, footnote, ha="left", va="bottom", fontsize=7,
                 color="dimgray")
    return save_figure(fig, path, dpi=dpi)
