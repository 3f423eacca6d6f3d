"""Per-class synthesis evaluation against total channel awareness (He et al., Sec. 4.4).

The paper's fourth application: the total channel awareness of a class,
``a_e = sum_c |E_z[t_c^e]|`` (:func:`jaxaware.metrics.total_awareness`), computed from the
generator's CCBN affine maps alone, tracks how well the class is synthesised. Fig. 10 shows
the classes with the highest and lowest ``a_e``; Fig. 11 and App. B correlate ``a_e`` over
the 1000 ImageNet classes of BigGAN with four per-class metrics:

=========  ====================================================  ====  =================
metric     per class (App. B)                                    best  paper's corr.
=========  ====================================================  ====  =================
precision  improved precision, k = 3 (Kynkaanniemi et al. 2019)  high  0.714
recall     improved recall, k = 3                                high  -0.792
MS-SSIM    mean MS-SSIM over pairs of 100 generated images       low   0.899
FID        Frechet distance of real and generated features       low   -0.798
=========  ====================================================  ====  =================

so a class with high awareness is generated faithfully but with little diversity.

What :func:`evaluate` computes, for every requested class ``e`` and truncation ``t``
(one *point* per ``(t, e)`` pair):

* ``n`` real images of the class and ``n`` generated ones (#fake = #real, as App. B):
  ``n = per_class``, or fewer when a real-image folder holds fewer for that class. The
  generated images are ``jaxaware.sample(model, [e], t, seed, n)``: latent ``i`` is the
  same for every class (the library's convention), drawn the family's way at ``t``.
* features of both sets from one extractor, any function ``images [B, H, W, 3] in [-1, 1]
  -> features [B, D]`` (App. B uses VGG-16 for precision/recall and Inception-v3 for FID;
  one extractor serves all three here; for the toy world it is the world's reference
  classifier's 128-d penultimate layer);
* ``precision, recall = precision_recall(real, fake, k=3)`` (official rule ``<=``);
* ``ms_ssim = ms_ssim_diversity(fake[:100])``: the mean over the 4,950 *distinct* pairs of
  the first 100 generated images (App. B says 10,000 pairs, which counts the 100 self
  pairs, always 1, and both orders: that mean is ``0.99 * ours + 0.01``); images under
  161 px use fewer MS-SSIM scales (:mod:`jaxaware.metrics.msssim`);
* ``frechet = frechet_distance(real, fake)``: the FID formula on the extractor's features
  (App. B uses 50,000 generated images per class; we use #fake = #real);
* ``total_awareness``: ``a_e`` from ``compute_awareness(model, classes, awareness_latents,
  t, seed)``. Latents are ``t``-scaled, so ``a_e`` is computed at each point's own ``t``.

Across points: the Pearson and Spearman correlations of ``total_awareness`` with each
metric (:func:`correlations`), over all points and, with several truncations, also over the
classes of each truncation alone and over all points *within* truncation (each
truncation's mean and spread removed from both sides first: :func:`within_groups`). A
correlation is ``None`` (JSON ``null``) with fewer than 3 points or a constant metric.
App. B samples without truncation (``t = 1``, the default); several truncations give more
points for a model with few classes (each ``(t, e)`` pair is one point, labelled
``name @ t``). Pooled over truncations, the correlation also measures how truncation itself
moves awareness and the metrics together (lower ``t``: less diversity, and a different
``a_e``), which is not the paper's across-class question; the per-truncation and
within-truncation rows ask that one. Points of the same class at different ``t`` are not
independent, so pooled p-values are optimistic.

Real images: for a toy-world model (16 classes, 32 or 64 px, and the world's class names or
none) world renders of seed :data:`WORLD_REAL_SEED` (12000, disjoint from the seeds that
train the generators (1), the classifier and segmenter (1000 + run seed), their held-out
sets (7), ``jaxaware.toyworld.quality`` (21000, 21001) and the tests), class ``e``
taking world images ``e * n .. e * n + n - 1``; for
any model, a folder (:class:`FolderImages`; layout ``DIR/<class index>/*.png|jpg|jpeg``),
or arrays per class.

Figures (:func:`top_bottom_figure`, :func:`metrics_figure`) follow Fig. 10 and Fig. 11;
Fig. 11's smoothing is a centred sliding mean (:func:`sliding_mean`) whose window scales
with the number of points (:func:`window_size`: the paper's 20 for 1000 classes).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable, Mapping

import numpy as np

from jaxaware.atomic import atomic_write
from jaxaware.errors import JaxawareError
from jaxaware.outputs import pyplot as _plt

__all__ = [
    "METRICS",
    "PAPER_CORRELATIONS",
    "WORLD_REAL_SEED",
    "Evaluation",
    "ArrayImages",
    "FeatureExtractor",
    "FolderImages",
    "WorldImages",
    "correlations",
    "evaluate",
    "figure_paths",
    "is_world_model",
    "load_image",
    "metrics_figure",
    "register",
    "sliding_mean",
    "summary_table",
    "top_bottom_figure",
    "top_bottom_indices",
    "window_size",
    "within_groups",
    "world_features",
]

#: The per-point metrics, in the order of the paper's Fig. 11.
METRICS = ("precision", "recall", "ms_ssim", "frechet")
#: What a better class has (App. B): higher precision and recall, lower MS-SSIM and FID.
BETTER = {"precision": "higher", "recall": "higher", "ms_ssim": "lower", "frechet": "lower"}
#: The correlations of total awareness with each metric over the 1000 classes of BigGAN
#: (Fig. 11; the paper does not say whether Pearson or Spearman).
PAPER_CORRELATIONS = {"precision": 0.714, "recall": -0.792, "ms_ssim": 0.899,
                      "frechet": -0.798}
#: World seed of the real images of toy-world models: used by nothing else in the project.
WORLD_REAL_SEED = 12000
#: File endings :class:`FolderImages` reads (case-insensitive).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
FORMAT = "jaxaware-evaluation/1"
#: Points with the highest and with the lowest total awareness that Fig. 10 shows.
SHOWN = 5

_LABELS = {"precision": "precision", "recall": "recall", "ms_ssim": "MS-SSIM",
           "frechet": "Frechet distance", "total_awareness": "total awareness"}


# -- small pieces with known answers ------------------------------------------------------


def window_size(n: int) -> int:
    """Window of the sliding mean of Fig. 11 for ``n`` points: ``round(n / 50)`` (the
    paper's 20 for 1000 classes, i.e. 2% of the points), at least 3, at most ``n``."""
    n = int(n)
    return max(1, min(n, max(3, int(round(n / 50)))))


def sliding_mean(values, window: int) -> np.ndarray:
    """Centred moving average: ``out[i]`` is the mean of ``values[i - (w - 1) // 2 ..
    i + w // 2]`` clipped to the array: ``(w - 1) // 2`` points before and ``w // 2`` after
    (one more after for even ``w``), fewer at the ends. float64, same length as
    ``values``."""
    v = np.asarray(values, np.float64)
    w = int(window)
    if w < 1:
        raise JaxawareError(f"window must be a positive integer; got {window!r}")
    n = len(v)
    lo = np.clip(np.arange(n) - (w - 1) // 2, 0, n)
    hi = np.clip(np.arange(n) + w // 2 + 1, 0, n)
    csum = np.concatenate([[0.0], np.cumsum(v)])
    return (csum[hi] - csum[lo]) / (hi - lo)


def correlations(awareness, metrics: Mapping[str, np.ndarray]) -> dict:
    """Pearson and Spearman correlations of ``awareness`` with each metric.

    ``{metric: {"pearson", "pearson_p", "spearman", "spearman_p"}}`` (SciPy's
    ``pearsonr`` / ``spearmanr``, two-sided p-values), each ``None`` where it is undefined:
    fewer than 3 points or a constant input (with 2 points any correlation is +-1)."""
    import scipy.stats

    a = np.asarray(awareness, np.float64)
    out = {}
    for name, values in metrics.items():
        m = np.asarray(values, np.float64)
        entry = {"pearson": None, "pearson_p": None, "spearman": None, "spearman_p": None}
        ok = (len(a) >= 3 and np.all(np.isfinite(a)) and np.all(np.isfinite(m))
              and np.ptp(a) > 0 and np.ptp(m) > 0)
        if ok:
            r = scipy.stats.pearsonr(a, m)
            s = scipy.stats.spearmanr(a, m)
            entry = {"pearson": _num(r.statistic), "pearson_p": _num(r.pvalue),
                     "spearman": _num(s.statistic), "spearman_p": _num(s.pvalue)}
        out[name] = entry
    return out


def _num(x):
    x = float(x)
    return x if math.isfinite(x) else None


# -- models, extractors, real images ------------------------------------------------------


def _names(model) -> list[str]:
    k = model.config.num_classes
    if model.class_names is None:
        return [str(i) for i in range(k)]
    return [n if isinstance(n, str) else str(n[0]) for n in model.class_names]


def is_world_model(model) -> bool:
    """Whether ``model`` generates the toy world: 16 classes at 32 or 64 px, named as the
    world's classes (or unnamed)."""
    from jaxaware.toyworld import RESOLUTIONS, WORLD

    cfg = model.config
    if cfg.num_classes != WORLD.num_classes or cfg.resolution not in RESOLUTIONS:
        return False
    return model.class_names is None or tuple(_names(model)) == tuple(WORLD.class_names)


def world_features():
    """The toy world's feature extractor: the reference classifier's 128-d penultimate
    layer (``load_classifier().features``; 64 px images are 2x2-averaged first)."""
    from jaxaware.toyworld import load_classifier

    return load_classifier().features


class FeatureExtractor:
    """Runs a function ``images [B, H, W, 3] (float32 in [-1, 1]) -> features [B, D]`` in
    batches of exactly ``batch_size`` images (the last one padded with copies of its last
    image, whose features are dropped), so a jitted extractor compiles once.

    Every batch's output is checked: a 2-D array of ``B`` rows of floats, finite, with the
    same ``D`` throughout; anything else is a one-line :class:`JaxawareError` naming the
    extractor. An exception inside the extractor becomes one line too.
    """

    def __init__(self, fn: Callable, name: str | None = None, batch_size: int = 64):
        if not callable(fn):
            raise JaxawareError(f"the feature extractor must be a function images [B, H, W, 3]"
                                f" -> features [B, D]; got {type(fn).__name__}")
        self.fn = fn
        self.name = name or _describe(fn)
        self.batch_size = int(batch_size)
        self.dim: int | None = None

    def __call__(self, images) -> np.ndarray:
        x = np.asarray(images, np.float32)
        n, b = len(x), self.batch_size
        out = []
        for s in range(0, n, b):
            part = x[s : s + b]
            if len(part) < b:
                fill = np.repeat(part[-1:], b - len(part), axis=0)
                part = np.concatenate([part, fill])
            out.append(self._batch(part)[: n - s])
        if not out:
            return np.zeros((0, self.dim or 0), np.float64)
        return np.concatenate(out).astype(np.float64, copy=False)

    def _batch(self, part: np.ndarray) -> np.ndarray:
        shape = "[" + ", ".join(str(d) for d in part.shape) + "]"
        try:
            f = self.fn(part)
        except (MemoryError, KeyboardInterrupt):
            raise
        except Exception as e:
            raise JaxawareError(f"the feature extractor {self.name} failed on images {shape} "
                                f"({type(e).__name__}: {_one_line(e)})") from None
        try:
            f = np.asarray(f)
        except Exception:
            raise JaxawareError(f"the feature extractor {self.name} returned a "
                                f"{type(f).__name__}, not an array; it must return float "
                                f"features [{len(part)}, D]") from None
        want = f"it must return float features [{len(part)}, D] for images {shape}"
        if f.ndim != 2 or f.shape[0] != len(part) or f.shape[1] < 1:
            raise JaxawareError(f"the feature extractor {self.name} returned shape "
                                f"{list(f.shape)}; {want}")
        if f.dtype.kind != "f":
            raise JaxawareError(f"the feature extractor {self.name} returned dtype {f.dtype}; "
                                f"{want}")
        if self.dim is not None and f.shape[1] != self.dim:
            raise JaxawareError(f"the feature extractor {self.name} returned {f.shape[1]} "
                                f"features after {self.dim} before; it must return the same "
                                "D for every batch")
        if not np.all(np.isfinite(f)):
            raise JaxawareError(f"the feature extractor {self.name} returned NaN or inf "
                                f"features for images {shape}; features must be finite")
        self.dim = int(f.shape[1])
        return f


def _describe(fn) -> str:
    mod = getattr(fn, "__module__", None) or ""
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    if name is None:
        return type(fn).__name__
    if mod.startswith("jaxaware_user_"):
        return name
    return f"{mod}.{name}" if mod else name


def _one_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0].strip()[:200] if lines else ""


class WorldImages:
    """Real images of a toy-world model: class ``e``'s ``n`` images are world images
    ``e * n .. e * n + n - 1`` of world seed ``seed``, rendered at ``resolution``."""

    def __init__(self, resolution: int, seed: int = WORLD_REAL_SEED):
        from jaxaware.checks import check_seed

        self.resolution = int(resolution)
        self.seed = check_seed(seed, what="real_seed")
        self.description = f"toy-world renders, world seed {self.seed}"

    def count(self, cls: int, wanted: int | None) -> int:
        if wanted is None:
            raise JaxawareError("per_class must be given for world renders (there is no end "
                                "to them); give a positive integer")
        return wanted

    def images(self, cls: int, n: int) -> np.ndarray:
        from jaxaware.toyworld import render

        images, _ = render(np.full(n, cls, np.int64), seed=self.seed, start=cls * n,
                           resolution=self.resolution)
        return images


class FolderImages:
    """Real images from a folder, one subfolder per class: ``DIR/<class index>/`` (the
    index in decimal, e.g. ``DIR/0/``, ``DIR/207/``) holding ``*.png``, ``*.jpg`` or
    ``*.jpeg`` files (any case), read in file-name order.

    Each image is read with PIL, converted to RGB (grey and palette images expanded, alpha
    dropped), centre-cropped to a square on its long side (as BigGAN's preprocessing) and,
    if its size differs, resized to ``resolution`` with PIL's bicubic filter (antialiased);
    uint8 values ``u`` become ``u / 127.5 - 1``. A class uses its first ``per_class``
    files, or all of them when it has fewer (and then as many generated images).
    Subfolders of other classes and other files are ignored.
    """

    def __init__(self, root, resolution: int, classes=None):
        self.root = os.fspath(root)
        self.resolution = int(resolution)
        self.description = f"image folder {self.root}"
        if not os.path.isdir(self.root):
            what = "does not exist" if not os.path.exists(self.root) else "is not a folder"
            raise JaxawareError(f"real-image folder {self.root} {what}; give a folder with "
                                "one subfolder of images per class, DIR/<class index>/*.png")
        self._files: dict[int, list[str]] = {}
        for cls in classes or ():
            self.files(cls)

    def files(self, cls: int) -> list[str]:
        cls = int(cls)
        if cls not in self._files:
            folder = os.path.join(self.root, str(cls))
            if not os.path.isdir(folder):
                raise JaxawareError(f"real-image folder {self.root} has no folder for class "
                                    f"{cls} ({folder}); the layout is DIR/<class index>/"
                                    "*.png|jpg, one folder per evaluated class")
            names = sorted(f for f in os.listdir(folder)
                           if f.lower().endswith(IMAGE_EXTENSIONS)
                           and os.path.isfile(os.path.join(folder, f)))
            if not names:
                raise JaxawareError(f"{folder} holds no .png, .jpg or .jpeg images; put the "
                                    f"real images of class {cls} there")
            self._files[cls] = [os.path.join(folder, f) for f in names]
        return self._files[cls]

    def count(self, cls: int, wanted: int | None) -> int:
        have = len(self.files(cls))
        return have if wanted is None else min(have, wanted)

    def images(self, cls: int, n: int) -> np.ndarray:
        return np.stack([load_image(p, self.resolution) for p in self.files(cls)[:n]])


def load_image(path: str, resolution: int) -> np.ndarray:
    """One image file as float32 ``[resolution, resolution, 3]`` in [-1, 1] (see
    :class:`FolderImages` for the crop, resize and value mapping)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
    except (OSError, ValueError, SyntaxError) as e:
        raise JaxawareError(f"cannot read {path} as an image ({type(e).__name__}: "
                            f"{_one_line(e)}); give PNG or JPEG files") from None
    w, h = im.size
    side = min(w, h)
    if w != h:
        left, top = (w - side) // 2, (h - side) // 2
        im = im.crop((left, top, left + side, top + side))
    if side != resolution:
        im = im.resize((resolution, resolution), Image.Resampling.BICUBIC)
    return np.asarray(im, np.float32) / 127.5 - 1.0


class ArrayImages:
    """Real images given as arrays: ``{class index: [N, H, W, 3] in [-1, 1]}``."""

    def __init__(self, mapping: Mapping, resolution: int):
        self.mapping = {int(k): v for k, v in mapping.items()}
        self.resolution = int(resolution)
        self.description = "arrays given by the caller"

    def count(self, cls: int, wanted: int | None) -> int:
        if int(cls) not in self.mapping:
            raise JaxawareError(f"real images have no entry for class {cls}; give an array "
                                "[N, H, W, 3] for every evaluated class")
        have = len(self.mapping[int(cls)])
        return have if wanted is None else min(have, wanted)

    def images(self, cls: int, n: int) -> np.ndarray:
        return np.asarray(self.mapping[int(cls)][:n], np.float32)


def _check_real(x: np.ndarray, cls: int, n: int, resolution: int, source: str) -> None:
    want = (n, resolution, resolution, 3)
    if x.shape != want:
        raise JaxawareError(f"real images of class {cls} ({source}) have shape "
                            f"{list(x.shape)}; expected {list(want)} (the generator's "
                            "resolution)")
    if not np.all(np.isfinite(x)) or x.min() < -1.0 or x.max() > 1.0:
        raise JaxawareError(f"real images of class {cls} ({source}) are not finite values in "
                            "[-1, 1]; map uint8 images with x / 127.5 - 1")


# -- the evaluation -----------------------------------------------------------------------


@dataclasses.dataclass
class Evaluation:
    """The result of :func:`evaluate`.

    Attributes:
        points: one dict per ``(truncation, class)`` point, truncation-major, classes in
            the order asked: ``class``, ``name``, ``truncation``, ``label`` (``name``, or
            ``name @ t`` with several truncations), ``precision``, ``recall``,
            ``ms_ssim``, ``frechet``, ``total_awareness``, ``n_real``, ``n_fake``,
            ``n_ms_ssim`` (images whose distinct pairs give ``ms_ssim``).
        correlations: ``{"all": {"n": P, metric: {...}}}`` (see :func:`correlations`);
            with several truncations also ``"by_truncation": {"0.5": {...}, ...}`` (the
            classes of one truncation) and ``"within_truncation"`` (all points, each
            truncation's mean and spread removed: :func:`within_groups`).
        settings: everything the numbers depend on (seeds, truncations, counts, the
            extractor and the real images).
        samples: ``{point index: uint8 [S, H, W, 3]}``, the first ``S`` generated images of
            the points :func:`top_bottom_figure` shows (the :data:`SHOWN` highest and lowest
            by total awareness); not saved in the JSON.
    """

    points: list
    correlations: dict
    settings: dict
    samples: dict

    def as_dict(self) -> dict:
        """The JSON document: ``format``, ``settings``, ``points``, ``correlations`` and
        ``paper_correlations`` (Fig. 11's values, for comparison)."""
        return {"format": FORMAT, "settings": self.settings, "points": self.points,
                "correlations": self.correlations, "paper_correlations": PAPER_CORRELATIONS}

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, allow_nan=False) + "\n"

    def save(self, path) -> str:
        """Writes :meth:`to_json` atomically; returns the path."""
        data = self.to_json().encode()
        with atomic_write(path) as f:
            f.write(data)
        return os.fspath(path)

    def table(self) -> str:
        """All correlations beside the paper's, as a markdown table (:func:`summary_table`)."""
        return summary_table(self.correlations)


def summary_table(corr: Mapping) -> str:
    """Markdown: one row per set of points (the paper's 1000 classes, all points, each
    truncation, within truncation), one column per metric, cells ``Pearson / Spearman``."""
    head = ("| total awareness vs. | n | " + " | ".join(
        f"{_LABELS[m]} ({BETTER[m]} is better)" for m in METRICS) + " |")
    lines = [head, "| --- | ---: |" + " ---: |" * len(METRICS),
             "| paper (BigGAN, 1000 ImageNet classes) | 1000 | "
             + " | ".join(f"{PAPER_CORRELATIONS[m]:+.3f}" for m in METRICS) + " |"]

    def row(title, block):
        cells = [f"{_fmt(block[m]['pearson'])} / {_fmt(block[m]['spearman'])}"
                 for m in METRICS]
        return f"| {title} | {block['n']} | " + " | ".join(cells) + " |"

    several = "by_truncation" in corr
    lines.append(row("all points (Pearson / Spearman)" if several else
                     "all classes (Pearson / Spearman)", corr["all"]))
    for t, block in corr.get("by_truncation", {}).items():
        lines.append(row(f"truncation {t} only", block))
    if "within_truncation" in corr:
        lines.append(row("all points, within truncation", corr["within_truncation"]))
    return "\n".join(lines)


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:+.3f}"


def _check_truncations(truncation) -> tuple[float, ...]:
    from jaxaware.truncation import check_truncation

    if isinstance(truncation, str):
        parts = [p.strip() for p in truncation.split(",") if p.strip()]
    elif isinstance(truncation, (int, float, np.integer, np.floating)):
        parts = [truncation]
    else:
        try:
            parts = list(truncation)
        except TypeError:
            raise JaxawareError(f"truncation must be a number in (0, 1] or a list of them; "
                                f"got {truncation!r}") from None
    if not parts:
        raise JaxawareError(f"truncation {truncation!r} names no truncation; give one or more "
                            "numbers in (0, 1], e.g. 1.0 or 0.25,0.5,0.75,1.0")
    out = [check_truncation(p) for p in parts]
    for t in out:
        if out.count(t) > 1:
            raise JaxawareError(f"truncation {t:g} is given twice; give each truncation once")
    return tuple(out)


def _classes(model, classes) -> list[int]:
    if classes is None:
        classes = "all"
    if isinstance(classes, np.ndarray):
        classes = classes.tolist()
    labels = model.resolve_classes(classes)
    if not labels:
        raise JaxawareError("classes is empty; give at least one class")
    return list(dict.fromkeys(int(c) for c in labels))


def _real_source(model, real, classes, real_seed):
    res = model.config.resolution
    if real is None:
        if not is_world_model(model):
            raise JaxawareError(
                f"this model ({model.config.num_classes} classes at {res} px) is not a "
                "toy-world model, so there are no default real images; give a folder "
                "(real=DIR; on the command line --real DIR, laid out DIR/<class index>/*.png)")
        return WorldImages(res, real_seed)
    if isinstance(real, (str, os.PathLike)):
        return FolderImages(real, res, classes)
    if isinstance(real, Mapping):
        return ArrayImages(real, res)
    if hasattr(real, "count") and hasattr(real, "images"):
        return real
    raise JaxawareError(f"real must be None (world renders), a folder path, or a dict "
                        f"{{class: images}}; got {type(real).__name__}")


def _extractor(model, features, batch_size) -> FeatureExtractor:
    if features is None:
        if not is_world_model(model):
            raise JaxawareError(
                f"this model ({model.config.num_classes} classes at "
                f"{model.config.resolution} px) is not a toy-world model, so there is no "
                "default feature extractor; give one (features=fn; on the command line "
                "--features FILE.py:NAME)")
        return FeatureExtractor(world_features(), "toy-world classifier features (128-d)",
                                batch_size)
    if isinstance(features, FeatureExtractor):
        return features
    return FeatureExtractor(features, batch_size=batch_size)


def evaluate(model, classes=None, *, per_class: int | None = 200, truncation=1.0,
             seed: int = 0, features=None, real=None, real_seed: int = WORLD_REAL_SEED,
             k: int = 3, ms_ssim_images: int = 100, awareness_latents: int = 1000,
             batch_size: int = 64, samples_kept: int = 6,
             progress: bool = False, devices=None) -> Evaluation:  # fmt: skip
    """Per-class precision, recall, MS-SSIM, Frechet distance and total awareness of
    ``model``, and their correlations (module docstring: definitions and choices).

    Args:
        model: a :class:`jaxaware.Model` (``jaxaware.load(...)``) of either family.
        classes: indices or names, ``"all"`` or None (every class).
        per_class: real and generated images per class; None takes every real image a
            folder or dict holds (not for world renders). At least ``k + 1``.
        truncation: a number in (0, 1], a list of them, or a string ``"0.25,0.5,1.0"``;
            every ``(truncation, class)`` pair is one point. Default 1.0 (App. B: none).
        seed: latent seed of the generated images and of the awareness latents.
        features: a function ``images [B, H, W, 3] float32 in [-1, 1] -> features [B, D]``
            (or a :class:`FeatureExtractor`); None: the toy world's classifier features
            (toy-world models only).
        real: None (toy-world renders, world seed ``real_seed``), a folder path
            (:class:`FolderImages`), a dict ``{class: images [N, H, W, 3]}``, or an object
            with ``count(cls, wanted)`` and ``images(cls, n)``.
        real_seed: world seed of the renders (default :data:`WORLD_REAL_SEED`).
        k: neighbourhood size of precision and recall (App. B: 3).
        ms_ssim_images: generated images per point whose distinct pairs give MS-SSIM
            (App. B: 100), at least 2; fewer when a point has fewer.
        awareness_latents: latents of :func:`jaxaware.compute_awareness` (the paper's
            N = 1000).
        batch_size: images per generator and extractor call.
        samples_kept: generated images kept per point for the figures.
        progress: show a progress bar (tqdm).
        devices: where the generator and the awareness run: None (every device JAX sees),
            the first ``N`` local devices, or a 1-D ``Mesh`` (:mod:`jaxaware.parallel`).
            Images are sharded over them ``min(batch_size, n)`` per device per step, the
            same program as on one device, so every number is the same on any count.

    Returns:
        An :class:`Evaluation`.
    """
    from jaxaware import parallel
    from jaxaware.checks import check_int, check_seed
    from jaxaware.awareness import compute_awareness
    from jaxaware.generate import check_model, sample, to_uint8
    from jaxaware.metrics import (frechet_distance, ms_ssim_diversity, precision_recall,
                                  total_awareness)

    check_model(model)
    classes = _classes(model, classes)
    truncations = _check_truncations(truncation)
    seed = check_seed(seed)
    k = check_int(k, "k")
    if per_class is not None:
        per_class = check_int(per_class, "per_class")
        if per_class < k + 1:
            raise JaxawareError(f"per_class is {per_class}; precision and recall with k={k} "
                                f"need at least {k + 1} images per class")
    ms_ssim_images = check_int(ms_ssim_images, "ms_ssim_images", minimum=2)
    awareness_latents = check_int(awareness_latents, "awareness_latents")
    batch_size = check_int(batch_size, "batch_size")
    samples_kept = check_int(samples_kept, "samples_kept", minimum=0)
    devices = parallel.check_devices(devices)
    source = _real_source(model, real, classes, real_seed)
    counts = {}
    for c in classes:  # every class's count first: fail before any work
        n = source.count(c, per_class)
        if n < k + 1:
            raise JaxawareError(f"class {c} has {n} real image{'s' if n != 1 else ''} "
                                f"({source.description}); precision and recall with k={k} "
                                f"need at least {k + 1} per class")
        counts[c] = n
    extractor = _extractor(model, features, batch_size)
    names = _names(model)
    res = model.config.resolution

    awareness = {}
    for t in truncations:
        aw = compute_awareness(model, classes, num_latents=awareness_latents, truncation=t,
                               seed=seed, devices=devices)
        totals = total_awareness(aw)
        awareness[t] = {int(c): float(v) for c, v in zip(aw.classes, totals)}
    order = [(t, c) for t in truncations for c in classes]
    # Samples are kept only for the points Fig. 10 shows (known now: awareness comes first).
    shown = {order[i] for i in top_bottom_indices([awareness[t][c] for t, c in order])}

    bar = None
    if progress and parallel.is_main_process():
        from tqdm.auto import tqdm

        bar = tqdm(total=len(classes) * len(truncations), desc="evaluating", unit="point")
    results: dict[tuple[float, int], dict] = {}
    kept: dict[tuple[float, int], np.ndarray] = {}
    try:
        for c in classes:
            n = counts[c]
            real_images = np.asarray(source.images(c, n), np.float32)
            _check_real(real_images, c, n, res, source.description)
            f_real = extractor(real_images)
            del real_images
            for t in truncations:
                fake, _ = sample(model, [c], t, seed, n, batch_size=min(batch_size, n),
                                 devices=devices)
                fake = np.asarray(fake, np.float32)
                f_fake = extractor(fake)
                precision, recall = precision_recall(f_real, f_fake, k=k)
                m = min(ms_ssim_images, n)
                results[(t, c)] = {
                    "class": c,
                    "name": names[c],
                    "truncation": t,
                    "label": names[c] if len(truncations) == 1 else f"{names[c]} @ {t:g}",
                    "precision": precision,
                    "recall": recall,
                    "ms_ssim": ms_ssim_diversity(fake[:m]),
                    "frechet": frechet_distance(f_real, f_fake),
                    "total_awareness": awareness[t][c],
                    "n_real": n,
                    "n_fake": len(fake),
                    "n_ms_ssim": m,
                }
                if (t, c) in shown:
                    kept[(t, c)] = to_uint8(fake[:samples_kept])
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()

    points = [results[key] for key in order]
    samples = {i: kept[key] for i, key in enumerate(order) if key in kept}
    corr = {"all": _corr_block(points)}
    if len(truncations) > 1:
        corr["by_truncation"] = {f"{t:g}": _corr_block([p for p in points
                                                        if p["truncation"] == t])
                                 for t in truncations}
        corr["within_truncation"] = _within_block(points)
    from jaxaware import __version__

    settings = {
        "model_id": model.model_id,
        "family": model.family.name,
        "resolution": res,
        "num_classes": model.config.num_classes,
        "classes": classes,
        "truncations": list(truncations),
        "seed": seed,
        "per_class": per_class,
        "k": k,
        "inclusive": True,
        "ms_ssim_images": ms_ssim_images,
        "awareness_latents": awareness_latents,
        "awareness_seed": seed,
        "extractor": extractor.name,
        "feature_dim": extractor.dim,
        "real": source.description,
        "real_seed": source.seed if isinstance(source, WorldImages) else None,
        "window": window_size(len(points)),
        "jaxaware_version": __version__,
    }
    return Evaluation(points, corr, settings, samples)


def _corr_block(points: list) -> dict:
    a = [p["total_awareness"] for p in points]
    block = {"n": len(points)}
    block.update(correlations(a, {m: [p[m] for p in points] for m in METRICS}))
    return block


def within_groups(values, groups, rank: bool = False) -> np.ndarray:
    """``values`` standardised within each group (``(v - mean) / std``, population std; 0
    for a constant group), after ranking within the group when ``rank`` (average ranks for
    ties). Pearson's r of two such vectors is the pooled within-group correlation."""
    import scipy.stats

    v = np.asarray(values, np.float64)
    g = np.asarray(groups)
    out = np.zeros_like(v)
    for key in np.unique(g):
        sel = g == key
        x = scipy.stats.rankdata(v[sel]) if rank else v[sel]
        sd = x.std()
        out[sel] = (x - x.mean()) / sd if sd > 0 else 0.0
    return out


def _within_block(points: list) -> dict:
    """Correlations over all points with each truncation's own mean and spread removed:
    Pearson of the within-truncation z-scores, Spearman of the within-truncation ranks
    (z-scored). It asks the paper's question (do classes with more awareness than others
    at the same truncation score differently?) with all points, without the truncation's
    own effect on both. No p-values (each truncation costs a degree of freedom)."""
    t = [p["truncation"] for p in points]
    a = [p["total_awareness"] for p in points]
    block = {"n": len(points)}
    for m in METRICS:
        v = [p[m] for p in points]
        r = correlations(within_groups(a, t), {m: within_groups(v, t)})[m]["pearson"]
        s = correlations(within_groups(a, t, rank=True),
                         {m: within_groups(v, t, rank=True)})[m]["pearson"]
        block[m] = {"pearson": r, "pearson_p": None, "spearman": s, "spearman_p": None}
    return block


# -- figures ------------------------------------------------------------------------------




def _png(fig, dpi: int = 100) -> bytes:
    import io

    plt = _plt()
    try:
        buf = io.BytesIO()
        fig.savefig(buf, dpi=dpi, format="png")
    finally:
        plt.close(fig)
    return buf.getvalue()


def _strip(images: np.ndarray, pad: int = 2) -> np.ndarray:
    """uint8 images ``[S, H, W, 3]`` side by side with white gaps."""
    s, h, w, _ = images.shape
    out = np.full((h, s * (w + pad) - pad, 3), 255, np.uint8)
    for i in range(s):
        out[:, i * (w + pad) : i * (w + pad) + w] = images[i]
    return out


def top_bottom_indices(awareness, count: int | None = None) -> list[int]:
    """The points :func:`top_bottom_figure` shows (Fig. 10), given each point's total
    awareness: indices of the ``count`` (default :data:`SHOWN`) highest, highest first, then
    of the lowest, lowest first; with fewer than ``2 * count`` points the top takes the
    larger half."""
    count = SHOWN if count is None else count
    a = np.asarray(awareness, np.float64)
    order = np.argsort(a, kind="stable")
    n_top = min(count, (len(a) + 1) // 2)
    n_bottom = min(count, len(a) // 2)
    return [int(i) for i in order[::-1][:n_top]] + [int(i) for i in order[:n_bottom]]


def top_bottom_png(ev: Evaluation) -> bytes:
    """PNG bytes of :func:`top_bottom_figure`."""
    plt = _plt()
    pts = ev.points
    idx = top_bottom_indices([p["total_awareness"] for p in pts])
    n_top = min(SHOWN, (len(pts) + 1) // 2)
    groups = [("highest total awareness", idx[:n_top]),
              ("lowest total awareness", idx[n_top:])]
    rows = max(n_top, 1)
    shown = [len(v) for v in ev.samples.values()]
    has_images = bool(shown) and max(shown) > 0
    fig, axes = plt.subplots(rows, 2, figsize=(10, 1.55 * rows + 0.8), squeeze=False)
    for col, (title, idx) in enumerate(groups):
        axes[0, col].set_title(f"{len(idx)} points with the {title}", fontsize=10, pad=22)
        for r in range(rows):
            ax = axes[r, col]
            ax.set_xticks([])
            ax.set_yticks([])
            if r >= len(idx):
                ax.axis("off")
                continue
            p = pts[idx[r]]
            if has_images and idx[r] in ev.samples:
                ax.imshow(_strip(ev.samples[idx[r]]), interpolation="nearest")
            ax.set_xlabel(f"{p['label']}: total awareness {p['total_awareness']:.1f}\n"
                          f"P {p['precision']:.2f}  R {p['recall']:.2f}  "
                          f"MS-SSIM {p['ms_ssim']:.3f}  FD {p['frechet']:.1f}", fontsize=8)
    fig.suptitle(f"{ev.settings.get('model_id') or 'model'}: classes by total channel "
                 f"awareness (Fig. 10); {ev.points[0]['n_fake']} samples per point, "
                 f"first {max(shown) if has_images else 0} shown", fontsize=10)
    fig.tight_layout()
    return _png(fig)


def top_bottom_figure(ev: Evaluation, path) -> str:
    """Fig. 10: the :data:`SHOWN` (5) points with the highest and the lowest total
    awareness, each with its first generated samples and its numbers (total awareness,
    precision P, recall R, MS-SSIM, Frechet distance FD). Written atomically as PNG."""
    data = top_bottom_png(ev)
    with atomic_write(path) as f:
        f.write(data)
    return os.fspath(path)


def metrics_png(ev: Evaluation) -> bytes:
    """PNG bytes of :func:`metrics_figure`."""
    plt = _plt()
    pts = ev.points
    a = np.array([p["total_awareness"] for p in pts])
    order = np.argsort(a, kind="stable")
    x = np.arange(len(pts))
    w = window_size(len(pts))
    truncs = sorted({p["truncation"] for p in pts})
    colours = plt.get_cmap("viridis")(np.linspace(0.1, 0.85, len(truncs)))
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.2), squeeze=False)
    corr = ev.correlations["all"]
    for ax, m in zip(axes[0], METRICS):
        v = np.array([pts[i][m] for i in order])
        t_of = np.array([pts[i]["truncation"] for i in order])
        for t, col in zip(truncs, colours):
            sel = t_of == t
            label = f"t = {t:g}" if len(truncs) > 1 else "per class"
            ax.scatter(x[sel], v[sel], s=14, color=col, alpha=0.45, label=label)
        ax.plot(x, sliding_mean(v, w), color="tab:red", lw=2, label=f"sliding mean ({w})")
        ax.set_xlabel("points sorted by total awareness")
        ax.set_ylabel(f"{_LABELS[m]} ({BETTER[m]} is better)")
        c = corr[m]
        ax.set_title(f"{_LABELS[m]}: Pearson {_fmt(c['pearson'])}, Spearman "
                     f"{_fmt(c['spearman'])}\n(paper {PAPER_CORRELATIONS[m]:+.3f})",
                     fontsize=9)
        twin = ax.twinx()
        twin.plot(x, a[order], color="0.4", lw=1, ls="--")
        if a.min() > 0 and a.max() > 20 * a.min():  # an outlier would flatten the rest
            twin.set_yscale("log")
        twin.tick_params(labelsize=7, colors="0.4")
        if m == METRICS[-1]:
            twin.set_ylabel("total awareness (dashed)", color="0.4")
    axes[0, 0].legend(fontsize=7, loc="best")
    s = ev.settings
    fig.suptitle(f"{s.get('model_id') or 'model'}: total channel awareness against per-class "
                 f"metrics (Fig. 11); {len(pts)} points, extractor {s.get('extractor')}",
                 fontsize=10)
    fig.tight_layout()
    return _png(fig)


def metrics_figure(ev: Evaluation, path) -> str:
    """Fig. 11: per metric, the points sorted by total awareness on the x axis, each metric
    as dots (coloured by truncation), its sliding-window mean (:func:`sliding_mean`,
    window :func:`window_size`) as a line, the total awareness itself dashed on a second
    axis (logarithmic when its largest value is over 20 times its smallest: the estimate
    ``E_z[-beta/gamma]`` can be dominated by one latent with ``gamma`` near 0), and the
    correlations (ours and the paper's) in the title. Written atomically."""
    data = metrics_png(ev)
    with atomic_write(path) as f:
        f.write(data)
    return os.fspath(path)


def figure_paths(prefix) -> tuple[str, str]:
    """``(PREFIX_top_bottom.png, PREFIX_metrics.png)``; a ``.png`` ending is dropped first."""
    prefix = os.fspath(prefix)
    if not prefix or prefix.endswith(("/", os.sep)):
        raise JaxawareError(f"--figure {prefix!r} must be a file-name prefix such as "
                            "figs/eval (it writes figs/eval_top_bottom.png and "
                            "figs/eval_metrics.png)")
    if prefix.lower().endswith(".png"):
        prefix = prefix[:-4]
    return prefix + "_top_bottom.png", prefix + "_metrics.png"


# -- command line -------------------------------------------------------------------------


def format_points(ev: Evaluation) -> str:
    """A text table of the points, sorted by total awareness (highest first)."""
    width = max(12, max(len(p["label"]) for p in ev.points))
    lines = [f"{'point':<{width}} {'awareness':>10} {'precision':>9} {'recall':>7} "
             f"{'MS-SSIM':>8} {'Frechet':>9} {'n':>5}"]
    for p in sorted(ev.points, key=lambda p: -p["total_awareness"]):
        lines.append(f"{p['label']:<{width}} {p['total_awareness']:>10.2f} "
                     f"{p['precision']:>9.3f} {p['recall']:>7.3f} {p['ms_ssim']:>8.4f} "
                     f"{p['frechet']:>9.2f} {p['n_fake']:>5}")
    return "\n".join(lines)


def cmd_evaluate(args) -> None:
    from jaxaware import parallel
    from jaxaware.atomic import check_output_path, check_outputs_distinct
    from jaxaware.model import load, resolve_weights_path

    weights = resolve_weights_path(args.weights)
    truncations = _check_truncations(args.truncation)
    reads = [(weights, "the weights directory")]
    if args.real is not None:
        reads.append((args.real, "the real-image folder"))
    if args.features is not None:
        from jaxaware.user_functions import parse_spec

        reads.append((parse_spec(args.features, "--features")[0], "the feature extractor"))
    outputs = [("--out", args.out)]
    if args.figure is not None:
        fig10, fig11 = figure_paths(args.figure)
        outputs += [("--figure", fig10), ("--figure", fig11)]
    for _, path in outputs:
        check_output_path(path, reads=reads)
    check_outputs_distinct(outputs)

    fn = None
    if args.features is not None:
        from jaxaware.user_functions import load_function

        fn = FeatureExtractor(load_function(args.features, "--features"), args.features,
                              args.batch_size)
    model = load(weights)
    ev = evaluate(model, args.classes, per_class=args.per_class, truncation=truncations,
                  seed=args.seed, features=fn, real=args.real, real_seed=args.real_seed,
                  k=args.k, ms_ssim_images=args.ms_ssim_images,
                  awareness_latents=args.awareness_latents, batch_size=args.batch_size,
                  progress=not args.quiet, devices=args.devices)
    if not parallel.is_main_process():  # every process computed it all; process 0 writes
        return
    ev.settings["weights"] = args.weights if args.weights is not None else "default"
    # Render everything first, so a failure leaves no output behind; then write.
    files = [(args.out, ev.to_json().encode())]
    if args.figure is not None:
        files += [(fig10, top_bottom_png(ev)), (fig11, metrics_png(ev))]
    for path, data in files:
        with atomic_write(path) as f:
            f.write(data)
    print(format_points(ev))
    print()
    print(ev.table())
    print()
    for path, _ in files:
        print(f"wrote {path}")


def _arg_int(minimum: int):
    import argparse

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}; got "
                                             f"{text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}; got {text!r}")
        return value

    return parse


def _arg_seed(text: str) -> int:
    import argparse

    from jaxaware.checks import check_seed

    try:
        return check_seed(int(text))
    except (ValueError, JaxawareError):
        raise argparse.ArgumentTypeError(f"expected an integer in 0..{2**32 - 1}; got "
                                         f"{text!r}") from None


def register(sub, model_command) -> None:
    """Adds ``jaxaware evaluate`` to the CLI's subparsers (see ``PLUGINS`` in
    :mod:`jaxaware.cli`). Its own parser rather than ``model_command``: ``--truncation``
    here takes a list."""
    from jaxaware import parallel

    e = sub.add_parser(
        "evaluate", help="per-class precision, recall, MS-SSIM, Frechet distance and total "
        "awareness, and their correlations (paper Sec. 4.4)",
        description="Per-class synthesis evaluation against total channel awareness (He et "
        "al., Sec. 4.4, Fig. 10-11, App. B).")
    e.add_argument("weights", nargs="?", default=None,
                   help="weights directory or a shipped model's name (default: the shipped "
                   "toy-world model)")
    e.add_argument("--classes", default="all",
                   help='indices or names, e.g. 0,3,"cat", or all (default: all)')
    e.add_argument("--per-class", type=_arg_int(1), default=200,
                   help="real and generated images per class (default 200; a real-image "
                   "folder with fewer uses all it has)")
    e.add_argument("--truncation", default="1.0",
                   help="one or more truncations in (0, 1], e.g. 1.0 or 0.25,0.5,0.75,1.0; "
                   "each (truncation, class) pair is one point (default 1.0: none, App. B)")
    e.add_argument("--seed", type=_arg_seed, default=0,
                   help="latent seed of the samples and of the awareness (default 0)")
    e.add_argument("--out", default="evaluation.json", help="JSON output")
    e.add_argument("--figure", default=None, metavar="PREFIX",
                   help="also write PREFIX_top_bottom.png (Fig. 10) and PREFIX_metrics.png "
                   "(Fig. 11)")
    e.add_argument("--features", default=None, metavar="FILE.py:NAME",
                   help="feature extractor: a function images [B, H, W, 3] in [-1, 1] -> "
                   "features [B, D] (default for toy-world models: the world classifier's "
                   "128-d features)")
    e.add_argument("--real", default=None, metavar="DIR",
                   help="real images, DIR/<class index>/*.png|jpg, centre-cropped and "
                   "resized to the generator's resolution (default for toy-world models: "
                   "world renders)")
    e.add_argument("--real-seed", type=_arg_seed, default=WORLD_REAL_SEED,
                   help=f"world seed of the rendered real images (default {WORLD_REAL_SEED})")
    e.add_argument("--k", type=_arg_int(1), default=3,
                   help="neighbourhood size of precision and recall (default 3)")
    e.add_argument("--ms-ssim-images", type=_arg_int(2), default=100,
                   help="generated images whose distinct pairs give MS-SSIM (default 100)")
    e.add_argument("--awareness-latents", type=_arg_int(1), default=1000,
                   help="latents of the awareness (default 1000)")
    e.add_argument("--batch-size", type=_arg_int(1), default=64)
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    parallel.add_arguments(e)
    e.set_defaults(run=cmd_evaluate)
