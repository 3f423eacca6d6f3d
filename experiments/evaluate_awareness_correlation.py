"""Fig. 10 and Fig. 11 of the paper on a generator: does total channel awareness track
per-class precision, recall, MS-SSIM and Frechet distance?

    python experiments/evaluate_awareness_correlation.py                      # default model
    python experiments/evaluate_awareness_correlation.py WEIGHTS --out-prefix runs/eval/w
    python experiments/evaluate_awareness_correlation.py --quick --out-prefix /tmp/q

Runs :func:`jaxaware.evaluation.evaluate` (every class; 200 real and 200 generated images
per (truncation, class) point; truncations 0.25, 0.5, 0.75 and 1.0, each pair one point;
MS-SSIM over the distinct pairs of 100 generated images; awareness from 1000 latents; seed
0; for toy-world models the world classifier's features and world renders of seed 12000),
prints the points and the correlation table beside the paper's, and writes
``PREFIX.json``, ``PREFIX_top_bottom.png`` (Fig. 10) and ``PREFIX_metrics.png`` (Fig. 11).
Nothing is tuned: the settings above are App. B's where the toy world allows them.

It also asks whether the x axis itself is reproducible: total awareness at each truncation
from ``--awareness-seeds`` (default 5) latent seeds, and the Spearman correlation of the
class ranking between every two seeds (mean, min, max; in the JSON as
``awareness_seed_stability``). ``E_z[-beta/gamma]`` has no finite mean when ``gamma`` can
reach 0, so a single latent can decide a class's total.

``--quick`` (for the test suite): four classes, 6 images per point, truncations 0.5 and
1.0, MS-SSIM on 6 images, awareness from 16 latents; seconds, not minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import scipy.stats

from jaxaware.errors import JaxawareError


def awareness_stability(model, classes, truncations, seeds: int, latents: int) -> dict:
    """``{truncation: {"mean", "min", "max", "seeds"}}``: Spearman correlations of the total
    awareness of ``classes`` between every two of the latent seeds ``0 .. seeds - 1``
    (``{}`` with fewer than 2 seeds or classes)."""
    from jaxaware.awareness import compute_awareness
    from jaxaware.metrics import total_awareness

    if seeds < 2 or len(classes) < 3:
        return {}
    out = {}
    for t in truncations:
        totals = [total_awareness(compute_awareness(model, classes, latents, t, s))
                  for s in range(seeds)]
        rho = [float(scipy.stats.spearmanr(totals[i], totals[j]).statistic)
               for i in range(seeds) for j in range(i + 1, seeds)]
        out[f"{t:g}"] = {"mean": float(np.mean(rho)), "min": min(rho), "max": max(rho),
                         "seeds": seeds}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights", nargs="?", default=None,
                    help="weights directory (default: the shipped toy-world model)")
    ap.add_argument("--classes", default="all")
    ap.add_argument("--per-class", type=int, default=200)
    ap.add_argument("--truncation", default="0.25,0.5,0.75,1.0")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ms-ssim-images", type=int, default=100)
    ap.add_argument("--awareness-latents", type=int, default=1000)
    ap.add_argument("--features", default=None, metavar="FILE.py:NAME")
    ap.add_argument("--real", default=None, metavar="DIR")
    ap.add_argument("--out-prefix", default="runs/evaluation/evaluation",
                    help="writes PREFIX.json, PREFIX_top_bottom.png, PREFIX_metrics.png")
    ap.add_argument("--awareness-seeds", type=int, default=5,
                    help="latent seeds of the awareness-reproducibility check (0: skip)")
    ap.add_argument("--quick", action="store_true", help="a small run for the tests")
    args = ap.parse_args(argv)
    if args.quick:
        args.classes, args.per_class, args.truncation = "0,1,2,3", 6, "0.5,1.0"
        args.ms_ssim_images, args.awareness_latents, args.awareness_seeds = 6, 16, 2

    from jaxaware.atomic import atomic_write, check_output_path, check_outputs_distinct
    from jaxaware.evaluation import (evaluate, figure_paths, format_points, metrics_figure,
                                     top_bottom_figure)
    from jaxaware.model import load
    from jaxaware.user_functions import load_function

    start = time.perf_counter()
    try:
        json_path = args.out_prefix + ".json"
        fig10, fig11 = figure_paths(args.out_prefix)
        outputs = [("json", json_path), ("fig10", fig10), ("fig11", fig11)]
        for _, path in outputs:
            check_output_path(path)
        check_outputs_distinct(outputs)
        features = load_function(args.features, "--features") if args.features else None
        model = load(args.weights)
        ev = evaluate(model, args.classes, per_class=args.per_class,
                      truncation=args.truncation, seed=args.seed, features=features,
                      real=args.real, ms_ssim_images=args.ms_ssim_images,
                      awareness_latents=args.awareness_latents, progress=not args.quick)
        ev.settings["weights"] = args.weights or "default"
        stability = awareness_stability(model, ev.settings["classes"],
                                        ev.settings["truncations"], args.awareness_seeds,
                                        args.awareness_latents)
        ev.settings["seconds"] = round(time.perf_counter() - start, 1)
        top_bottom_figure(ev, fig10)
        metrics_figure(ev, fig11)
        doc = ev.as_dict()
        doc["awareness_seed_stability"] = stability
        with atomic_write(json_path) as f:
            f.write((json.dumps(doc, indent=2, allow_nan=False) + "\n").encode())
    except JaxawareError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_points(ev))
    print()
    print(ev.table())
    if stability:
        print(f"\nclass ranking by total awareness, Spearman between {args.awareness_seeds} "
              f"latent seeds ({args.awareness_latents} latents each):")
        for t, v in stability.items():
            print(f"  truncation {t}: mean {v['mean']:+.2f}, min {v['min']:+.2f}, "
                  f"max {v['max']:+.2f}")
    print(f"\n{len(ev.points)} points in {ev.settings['seconds']:.0f} s; wrote {json_path}, "
          f"{fig10}, {fig11}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
