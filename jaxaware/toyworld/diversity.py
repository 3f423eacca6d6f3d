"""How much of the world's class-independent variation a set of images carries.

Every world image draws its object's position and scale and its background from a stream
shared by all classes (:mod:`jaxaware.toyworld.render`). A generator whose latent carries
those factors spreads its samples of a class as widely as real renders of that class; one
that draws each class in nearly one pose does not. From a part map (the reference
segmenter's, for generated and real images alike) we read, per image:

* **object centre** ``(x, y)``: the mean pixel position of the foreground (labels > 0), as a
  fraction of the image size;
* **object area**: the foreground's share of the pixels;
* **background colour**: the mean RGB of the background pixels (in [-1, 1]).

The *spread* of a factor over a set is its standard deviation (for the centre and the
colour, the root of the summed variances of the coordinates). Images whose map has no
foreground (or no background) leave the centre (or colour) out and are counted.
"""

from __future__ import annotations

import numpy as np

from jaxaware.errors import JaxawareError

FACTORS = ("centre", "area", "background")


def object_factors(images, part_maps) -> dict[str, np.ndarray]:
    """Per image: ``centre [N, 2]`` (x, y in [0, 1]; NaN without foreground), ``area [N]``,
    ``background [N, 3]`` (NaN without background pixels)."""
    images = np.asarray(images, np.float32)
    maps = np.asarray(part_maps)
    if images.ndim != 4 or maps.shape != images.shape[:3]:
        raise JaxawareError(f"images [N, H, W, 3] and part maps [N, H, W] must match; got "
                            f"{list(images.shape)} and {list(maps.shape)}")
    n, h, w, _ = images.shape
    fg = maps > 0
    count = fg.sum(axis=(1, 2)).astype(np.float64)
    ys, xs = (np.arange(h) + 0.5) / h, (np.arange(w) + 0.5) / w
    with np.errstate(invalid="ignore", divide="ignore"):
        cx = (fg * xs[None, None, :]).sum(axis=(1, 2)) / count
        cy = (fg * ys[None, :, None]).sum(axis=(1, 2)) / count
        bg = ~fg
        bg_count = bg.sum(axis=(1, 2)).astype(np.float64)
        colour = (images * bg[..., None]).sum(axis=(1, 2)) / bg_count[:, None]
    return {"centre": np.stack([cx, cy], axis=1), "area": count / (h * w),
            "background": colour}


def _finite_rows(x) -> np.ndarray:
    """``x`` as rows ``[N, d]`` without the rows that hold a non-finite value."""
    x = np.asarray(x, np.float64)
    x = x.reshape(len(x), -1)
    return x[np.isfinite(x).all(axis=1)]


def spreads(factors: dict[str, np.ndarray]) -> dict[str, float]:
    """The spread of each factor over a set (images missing a factor are left out)."""
    out = {}
    for name in FACTORS:
        x = _finite_rows(factors[name])
        out[name] = float(np.sqrt(x.var(axis=0).sum())) if len(x) >= 2 else float("nan")
    return out


def _bootstrap_spreads(x: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """The spread of ``draws`` resamples (with replacement) of the rows of ``x [n, d]``."""
    idx = rng.integers(0, len(x), size=(draws, len(x)))
    return np.sqrt(x[idx].var(axis=1).sum(axis=-1))


def ratio_interval(generated, real, draws: int = 1000, level: float = 0.90,
                   seed: int = 0) -> tuple[float, float]:
    """A bootstrap interval (percentiles, two-sided ``level``) for the ratio of the spread
    of ``generated`` to that of ``real`` (factor values ``[N]`` or ``[N, d]``; rows with a
    non-finite value are left out, as in :func:`spreads`): both sets are resampled, each
    with replacement, ``draws`` times."""
    if draws < 2 or not 0 < level < 1:
        raise JaxawareError(f"a bootstrap interval takes draws >= 2 and a level in (0, 1); "
                            f"got draws={draws}, level={level}")
    g, r = _finite_rows(generated), _finite_rows(real)
    if len(g) < 2 or len(r) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    sg, sr = _bootstrap_spreads(g, draws, rng), _bootstrap_spreads(r, draws, rng)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = sg / sr
    tail = 100 * (1 - level) / 2
    lo, hi = np.nanpercentile(ratio, [tail, 100 - tail])
    return float(lo), float(hi)


def diversity_table(generated: dict, real: dict, segmenter, bootstrap: int = 0,
                    level: float = 0.90, seed: int = 0) -> list[dict]:
    """Per class: the spreads of generated and real images and their ratios.

    ``generated`` and ``real`` map a class index to images ``[N, H, W, 3]`` in [-1, 1];
    both are labelled by ``segmenter.predict`` so that neither side gets ground truth.
    With ``bootstrap`` draws each ratio also gets ``<factor>_ratio_interval`` ([low, high],
    :func:`ratio_interval` at ``level``): how far the ratio of this many samples may move.
    """
    rows = []
    for k in sorted(generated):
        gen = object_factors(generated[k], segmenter.predict(generated[k]))
        ref = object_factors(real[k], segmenter.predict(real[k]))
        sg, sr = spreads(gen), spreads(ref)
        row = {"class": int(k), "no_object": int(np.isnan(gen["centre"][:, 0]).sum())}
        for i, name in enumerate(FACTORS):
            row[f"{name}_generated"] = sg[name]
            row[f"{name}_real"] = sr[name]
            row[f"{name}_ratio"] = sg[name] / sr[name] if sr[name] > 0 else float("nan")
            if bootstrap:
                row[f"{name}_ratio_interval"] = list(ratio_interval(
                    gen[name], ref[name], bootstrap, level, seed + 1000 * int(k) + i))
        rows.append(row)
    return rows
