"""How good a generator of the toy world is, against the world's own ground truth.

For every class, ``per_class`` samples (truncation 1 by default) and two disjoint sets of
``per_class`` rendered images of the class (world seed ``real_seed``, a seed no training
uses) are compared with the world's reference networks:

* **accuracy**: the share of samples the reference classifier assigns to the class they
  were generated for (and, for scale, the same for real renders);
* **Frechet distance** in the classifier's 128-d features between samples and the first real
  set, next to the distance between the two real sets (the floor this sample size allows);
* **diversity** (:mod:`jaxaware.toyworld.diversity`): the spreads of object centre, object
  area and background colour of the samples and of the first real set, both read from the
  reference segmenter's part maps, and their ratio.

:func:`evaluate_world_model` returns a JSON-ready dict with the bars of the world-models
issue checked (``bars``); :func:`format_table` prints it. With ``bootstrap`` draws it also
says how far the evaluation's own sampling may move each number: 90% intervals (Wilson for
the accuracies, a bootstrap for the spread ratios) and, per bar, a verdict
(:func:`bar_verdicts`): ``met`` when the intervals clear the bar, ``missed`` when one lies
wholly short of it, ``within noise`` otherwise (the Frechet bar is judged on its estimate).
"""

from __future__ import annotations

import numpy as np

from jaxaware.errors import JaxawareError
from jaxaware.generate import sample
from jaxaware.metrics import frechet_distance
from jaxaware.toyworld.diversity import FACTORS, diversity_table
from jaxaware.toyworld.metadata import WORLD
from jaxaware.toyworld.render import render

#: World seed of the real images evaluations compare with (disjoint from every training
#: stream: the classifier and segmenter train on seeds 1000+, the GANs on seed 1).
REAL_SEED = 21000

BARS = {"class_accuracy": 0.95, "accuracy": 0.98, "diversity_ratio": 0.70,
        "frechet_over_floor": 5.0}

#: Two-sided level of the intervals an evaluation reports.
INTERVAL_LEVEL = 0.90


def wilson_interval(successes: int, n: int, level: float = INTERVAL_LEVEL) -> tuple[float, float]:
    """The Wilson score interval (two-sided ``level``) for a proportion of ``successes`` in
    ``n`` trials."""
    from scipy.stats import norm

    if n <= 0 or not 0 <= successes <= n or not 0 < level < 1:
        raise JaxawareError(f"a Wilson interval takes 0 <= successes <= n, n > 0 and a level "
                            f"in (0, 1); got successes={successes}, n={n}, level={level}")
    z = float(norm.ppf(0.5 + level / 2))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def bar_verdicts(result: dict) -> dict:
    """Per bar of ``result`` (an evaluation with intervals): ``met`` when every interval
    involved clears the bar, ``missed`` when one lies wholly below it, else ``within
    noise``. The Frechet bar has no interval: ``met`` or ``missed`` on its estimate."""
    def judge(intervals, threshold):
        intervals = [(lo, hi) for lo, hi in intervals if np.isfinite(lo) and np.isfinite(hi)]
        if all(lo >= threshold for lo, _ in intervals):
            return "met"
        if any(hi < threshold for _, hi in intervals):
            return "missed"
        return "within noise"

    rows = result["classes"]
    spread = [tuple(r[f"{f}_ratio_interval"]) for r in rows for f in FACTORS]
    return {
        "every_class_accuracy": judge([tuple(r["accuracy_interval"]) for r in rows],
                                      BARS["class_accuracy"]),
        "overall_accuracy": judge([tuple(result["accuracy_interval"])], BARS["accuracy"]),
        "diversity_every_class": judge(spread, BARS["diversity_ratio"]),
        "frechet_within_5x_floor": "met" if result["bars"]["frechet_within_5x_floor"]
        else "missed",
    }


def real_images(k: int, n: int, seed: int, resolution: int) -> np.ndarray:
    """``n`` rendered images of class ``k`` (indices ``k * n ...`` of ``seed``)."""
    images, _ = render(np.full(n, k, np.int64), seed=seed, start=k * n, resolution=resolution)
    return images


