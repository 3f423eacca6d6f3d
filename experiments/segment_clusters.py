"""Awareness-weighted K-Means segmentation on a model (He et al., Sec. 4.3, Fig. 9), scored.

    python experiments/segment_clusters.py                    # the default toy-world model
    python experiments/segment_clusters.py WEIGHTS --out-dir runs/applications/mine
    python experiments/segment_clusters.py --quick            # a smoke run (seconds)
    python experiments/segment_clusters.py --bench            # K-Means: jax vs scikit-learn

``--per-class`` images of every class (the same latents for every class) are segmented for
every layer set (all CCBN sites, the second half) x weighting (none, awareness) x k. On a
toy-world model with the reference part segmenter, each segmentation is scored: mIoU after
greedy many-to-one and Hungarian one-to-one assignment of clusters to parts, and the
adjusted Rand index. Writes ``applications_segment.png`` (Fig. 9) and
``applications_segment.json`` to ``--out-dir`` and prints the tables (markdown).

``--bench`` clusters the same features (16 images, all layers, k = 5, 3 restarts) with both
K-Means back ends (scikit-learn also limited to one thread), the best of 5 interleaved
runs after the jitted one compiled, and reports seconds per image and the inertia of the jitted one
relative to scikit-learn's (below 1: lower, i.e. better).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from jaxaware.applications import add_experiment_arguments, experiment_out_dir, latents, write_json
from jaxaware.applications.segmentation import (
    LAYER_SETS,
    WEIGHTINGS,
    layer_set,
    pixel_features,
    segment_report,
    segmentation_figure,
)
from jaxaware.errors import JaxawareError
from jaxaware.model import load

FIGURE_CLASSES = ("cat", "bus", "sunflower", "castle", "bear", "truck")


def table(payload: dict) -> str:
    """Markdown: a row per (layers, k), unweighted vs weighted side by side."""
    rows = {(r["layers"], r["k"], r["weighting"]): r for r in payload["scores"]}
    lines = ["| layers | k | mIoU greedy: w/o | with awareness | mIoU Hungarian: w/o | "
             "with awareness | ARI: w/o | with awareness |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for layer in payload["layers"]:
        for k in payload["ks"]:
            a, b = rows.get((layer, k, "none")), rows.get((layer, k, "awareness"))
            if a is None or b is None:
                continue
            cells = []
            for m in ("miou_greedy", "miou_hungarian", "ari"):
                cells += [f"{a[m]:.3f}", f"{b[m]:.3f}"]
            lines.append(f"| {layer} | {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def class_table(payload: dict, layer: str = "all", k: int = 5) -> str:
    """Markdown: Hungarian mIoU per class for one layer set and k, w/o vs with awareness."""
    rows = {(r["layers"], r["k"], r["weighting"]): r for r in payload["scores"]}
    a, b = rows.get((layer, k, "none")), rows.get((layer, k, "awareness"))
    if a is None or b is None:
        return ""
    lines = [f"| class | mIoU Hungarian ({layer}, k={k}): w/o | with awareness | ARI: w/o | "
             "with awareness |", "| --- | --- | --- | --- | --- |"]
    for name in payload["class_names"]:
        x, y = a["per_class"][name], b["per_class"][name]
        lines.append(f"| {name} | {x['miou_hungarian']:.3f} | {y['miou_hungarian']:.3f} | "
                     f"{x['ari']:.3f} | {y['ari']:.3f} |")
    return "\n".join(lines)


def bench(model, images: int = 16, k: int = 5, n_init: int = 3, seed: int = 0,
          repeats: int = 5) -> dict:
    """Seconds per image of both K-Means back ends on the same features (the jitted one
    compiled first; the best of ``repeats`` interleaved runs, as the machine is shared) and
    the inertia ratio jax / scikit-learn."""
    from jaxaware.applications.clustering import kmeans, kmeans_sklearn

    z = latents(model, images, 1.0, seed)
    y = np.arange(images) % model.config.num_classes
    _, feats = pixel_features(model, z, y, layer_set(model.config, "all"))
    x = feats.reshape(images, -1, feats.shape[-1])
    out = {"images": images, "pixels": x.shape[1], "features": x.shape[2], "k": k,
           "n_init": n_init, "repeats": repeats}
    inertia, times = {}, {"jax": [], "sklearn_1thread": [], "sklearn": []}
    t0 = time.perf_counter()
    kmeans(x, k, n_init=n_init, backend="jax")  # compiles
    out["jax_compile_s"] = time.perf_counter() - t0
    runs = {"jax": lambda: kmeans(x, k, n_init=n_init, seed=seed, backend="jax"),
            "sklearn_1thread": lambda: kmeans(x, k, n_init=n_init, seed=seed,
                                              backend="sklearn"),
            "sklearn": lambda: kmeans_sklearn(x, k, n_init=n_init, seed=seed, threads=None)}
    for _ in range(repeats):  # interleaved, so a busy spell of the machine hits all alike
        for name, run in runs.items():
            t0 = time.perf_counter()
            _, inertia[name] = run()
            times[name].append(time.perf_counter() - t0)
    for name, ts in times.items():
        out[f"{name}_s_per_image"] = min(ts) / images
    out["inertia_ratio_jax_over_sklearn"] = float(np.mean(inertia["jax"]
                                                          / inertia["sklearn_1thread"]))
    out["speedup_jax"] = min(out["sklearn_s_per_image"],
                             out["sklearn_1thread_s_per_image"]) / out["jax_s_per_image"]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_experiment_arguments(ap)
    ap.add_argument("--classes", default="all")
    ap.add_argument("--per-class", type=int, default=4)
    ap.add_argument("--k", default="3,5,8")
    ap.add_argument("--segmenter", default=None, help="a part segmenter .npz (default: the "
                    "shipped one)")
    ap.add_argument("--quick", action="store_true", help="2 classes, 1 image, k = 3, all")
    ap.add_argument("--bench", action="store_true", help="also time both K-Means back ends")
    args = ap.parse_args(argv)
    try:
        model = load(args.weights)
        segmenter = None
        if args.segmenter:
            from jaxaware.toyworld import load_segmenter

            segmenter = load_segmenter(args.segmenter)
        classes, per_class = args.classes, args.per_class
        ks = [int(k) for k in args.k.split(",")]
        layers, weightings = LAYER_SETS, WEIGHTINGS
        if args.quick:
            classes, per_class, ks, layers = "0,1", 1, [3], ("all",)
        out_dir = experiment_out_dir(args, model)
        seg, parts, payload = segment_report(
            model, classes, per_class=per_class, ks=ks, layers=layers, weightings=weightings,
            truncation=args.truncation, seed=args.seed, segmenter=segmenter)
        if args.bench:
            payload["bench"] = bench(model)
        payload["command"] = " ".join(["python", "experiments/segment_clusters.py"]
                                      + list(argv if argv is not None else sys.argv[1:]))
        names = payload["class_names"]
        rows = [i for i in range(len(seg.images))
                if names[payload["classes"].index(int(seg.classes[i]))] in FIGURE_CLASSES
                and i % per_class == 0] or list(range(min(4, len(seg.images))))
        shown_keys = [key for key in seg.labels if key[2] in (3, 5)] or list(seg.labels)
        from jaxaware.applications.segmentation import Segmentation

        shown = Segmentation(seg.images[rows], seg.classes[rows],
                             {key: seg.labels[key][rows] for key in shown_keys}, seg.seconds,
                             seg.resolution, seg.backend)
        figure = os.path.join(out_dir, "applications_segment.png")
        segmentation_figure(shown, figure, model, None if parts is None else parts[rows],
                            max_rows=len(rows))
        write_json(os.path.join(out_dir, "applications_segment.json"), payload)
    except JaxawareError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if payload["scores"]:
        print(table(payload))
        print()
        print(class_table(payload, "all", 5 if 5 in ks else ks[0]))
    else:
        print(f"no scores: {payload['notes']}")
    if "bench" in payload:
        b = payload["bench"]
        print(f"\nK-Means, {b['images']} images x {b['pixels']} pixels x {b['features']} "
              f"features, k={b['k']}, {b['n_init']} restarts, best of {b['repeats']}: jax "
              f"{b['jax_s_per_image']:.3f} "
              f"s/image, scikit-learn {b['sklearn_1thread_s_per_image']:.3f} s/image on one "
              f"thread (the backend), {b['sklearn_s_per_image']:.3f} with its default "
              f"threads; jax {b['speedup_jax']:.2f}x the speed of the faster; inertia jax/sklearn "
              f"{b['inertia_ratio_jax_over_sklearn']:.4f}")
    print(f"\nwrote {figure} and {os.path.join(out_dir, 'applications_segment.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
