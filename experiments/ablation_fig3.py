"""Fig. 3 of He et al.: zero the lowest-, random- and highest-awareness channels of a class.

    python experiments/ablation_fig3.py                 # the shipped world model -> docs/
    python experiments/ablation_fig3.py WEIGHTS --classifier FILE.py:NAME --classes 1,2 \
        --out-dir runs/x
    python experiments/ablation_fig3.py --quick --out-dir /tmp/smoke

The paper zeroes "a proportion" of channels at an unstated layer; our defaults: a quarter
of the channels of L0 (``sites``), and the same at every CCBN site at once
(``sites_variant``) for comparison. The figure shows ``CONFIG['classes']``; the JSON
holds, per class and variant, the classifier's probability of the class, its accuracy and
the mean absolute pixel change of each group.
"""

from __future__ import annotations

import sys

from jaxaware.analysis import ablation_groups
from jaxaware.analysis.experiment import setup
from jaxaware.analysis.figures import ablation_figure

CONFIG = {
    "classes": ["cat", "car", "appletree", "house"],  # one per world family (or --classes)
    "sites": "L0",
    "sites_variant": None,  # None: every CCBN site at once
    "fraction": 0.25,
    "num_latents": 64,
    "awareness_latents": 1000,
    "truncation": 1.0,
    "seed": 0,
    "rows_per_class": 2,
}
QUICK = {"classes": ["cat"], "num_latents": 2, "awareness_latents": 64, "rows_per_class": 1,
         "sites_variant": None}


def main(argv=None) -> dict:
    run = setup("ablation", __doc__, CONFIG, QUICK, argv)
    cfg, model = run.config, run.model
    classes = run.classes("classes")
    aw = run.awareness(classes)
    results, table = [], {}
    for variant in ("sites", "sites_variant"):
        for k in classes:
            r = ablation_groups(model, run.classifier, k, cfg[variant],
                                fraction=cfg["fraction"], num_latents=cfg["num_latents"],
                                awareness=aw, truncation=cfg["truncation"], seed=cfg["seed"])
            name = run.class_names[k]
            table.setdefault(variant, {})[name] = r.summary()
            if variant == "sites":
                results.append(r)
            print(f"{variant:13s} {name:10s} " + "  ".join(
                f"{g} p={s['prob']:.3f} acc={s['accuracy']:.0%} dpx={s['pixel_change']:.3f}"
                for g, s in r.summary().items()))
    return run.save(lambda p: ablation_figure(results, p, run.class_names,
                                              cfg["rows_per_class"]),
                    {"summary": table, "sites": {v: cfg[v] or "all" for v in
                                                 ("sites", "sites_variant")}})


if __name__ == "__main__":
    main(sys.argv[1:])
