"""Does category awareness predict what a channel does? (He et al., Sec. 3.1, Fig. 4;
App. A, Fig. 12.)

For a class ``k`` and a CCBN site, sort the site's channels by category awareness
``a_c = -E_z[t_c]`` (ascending) and cut them into consecutive groups of ``g`` channels
(``g = 1``: single channels, as Fig. 4 on BigGAN; App. A uses ``g = 5`` on BigGAN-deep).
Zero each group over ``M`` latent pairs and record the channel-classifier response (the
drop of the target-class score, :mod:`jaxaware.analysis.sweep`). Smooth the responses,
in awareness order, with a Savitzky-Golay filter and correlate them with the groups'
mean awareness; the paper reports the mean Pearson correlation over classes: 0.503 on
BigGAN and 0.603 on BigGAN-deep (1,000 classes each).

Settings the paper leaves open, and our defaults:

* the correlation type: Pearson (``pearson``), with Spearman beside it (``spearman``) and
  the Pearson correlation of the unsmoothed responses (``pearson_raw``);
* the Savitzky-Golay polynomial order: ``polyorder = 2``;
* the window for fewer than 1,536 points: the paper uses 51 on 1,536 points (its layer's
  channels); for ``n < 1536`` groups we scale it, ``round(51 n / 1536)`` made odd and
  at least the smallest odd number >= ``polyorder + 2`` (5 for ``polyorder = 2``); with
  fewer points than that there is no smoothing (``window = 0`` in the result);
* the score: the softmax probability of the target class; M = 100 latent pairs (the
  paper: 1,000); latents for images from ``seed + 1``, awareness from ``seed``;
* the site: ``L0`` (``block0.bn0``), the first layer, whose 1,536 (BigGAN-256) or 2,048
  (BigGAN-deep) channels the paper's numbers refer to.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxaware.checks import check_int
from jaxaware.analysis._common import (
    AWARENESS_LATENTS,
    awareness_rows,
    ccbn_sites,
    check_latent_pairs,
    class_list,
    image_seed,
    pearson,
    spearman,
)
from jaxaware.analysis.sweep import exact_response, first_order_response
from jaxaware.errors import JaxawareError
from jaxaware.generate import check_model

__all__ = ["ResponseCorrelation", "response_correlation", "savgol_window", "smooth",
           "SiteScan", "scan_sites", "awareness_groups",
           "plan_response", "PAPER_WINDOW", "PAPER_POINTS", "METHODS"]

PAPER_WINDOW = 51  # the paper's Savitzky-Golay window ...
PAPER_POINTS = 1536  # ... on this many points (BigGAN-256's first layer)
METHODS = ("exact", "first-order")


def savgol_window(n_points: int, window: int | None = None, polyorder: int = 2) -> int:
    """The Savitzky-Golay window for ``n_points`` responses; 0 means no smoothing.

    Default: 51 for >= 1,536 points (the paper), ``round(51 n / 1536)`` below that, made odd
    and at least the smallest odd number >= ``polyorder + 2`` (a window of ``polyorder + 1``
    points is fitted exactly: no smoothing); never longer than the data (the longest odd
    window that fits, or 0 if that window would not smooth). An explicit ``window`` must be
    odd and above ``polyorder``; 0 turns smoothing off.
    """
    polyorder = check_int(polyorder, "polyorder", minimum=0)
    # A window of polyorder + 1 points fits them exactly (no smoothing): the smallest
    # window that smooths is the smallest odd number >= polyorder + 2.
    smallest = polyorder + 2 if polyorder % 2 else polyorder + 3
    if window is None:
        w = PAPER_WINDOW if n_points >= PAPER_POINTS else round(PAPER_WINDOW * n_points
                                                                 / PAPER_POINTS)
        w = max(w + (w % 2 == 0), smallest)
    else:
        w = check_int(window, "window", minimum=0)
        if w == 0:
            return 0
        if w % 2 == 0 or w <= polyorder:
            raise JaxawareError(f"window must be odd and larger than polyorder {polyorder} "
                                f"(or 0: no smoothing); got {w}")
    if w > n_points:
        w = n_points - (n_points % 2 == 0)
    return w if w > polyorder + 1 else 0


def smooth(values, window: int, polyorder: int = 2) -> np.ndarray:
    """Savitzky-Golay smoothing along the last axis (``window = 0``: unchanged)."""
    from scipy.signal import savgol_filter

    values = np.asarray(values, np.float64)
    if window == 0:
        return values.copy()
    return savgol_filter(values, window, polyorder, axis=-1)


@dataclasses.dataclass(frozen=True)
class ResponseCorrelation:
    """Fig. 4 for ``K`` classes at one site: per class, ``G`` groups in awareness order.

    ``awareness`` ``[K, G]`` (group means, ascending), ``drop`` ``[K, G]`` (raw responses),
    ``smoothed`` ``[K, G]``, ``sem`` ``[K, G]`` (exact only), ``channels`` ``[K, G, g]``
    (site-local channel indices of each group), ``base`` ``[K]`` (mean score of the
    unedited syntheses), ``pearson``/``spearman``/``pearson_raw`` ``[K]`` and their means
    over classes (NaN classes, where a curve is flat, left out).
    """

    classes: np.ndarray
    site: str
    group: int
    awareness: np.ndarray
    drop: np.ndarray
    smoothed: np.ndarray
    sem: np.ndarray | None
    channels: np.ndarray
    base: np.ndarray  # [K] mean score of the unedited syntheses
    pearson: np.ndarray
    spearman: np.ndarray
    pearson_raw: np.ndarray
    window: int
    polyorder: int
    method: str
    score: str
    num_latents: int
    seconds: float

    @property
    def mean_pearson(self) -> float:
        return _nanmean(self.pearson)

    @property
    def mean_spearman(self) -> float:
        return _nanmean(self.spearman)

    def to_json(self, class_names=None) -> dict:
        """The numbers behind the figure (keys documented in :func:`response_correlation`)."""
        return {
            "analysis": "response", "site": self.site, "group": self.group,
            "method": self.method, "score": self.score, "num_latents": self.num_latents,
            "window": self.window, "polyorder": self.polyorder,
            "classes": self.classes, "class_names": class_names,
            "mean_pearson": self.mean_pearson, "mean_spearman": self.mean_spearman,
            "mean_pearson_raw": _nanmean(self.pearson_raw),
            "pearson": self.pearson, "spearman": self.spearman, "pearson_raw": self.pearson_raw,
            "awareness": self.awareness, "drop": self.drop, "smoothed": self.smoothed,
            "sem": self.sem, "channels": self.channels, "base": self.base,
            "seconds": self.seconds,
        }


def _nanmean(x) -> float:
    x = np.asarray(x, np.float64)
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else float("nan")


def awareness_groups(category, group: int):
    """``(channels [K, G, g], mean awareness [K, G])``: each row's channels sorted by
    ascending awareness and cut into consecutive groups of ``group``."""
    cat = np.asarray(category, np.float64)
    order = np.argsort(cat, axis=1, kind="stable")
    k, c = cat.shape
    channels = order.reshape(k, c // group, group)
    means = np.take_along_axis(cat, order, axis=1).reshape(k, c // group, group).mean(axis=2)
    return channels, means


def plan_response(config, site, group=1, num_latents=100, method="exact", window=None,
                  polyorder=2):
    """Checks the settings of :func:`response_correlation` before anything runs; returns
    ``(site, number of groups, Savitzky-Golay window)``."""
    (s,) = ccbn_sites(config, [site])
    group = check_int(group, "group")
    if s.channels % group:
        raise JaxawareError(f"group size {group} does not divide the {s.channels} channels of "
                            f"{s.name}; use a divisor of {s.channels}")
    check_latent_pairs(num_latents)
    if method not in METHODS:
        raise JaxawareError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    n_groups = s.channels // group
    return s, n_groups, savgol_window(n_groups, window, polyorder)


def response_correlation(model, classifier=None, classes=None, site="L0", *, group: int = 1,
                         num_latents: int = 100, method: str = "exact", awareness=None,
                         awareness_latents: int = AWARENESS_LATENTS, truncation: float = 1.0,
                         seed: int = 0, window: int | None = None, polyorder: int = 2,
                         score: str = "prob", batch_size: int = 16,
                         progress: bool = False) -> ResponseCorrelation:
    """The correlation of channel-classifier response and category awareness (Fig. 4).

    Args:
      model, classifier: the generator and the classifier (None: the toy world's).
      classes: classes to analyse (default: all); the paper reports the mean over them.
      site: one CCBN site (name or label).
      group: channels zeroed together, consecutive in awareness order; must divide the
        site's channel count.
      num_latents: ``M`` latent pairs per class (>= 2).
      method: ``"exact"`` (generate every edited image) or ``"first-order"``.
      awareness: an :class:`~jaxaware.awareness.Awareness` with rows for ``classes``, or
        None to compute it from ``awareness_latents`` latents of ``seed``.
      window, polyorder: Savitzky-Golay settings (:func:`savgol_window`).

    JSON keys (:meth:`ResponseCorrelation.to_json`): ``site``, ``group``, ``method``,
    ``score``, ``num_latents``, ``window``, ``polyorder``, ``classes``, ``class_names``,
    ``mean_pearson``, ``mean_spearman``, ``mean_pearson_raw``, per class ``pearson``,
    ``spearman``, ``pearson_raw``, and ``[K, G]`` arrays ``awareness``, ``drop``,
    ``smoothed``, ``sem``, ``channels`` (``[K, G, g]``); ``base`` (``[K]``, the mean score of
    the unedited syntheses); ``seconds``.
    """
    cfg = check_model(model).config
    classes = class_list(model, classes)
    s, n_groups, w = plan_response(cfg, site, group, num_latents, method, window, polyorder)
    category, _ = awareness_rows(model, classes, awareness, awareness_latents, truncation, seed)
    channels, aw_groups = awareness_groups(category[:, s.offset:s.offset + s.channels], group)
    run = exact_response if method == "exact" else first_order_response
    resp = run(model, classifier, classes, s.offset + channels, num_latents=num_latents,
               truncation=truncation, seed=image_seed(seed), score=score, batch_size=batch_size,
               progress=progress)
    smoothed = smooth(resp.drop, w, polyorder)
    return ResponseCorrelation(
        classes=np.asarray(classes), site=s.name, group=group, awareness=aw_groups,
        drop=resp.drop, smoothed=smoothed, sem=resp.sem, channels=channels, base=resp.base,
        pearson=np.array([pearson(a, d) for a, d in zip(aw_groups, smoothed)]),
        spearman=np.array([spearman(a, d) for a, d in zip(aw_groups, smoothed)]),
        pearson_raw=np.array([pearson(a, d) for a, d in zip(aw_groups, resp.drop)]),
        window=w, polyorder=int(polyorder), method=method, score=resp.score,
        num_latents=resp.num_latents, seconds=resp.seconds)


@dataclasses.dataclass(frozen=True)
class SiteScan:
    """The first-order Fig. 4 at many sites at once: ``pearson``/``spearman`` ``[S, K]``
    (smoothed responses vs awareness, per site and class) and each site's ``window``."""

    sites: tuple[str, ...]
    classes: np.ndarray
    group: int
    pearson: np.ndarray
    spearman: np.ndarray
    windows: tuple[int, ...]
    num_latents: int
    seconds: float

    def to_json(self) -> dict:
        """Keys: ``sites``, ``classes``, ``group``, ``num_latents``, ``windows``,
        ``mean_pearson`` and ``mean_spearman`` (one per site), ``pearson`` and ``spearman``
        ``[S, K]``, ``seconds``."""
        return {"sites": list(self.sites), "classes": self.classes, "group": self.group,
                "num_latents": self.num_latents, "windows": list(self.windows),
                "mean_pearson": [_nanmean(p) for p in self.pearson],
                "mean_spearman": [_nanmean(p) for p in self.spearman],
                "pearson": self.pearson, "spearman": self.spearman, "seconds": self.seconds}


def scan_sites(model, classifier=None, classes=None, sites=None, *, group: int = 1,
               num_latents: int = 100, awareness=None,
               awareness_latents: int = AWARENESS_LATENTS, truncation: float = 1.0,
               seed: int = 0, polyorder: int = 2, score: str = "prob",
               batch_size: int = 16, progress: bool = False) -> SiteScan:
    """:func:`response_correlation` with ``method='first-order'`` at every site (default:
    every CCBN site whose width ``group`` divides) from one first-order pass: all classes x
    all sites in seconds, to pick the sites worth an exact sweep."""
    cfg = check_model(model).config
    classes = class_list(model, classes)
    group = check_int(group, "group")
    check_latent_pairs(num_latents)
    chosen = [s for s in ccbn_sites(cfg, sites) if s.channels % group == 0
              and s.channels // group >= 3]
    if not chosen:
        raise JaxawareError(f"no chosen site has a multiple of group size {group} channels "
                            "(and at least 3 groups)")
    category, _ = awareness_rows(model, classes, awareness, awareness_latents, truncation, seed)
    fo = first_order_response(model, classifier, classes, None, num_latents=num_latents,
                              truncation=truncation, seed=image_seed(seed), score=score,
                              batch_size=batch_size, progress=progress)
    pear, spear, windows = [], [], []
    for s in chosen:
        channels, aw = awareness_groups(category[:, s.offset:s.offset + s.channels], group)
        drops = np.take_along_axis(fo.drop, (s.offset + channels).reshape(len(classes), -1),
                                   axis=1).reshape(channels.shape).sum(axis=2)
        w = savgol_window(channels.shape[1], None, polyorder)
        smoothed = smooth(drops, w, polyorder)
        pear.append([pearson(a, d) for a, d in zip(aw, smoothed)])
        spear.append([spearman(a, d) for a, d in zip(aw, smoothed)])
        windows.append(w)
    return SiteScan(sites=tuple(s.name for s in chosen), classes=np.asarray(classes),
                    group=group, pearson=np.asarray(pear), spearman=np.asarray(spear),
                    windows=tuple(windows), num_latents=fo.num_latents, seconds=fo.seconds)