def evaluate_world_model(model, per_class: int = 200, truncation: float = 1.0, seed: int = 0,
                         real_seed: int = REAL_SEED, classifier=None, segmenter=None,
                         sheet_samples: int = 0, progress: bool = False,
                         bootstrap: int = 0) -> dict:
    """Accuracy, Frechet distance vs floor and diversity of ``model``'s samples per class.

    ``bootstrap``: draws for the spread ratios' intervals (0: no intervals or verdicts).

    With ``sheet_samples`` the result also holds ``"sheet"``: the first samples of each
    class and their segmenter maps (arrays, for :func:`jaxaware.toyworld.sheet_image`).
    """
    from jaxaware.toyworld import load_classifier, load_segmenter

    if isinstance(bootstrap, bool) or not isinstance(bootstrap, (int, np.integer)) \
            or bootstrap == 1 or bootstrap < 0:
        raise JaxawareError(f"bootstrap takes 0 (no intervals) or a number of draws >= 2; "
                            f"got {bootstrap!r}")
    clf = classifier if classifier is not None else load_classifier()
    seg = segmenter if segmenter is not None else load_segmenter()
    k, res = model.config.num_classes, model.config.resolution
    images, labels = sample(model, list(range(k)), truncation, seed, per_class,
                            batch_size=min(64, k * per_class), progress=progress)
    real = [[real_images(c, per_class, real_seed + r, res) for c in range(k)] for r in (0, 1)]
    names = [n if isinstance(n, str) else n[0] for n in (model.class_names or WORLD.class_names)]
    everything = np.concatenate([images, *real[0], *real[1]])
    feats = clf.features(everything)
    pred = np.argmax(clf.logits(everything), axis=-1)
    n = len(labels)
    real_feats = feats[n:].reshape(2, k, per_class, -1)
    real_pred = pred[n:].reshape(2, k, per_class)
    diversity = diversity_table({c: images[labels == c] for c in range(k)},
                                {c: real[0][c] for c in range(k)}, seg, bootstrap=bootstrap,
                                level=INTERVAL_LEVEL, seed=seed)
    rows = []
    for c in range(k):
        mine = labels == c
        row = {
            "class": c, "name": names[c],
            "accuracy": float(np.mean(pred[:n][mine] == c)),
            "real_accuracy": float(np.mean(real_pred[0, c] == c)),
            "frechet": frechet_distance(feats[:n][mine], real_feats[0, c]),
            "frechet_real_vs_real": frechet_distance(real_feats[1, c], real_feats[0, c]),
        }
        if bootstrap:
            row["accuracy_interval"] = list(wilson_interval(
                int(np.sum(pred[:n][mine] == c)), int(np.sum(mine))))
        row.update({key: v for key, v in diversity[c].items() if key != "class"})
        rows.append(row)
    mean_fd = float(np.mean([r["frechet"] for r in rows]))
    mean_floor = float(np.mean([r["frechet_real_vs_real"] for r in rows]))
    accuracy = float(np.mean(pred[:n] == labels))
    min_ratio = {f: float(np.nanmin([r[f"{f}_ratio"] for r in rows])) for f in FACTORS}
    bars = {
        "every_class_accuracy": all(r["accuracy"] >= BARS["class_accuracy"] for r in rows),
        "overall_accuracy": accuracy >= BARS["accuracy"],
        "diversity_every_class": all(v >= BARS["diversity_ratio"] for v in min_ratio.values()),
        "frechet_within_5x_floor": mean_fd <= BARS["frechet_over_floor"] * mean_floor,
    }
    result = {
        "model_id": model.model_id, "truncation": float(truncation), "per_class": int(per_class),
        "seed": int(seed), "real_seed": int(real_seed), "accuracy": accuracy,
        "mean_frechet": mean_fd, "mean_frechet_real_vs_real": mean_floor,
        "frechet_over_floor": mean_fd / mean_floor, "min_diversity_ratio": min_ratio,
        "bars": bars, "thresholds": BARS, "classes": rows,
    }
    if bootstrap:
        result["interval_level"] = INTERVAL_LEVEL
        result["bootstrap"] = int(bootstrap)
        result["accuracy_interval"] = list(wilson_interval(int(np.sum(pred[:n] == labels)), n))
        result["bar_verdicts"] = bar_verdicts(result)
    if sheet_samples:  # at most the samples each class has
        shown = min(int(sheet_samples), int(per_class))
        first = np.concatenate([images[labels == c][:shown] for c in range(k)])
        result["sheet"] = {"images": first, "part_maps": seg.predict(first), "samples": shown}
    return result


