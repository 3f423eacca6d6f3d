"""Fig. 4 and App. A of He et al.: channel-classifier response vs category awareness.

    python experiments/response_fig4.py                 # the shipped world model -> docs/
    python experiments/response_fig4.py WEIGHTS --classifier FILE.py:NAME --out-dir runs/x
    python experiments/response_fig4.py --quick --out-dir /tmp/smoke

For every class: zero each channel of ``site`` (Fig. 4, ``group = 1``) and each group of
``appendix_group`` channels consecutive in awareness order (App. A; the paper's 5 does not
divide the world model's 128 channels, nor BigGAN-deep's 2,048, so we take 4) over ``M``
latent pairs, smooth the responses (Savitzky-Golay) and correlate them with awareness.
The paper's mean Pearson correlations: 0.503 (BigGAN, single channels) and 0.603
(BigGAN-deep, groups of 5). The first-order estimate of the same responses is compared
with the exact sweep (Spearman rank correlation of the raw drops, per class) and timed,
and used to scan every site (``scan_sites``; first order only, our addition).
"""

from __future__ import annotations

import sys

import numpy as np

from jaxaware.analysis import response_correlation, scan_sites, spearman
from jaxaware.analysis.experiment import setup
from jaxaware.analysis.figures import response_figure

CONFIG = {
    "classes": None,  # None: every class
    "site": "L0",
    "appendix_group": 4,
    "num_latents": 100,
    "awareness_latents": 1000,
    "truncation": 1.0,
    "seed": 0,
    "polyorder": 2,
    "score": "prob",
    "first_order": True,
    "scan_sites": True,  # the first-order Fig. 4 at every site (not in the paper)
}
QUICK = {"classes": [0, 1], "num_latents": 2, "awareness_latents": 64,
         "first_order": False, "scan_sites": False}


def main(argv=None) -> dict:
    run = setup("response", __doc__, CONFIG, QUICK, argv)
    cfg, model = run.config, run.model
    classes = run.classes("classes")
    aw = run.awareness(classes)
    common = dict(num_latents=cfg["num_latents"], awareness=aw, truncation=cfg["truncation"],
                  seed=cfg["seed"], polyorder=cfg["polyorder"], score=cfg["score"],
                  progress=not run.quick)
    results, out = {}, {}
    for label, group in (("fig4", 1), ("appendix", cfg["appendix_group"])):
        r = response_correlation(model, run.classifier, classes, cfg["site"], group=group,
                                 **common)
        results[label] = r
        out[label] = r.to_json([run.class_names[k] for k in classes])
        print(f"{label}: {r.site} g={group}, {len(classes)} classes, M={r.num_latents}, window "
              f"{r.window}: mean Pearson {r.mean_pearson:.3f}, Spearman {r.mean_spearman:.3f}, "
              f"unsmoothed Pearson {out[label]['mean_pearson_raw']:.3f} ({r.seconds:.0f} s)")
    if cfg["first_order"]:
        for label in ("fig4", "appendix"):
            group = results[label].group
            fo = response_correlation(model, run.classifier, classes, cfg["site"], group=group,
                                      method="first-order", **common)
            rho = [spearman(a, b) for a, b in zip(fo.drop, results[label].drop)]
            out[label]["first_order"] = {
                "mean_pearson": fo.mean_pearson, "mean_spearman": fo.mean_spearman,
                "spearman_with_exact": rho, "mean_spearman_with_exact": float(np.nanmean(rho)),
                "seconds": fo.seconds, "seconds_exact": results[label].seconds}
            print(f"  first order ({label}): mean Pearson with awareness {fo.mean_pearson:.3f}; "
                  f"Spearman with the exact drops {np.nanmean(rho):.3f} per class; "
                  f"{fo.seconds:.1f} s vs {results[label].seconds:.1f} s exact")
    if cfg["scan_sites"]:
        scan = scan_sites(model, run.classifier, classes, None, **common)
        out["first_order_scan"] = scan.to_json()
        print("first-order scan, mean Pearson per site: " + ", ".join(
            f"{s.split('.')[0][5:]}.{s.split('.')[1]} {p:.2f}"
            for s, p in zip(scan.sites, out["first_order_scan"]["mean_pearson"])))
    out["paper"] = {"biggan_mean_pearson": 0.503, "biggan_deep_mean_pearson": 0.603}
    return run.save(lambda p: response_figure(results["fig4"], p, run.class_names), out)


if __name__ == "__main__":
    main(sys.argv[1:])
