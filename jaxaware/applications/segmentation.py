"""Awareness-weighted K-Means segmentation of generated images (He et al., Sec. 4.3, Fig. 9).

For an image of class ``e``: collect the post-ReLU features ``h_s`` ``[H_s, W_s, C_s]`` of a
set of CCBN sites, resize each to ``R x R`` (bilinear, half-pixel centres; ``R`` is the
image size, or :data:`MAX_CLUSTER_RESOLUTION` for larger images, whose labels are then
upsampled by nearest neighbour), concatenate them to ``[R * R, C']`` pixel vectors, multiply
channel ``c`` by a weight ``w_c`` and run K-Means over the pixels of that image alone
(:mod:`~jaxaware.applications.clustering`).

* unweighted: ``w_c = 1`` (plain feature clustering, Fig. 9's "w/o");
* awareness-weighted: ``w_c = erf(max(a_c, 0) / sqrt 2) = max(0, 2 Phi(a_c) - 1)`` with
  ``a_c = -E_z[t_c]`` the category awareness of ``e``. The paper says "normalized channel
  awareness" without the formula; ours maps it to [0, 1): a channel whose ReLU would pass
  more than half of a standard normal input (``E_z[t] < 0``) gets the share of that input
  it passes beyond the half, a channel the class keeps off gets 0. It is bounded, so the
  few channels whose gain crosses 0 (awareness in the thousands) cannot swamp the others
  as they would under min-max scaling, and a one-hot awareness weights one channel alone.

Layer sets (Fig. 9): ``all`` CCBN sites, or the ``second-half`` (the later half in forward
order, sites ``L[S//2]..L[S-1]``), or any list of sites.

Scored against the toy world's reference part segmenter (:func:`score_segmentations`):
mIoU after greedy many-to-one and Hungarian one-to-one assignment of clusters to parts,
and the adjusted Rand index (:mod:`jaxaware.metrics.segmentation`).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxaware.checks import check_int
from jaxaware.applications._common import aw_rows, class_name, to_uint8, zoom_for
from jaxaware.applications.clustering import DEFAULT_BACKEND, check_k, kmeans
from jaxaware.errors import JaxawareError
from jaxaware.sites import resolve_site, site_table

__all__ = ["LAYER_SETS", "WEIGHTINGS", "MAX_CLUSTER_RESOLUTION", "layer_set",
           "awareness_weights", "pixel_features", "Segmentation", "segment",
           "score_segmentations", "segmentation_figure", "segment_report"]

LAYER_SETS = ("all", "second-half")
WEIGHTINGS = ("none", "awareness")
#: Pixels are clustered at most at this size (then labels are upsampled).
MAX_CLUSTER_RESOLUTION = 64
#: Images whose features are held at once: at most this many, and at most
#: :data:`MAX_FEATURE_BYTES` of features (at least one image).
IMAGES_PER_STEP = 16
MAX_FEATURE_BYTES = 1 << 30


def layer_set(config, layers) -> list:
    """CCBN :class:`~jaxaware.sites.Site` objects of ``'all'``, ``'second-half'``, or site
    names / labels (a list or a comma-separated string), in forward order."""
    sites = list(site_table(config))
    if isinstance(layers, str) and layers in LAYER_SETS:
        return sites if layers == "all" else sites[len(sites) // 2:]
    names = [x.strip() for x in layers.split(",")] if isinstance(layers, str) else list(layers)
    chosen = {resolve_site(config, n, kinds=("ccbn",)).name for n in names if n}
    if not chosen:
        raise JaxawareError("layers is empty; give all, second-half or CCBN sites")
    return [s for s in sites if s.name in chosen]


def awareness_weights(category) -> np.ndarray:
    """``erf(max(a, 0) / sqrt 2)`` of category awareness ``a`` (any shape), in [0, 1)."""
    from scipy.special import erf

    a = np.asarray(category, np.float64)
    return erf(np.maximum(a, 0.0) / math.sqrt(2.0)).astype(np.float32)


@functools.lru_cache(maxsize=None)
def _features_fn(config, names: tuple, resolution: int):
    from jaxaware.generate import forward
    from jaxaware.models.layers import Capture

    capture = Capture(probes=False, features=True, sites=names)

    def run(variables, z, y, blend):
        images, cap = forward(config, variables, z, y, blend, capture=capture)
        parts = []
        for n in names:
            h = cap[n]["features"]
            parts.append(jax.image.resize(h, h.shape[:1] + (resolution, resolution)
                                          + h.shape[-1:], "bilinear"))
        return images, jnp.concatenate(parts, axis=-1)

    return jax.jit(run)


def cluster_resolution(config, resolution=None) -> int:
    r = config.resolution
    if resolution is None:
        return min(r, MAX_CLUSTER_RESOLUTION)
    ok = isinstance(resolution, (int, np.integer)) and not isinstance(resolution, bool)
    if not ok or not 1 <= resolution <= r or r % resolution:
        raise JaxawareError(f"cluster resolution must divide the image size {r} (1..{r}); "
                            f"got {resolution!r}")
    return int(resolution)


def pixel_features(model, z, classes, sites, truncation: float = 1.0, resolution=None,
                   batch: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """``(images [B, H, W, 3], features [B, R, R, C'])``: post-ReLU features of ``sites``
    (in the given order) resized to ``R`` and concatenated; ``R`` from
    :func:`cluster_resolution`. Runs in calls of ``batch`` latents (the last padded)."""
    from jaxaware.applications.hybridization import _chunked
    from jaxaware.classes import to_class_vectors
    from jaxaware.generate import check_latents, check_model, statistic_weights

    cfg = check_model(model).config
    z = np.asarray(check_latents(z, cfg))
    y = to_class_vectors(np.asarray(classes), cfg.num_classes)
    r = cluster_resolution(cfg, resolution)
    fn = _features_fn(cfg, tuple(s.name for s in sites), r)
    blend = statistic_weights(cfg, truncation)
    return _chunked(lambda zz, yy: fn(model.variables, zz, yy, blend), [z, np.asarray(y)],
                    check_int(batch, "batch"))


@dataclasses.dataclass(frozen=True)
class Segmentation:
    """``labels[(layers, weighting, k)]``: cluster maps ``[B, H, W]`` (clusters numbered
    by size, 0 the largest) of ``images`` ``[B, H, W, 3]``; ``seconds`` per setting."""

    images: np.ndarray
    classes: np.ndarray
    labels: dict
    seconds: dict
    resolution: int
    backend: str


def _upsample(labels: np.ndarray, size: int) -> np.ndarray:
    f = size // labels.shape[-1]
    return labels.repeat(f, axis=-2).repeat(f, axis=-1) if f > 1 else labels


def segment(model, z, classes, ks=(3, 5), layers=LAYER_SETS, weightings=WEIGHTINGS, *,
            awareness=None, truncation: float = 1.0, resolution=None,
            backend: str = DEFAULT_BACKEND, seed: int = 0, n_init: int = 3) -> Segmentation:
    """Cluster maps of the images of ``z`` and ``classes`` (int labels ``[B]``) for every
    layer set in ``layers`` x weighting in ``weightings`` x k in ``ks``.

    ``awareness`` needs rows for ``classes`` when ``'awareness'`` is among the weightings
    (computed with 1000 latents at ``truncation``, seed 0, when not given). Images are
    processed :data:`IMAGES_PER_STEP` at a time (fewer when their features would exceed
    :data:`MAX_FEATURE_BYTES`); every step has the same shapes (one compilation)."""
    import time

    from jaxaware.checks import check_fits_in_memory
    from jaxaware.applications._common import awareness_for
    from jaxaware.generate import check_model
    from jaxaware.sites import total_channels

    from jaxaware.generate import check_latents

    cfg = check_model(model).config
    classes = np.asarray(classes)
    z = np.asarray(check_latents(z, cfg, len(classes)))
    if isinstance(layers, str):
        layers = [layers]
    for w in weightings:
        if w not in WEIGHTINGS:
            raise JaxawareError(f"unknown weighting {w!r}; use none or awareness")
    r = cluster_resolution(cfg, resolution)
    ks = [check_k(k, r * r) for k in ks]
    sets = {str(layer): layer_set(cfg, layer) for layer in layers}
    union = [s for s in site_table(cfg) if any(s in v for v in sets.values())]
    width = sum(s.channels for s in union)
    per_image = r * r * width * 4
    step = max(1, min(IMAGES_PER_STEP, MAX_FEATURE_BYTES // per_image))
    check_fits_in_memory(3 * step * per_image, f"pixel features of {width} channels at "
                         f"{r}x{r}")
    weights = np.ones((len(classes), total_channels(cfg)), np.float32)
    if "awareness" in weightings:
        aw = awareness_for(model, np.unique(classes), awareness, truncation)
        weights = awareness_weights(np.asarray(aw.category)[aw_rows(aw, classes)])
    start, offset = {}, 0
    for s in union:
        start[s.name] = offset
        offset += s.channels
    columns = {}
    for name, sites in sets.items():
        take = np.concatenate([np.arange(start[s.name], start[s.name] + s.channels)
                               for s in sites])
        cols = np.concatenate([np.arange(s.offset, s.offset + s.channels) for s in sites])
        columns[name] = (take, cols)
    keys = [(name, w, k) for name in sets for w in weightings for k in ks]
    labels = {key: [] for key in keys}
    seconds = dict.fromkeys(keys, 0.0)
    images = []
    for lo in range(0, len(classes), step):  # bounded memory; the last step padded
        idx = np.minimum(np.arange(lo, lo + step), len(classes) - 1)
        m = min(step, len(classes) - lo)
        im, feats = pixel_features(model, np.asarray(z)[idx], classes[idx], union, truncation,
                                   r, batch=step)
        images.append(im[:m])
        for name, (take, cols) in columns.items():
            x = feats[..., take].reshape(step, r * r, -1)
            for w in weightings:
                xw = x * weights[idx][:, None, cols] if w == "awareness" else x
                for k in ks:
                    t0 = time.perf_counter()
                    lab, _ = kmeans(xw, k, seed=seed, n_init=n_init, backend=backend)
                    seconds[(name, w, k)] += time.perf_counter() - t0
                    lab = np.stack([_by_size(q) for q in lab[:m].reshape(-1, r, r)])
                    labels[(name, w, k)].append(_upsample(lab, cfg.resolution))
    labels = {key: np.concatenate(v) for key, v in labels.items()}
    images = np.concatenate(images)
    return Segmentation(images, classes, labels, seconds, r, backend)


def _by_size(labels):
    from jaxaware.applications.figures import by_size

    return by_size(labels)


def score_segmentations(seg: Segmentation, parts) -> dict:
    """``{(layers, weighting, k): segmentation_scores(labels, parts)}`` against reference
    part maps ``parts`` ``[B, H, W]`` of ``seg.images``."""
    from jaxaware.metrics.segmentation import segmentation_scores

    return {key: segmentation_scores(lab, parts) for key, lab in seg.labels.items()}


def segmentation_figure(seg: Segmentation, path: str, model=None, parts=None,
                        max_rows: int = 6, title: str = "") -> str:
    """Fig. 9 as a grid: a row per image; the image, the reference parts (if given), then
    for every layer set and k the unweighted and the awareness-weighted clusters."""
    from jaxaware.applications.figures import PALETTE, colour_labels, grid_figure

    keys = list(seg.labels)
    combos = list(dict.fromkeys((layer, k) for layer, _, k in keys))
    weightings = list(dict.fromkeys(w for _, w, _ in keys))
    n = min(max_rows, len(seg.images))
    pix = to_uint8(seg.images[:n])
    # the reference parts get their own colours (background grey-blue, parts the palette)
    part_palette = np.concatenate([[(60, 60, 80)], PALETTE]).astype(np.uint8)
    rows, labels = [], []
    for i in range(n):
        row = [pix[i]]
        if parts is not None:
            row.append(colour_labels(parts[i], part_palette))
        for layer, k in combos:
            for w in weightings:
                row.append(colour_labels(seg.labels[(layer, w, k)][i]))
        rows.append(row)
        labels.append(class_name(model, seg.classes[i]) if model is not None
                      else str(int(seg.classes[i])))
    first = 1 + (parts is not None)
    col_labels = ["image"] + (["parts (ref.)"] if parts is not None else [])
    groups = []
    for j, (layer, k) in enumerate(combos):
        col_labels += ["w/o" if w == "none" else "awareness" for w in weightings]
        lo = first + j * len(weightings)
        groups.append((lo, lo + len(weightings) - 1, f"{layer}, k={k}"))
    return grid_figure(rows, path, row_labels=labels, col_labels=col_labels, groups=groups,
                       zoom_factor=zoom_for(pix.shape[1]),
                       title=title or "K-Means on generator features, without and with "
                       "awareness weights")


def segment_report(model, classes, *, per_class: int = 4, ks=(3, 5), layers=LAYER_SETS,
                   weightings=WEIGHTINGS, truncation: float = 1.0, seed: int = 0,
                   awareness=None, segmenter=None, backend: str = DEFAULT_BACKEND,
                   resolution=None, n_init: int = 3) -> tuple[Segmentation, object, dict]:
    """Segmentations of ``per_class`` images of every class (the same latents for every
    class) and, with a part segmenter (default: the toy world's, when the model is a world
    model and it ships), their scores.

    Returns:
      ``(segmentation, parts or None, payload)``; ``payload['scores']`` is a list of rows
      ``{layers, weighting, k, miou_greedy, miou_hungarian, ari, per_class: {...}}`` (means
      over images; per class over that class's images) and ``payload['seconds']`` the
      K-Means time of every setting.
    """
    from jaxaware.applications._common import (
        class_list,
        latents,
        world_references,
    )

    labels = class_list(model, classes)
    z1 = latents(model, per_class, truncation, seed)
    z = np.tile(z1, (len(labels), 1))
    y = np.repeat(labels, per_class)
    notes = {}
    if segmenter is None:
        _, segmenter, notes = world_references(model)
    seg = segment(model, z, y, ks, layers, weightings, awareness=awareness,
                  truncation=truncation, resolution=resolution, backend=backend, seed=seed,
                  n_init=n_init)
    parts = None if segmenter is None else np.asarray(segmenter.predict(seg.images))
    rows = []
    if parts is not None:
        for (layer, w, k), s in score_segmentations(seg, parts).items():
            per = {}
            for cls in labels:
                idx = y == cls
                per[class_name(model, cls)] = {
                    m: float(np.mean(np.asarray(s[f"{m}_per_image"])[idx]))
                    for m in ("miou_greedy", "miou_hungarian", "ari")}
            rows.append({"layers": layer, "weighting": w, "k": k,
                         **{m: s[m] for m in ("miou_greedy", "miou_hungarian", "ari")},
                         "per_class": per})
    payload = {
        "model_id": model.model_id, "classes": labels,
        "class_names": [class_name(model, k) for k in labels], "per_class": per_class,
        "ks": list(ks), "layers": [str(x) for x in layers], "weightings": list(weightings),
        "truncation": truncation, "seed": seed, "backend": backend, "n_init": n_init,
        "cluster_resolution": seg.resolution,
        "segmenter": segmenter is not None, "notes": notes, "scores": rows,
        "seconds": [{"layers": layer, "weighting": w, "k": k, "seconds": t}
                    for (layer, w, k), t in seg.seconds.items()],
    }
    return seg, parts, payload