def format_table(result: dict) -> str:
    """The per-class table (accuracy, Frechet vs floor, diversity ratios) and the bars."""
    lines = [f"model {result['model_id']}  truncation {result['truncation']}  "
             f"{result['per_class']} samples per class",
             f"{'class':<11} {'acc':>6} {'real':>6} {'FD':>7} {'floor':>6} "
             f"{'centre':>7} {'area':>6} {'bg':>6}   (diversity: generated / real spread)"]
    for r in result["classes"]:
        lines.append(f"{r['name']:<11} {r['accuracy']:>6.1%} {r['real_accuracy']:>6.1%} "
                     f"{r['frechet']:>7.1f} {r['frechet_real_vs_real']:>6.1f} "
                     f"{r['centre_ratio']:>7.2f} {r['area_ratio']:>6.2f} "
                     f"{r['background_ratio']:>6.2f}")
    lines.append(f"{'all':<11} {result['accuracy']:>6.1%} {'':>6} {result['mean_frechet']:>7.1f} "
                 f"{result['mean_frechet_real_vs_real']:>6.1f}   FD / floor "
                 f"{result['frechet_over_floor']:.1f}")
    verdicts = result.get("bar_verdicts", {})
    level = result.get("interval_level")
    for name, ok in result["bars"].items():
        note = (f"  ({level:.0%} intervals: {verdicts[name]})" if name in verdicts
                and name != "frechet_within_5x_floor" else "")
        lines.append(f"  {name}: {'yes' if ok else 'NO'}{note}")
    if verdicts:
        lo, hi = result["accuracy_interval"]
        lines.append(f"  overall accuracy interval {lo:.1%}-{hi:.1%}; smallest spread ratios' "
                     f"intervals: " + ", ".join(
                         f"{f} {_lowest_interval(result, f)}" for f in FACTORS))
    return "\n".join(lines)


def _lowest_interval(result: dict, factor: str) -> str:
    """The class with the lowest ``factor`` ratio and its interval, as text."""
    rows = [r for r in result["classes"] if np.isfinite(r[f"{factor}_ratio"])]
    if not rows:
        return "n/a"
    row = min(rows, key=lambda r: r[f"{factor}_ratio"])
    lo, hi = row[f"{factor}_ratio_interval"]
    return f"{row['name']} {row[f'{factor}_ratio']:.2f} [{lo:.2f}, {hi:.2f}]"


def awareness_findings(model, awareness=None, ablation_latents: int = 32, seed: int = 0,
                       progress: bool = False) -> dict:
    """The three numbers the world models exist for, from the model's awareness:

    * ``overlap``: the mean overlap ``|S_i ∩ S_j| / k`` of the top-``k`` category-awareness
      channels of two classes (``k`` = 10% of a site's channels, at least 1), within
      families and between families, averaged over sites (per site too);
    * ``similarity``: the Spearman rank correlation, over class pairs, between the world's
      class similarity (``WORLD.similarity``) and the classes' awareness correlation (the
      Spearman correlation of their category-awareness vectors over all channels);
    * ``ablation``: at every site, the drop of the classifier's accuracy when a quarter of
      the site's channels is zeroed, the lowest-, a random and the highest-awareness
      quarter (mean over classes, ``ablation_latents`` syntheses each), and whether
      ``lowest < random < highest`` holds there.
    """
    from scipy.stats import spearmanr

    from jaxaware.analysis import ablation_groups, channel_overlap, family_means
    from jaxaware.awareness import compute_awareness
    from jaxaware.sites import site_table

    k = model.config.num_classes
    aw = awareness if awareness is not None else compute_awareness(
        model, list(range(k)), num_latents=1000, seed=seed)
    families = [WORLD.family_of(WORLD.class_names[c]) for c in range(k)]
    per_site = {}
    for s in aw.site_names:
        ov = channel_overlap(aw, sites=[s], fraction=0.10)
        per_site[s] = {"k": ov.k, **family_means(ov.matrix, families)}
    overlap = {key: float(np.mean([v[key] for v in per_site.values()]))
               for key in ("within_family", "between_family")}
    ranks = np.argsort(np.argsort(aw.category, axis=1), axis=1).astype(np.float64)
    corr = np.corrcoef(ranks)
    iu = np.triu_indices(k, 1)
    rho = float(spearmanr(np.asarray(WORLD.similarity)[iu], corr[iu])[0])
    sites = site_table(model.config)
    if progress:
        from tqdm.auto import tqdm

        sites = tqdm(sites, desc="ablation per site", unit="site")
    ablation = {}
    for s in sites:
        drops = {"lowest": [], "random": [], "highest": []}
        for c in range(k):
            summary = ablation_groups(model, None, c, [s.name], fraction=0.25,
                                      num_latents=ablation_latents, awareness=aw,
                                      seed=seed).summary()
            for g in drops:
                drops[g].append(summary["original"]["accuracy"] - summary[g]["accuracy"])
        mean = {g: float(np.mean(v)) for g, v in drops.items()}
        ablation[s.name] = {**mean, "ordered": mean["lowest"] < mean["random"] < mean["highest"]}
    return {
        "overlap": {**overlap, "per_site": per_site, "fraction": 0.10},
        "similarity": {"spearman": rho, "awareness_correlation": "Spearman of category rows"},
        "ablation": {"per_site": ablation, "latents": int(ablation_latents),
                     "ordered_at_every_site": all(v["ordered"] for v in ablation.values())},
        "num_latents": int(aw.num_latents), "seed": int(aw.seed),
    }
