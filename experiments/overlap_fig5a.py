"""Fig. 5a of He et al.: overlap of the top-k category-awareness channels between classes.

    python experiments/overlap_fig5a.py                 # the shipped world model -> docs/
    python experiments/overlap_fig5a.py WEIGHTS --classes 1,2,3 --out-dir runs/x
    python experiments/overlap_fig5a.py --quick --out-dir /tmp/smoke

The paper: k = 100 channels (of an unstated layer); similar classes share channels
(blocks along the diagonal), unrelated ones almost none. Ours: every CCBN site with the
paper's share of channels (100/1536 of each site, at least 1), and ``L0`` alone beside it.
On a world model: mean overlap within and between the world's families, the chance level
(random sets), and the correlation of the overlap with the world's class similarity.
"""

from __future__ import annotations

import sys

import numpy as np

from jaxaware.analysis import channel_overlap, pearson
from jaxaware.analysis.experiment import setup
from jaxaware.analysis.figures import overlap_figure

CONFIG = {
    "classes": None,  # None: every class
    "variants": {"all_sites": None, "L0": "L0"},  # figure: the first
    "k": None,  # None: the paper's share of each site
    "awareness_latents": 1000,
    "truncation": 1.0,
    "seed": 0,
}
QUICK = {"awareness_latents": 64}


def main(argv=None) -> dict:
    run = setup("overlap", __doc__, CONFIG, QUICK, argv)
    cfg, model = run.config, run.model
    classes = run.classes("classes")
    aw = run.awareness(classes)
    fams = run.families(classes)
    out, first = {}, None
    for label, sites in cfg["variants"].items():
        r = channel_overlap(aw, sites, cfg["k"], model=model)
        first = first or r
        d = r.to_json([run.class_names[k] for k in classes], fams)
        if fams is not None:
            from jaxaware.toyworld import WORLD

            sim = np.asarray(WORLD.similarity)[np.ix_(classes, classes)]
            off = ~np.eye(len(classes), dtype=bool)
            d["pearson_with_world_similarity"] = pearson(r.matrix[off], sim[off])
            print(f"{label}: top {r.k} channels; within family {d['within_family']:.3f}, "
                  f"between {d['between_family']:.3f}, chance {r.chance:.3f}; Pearson with "
                  f"the world's similarity {d['pearson_with_world_similarity']:.3f}")
        else:
            print(f"{label}: top {r.k} channels; chance {r.chance:.3f}")
        out[label] = d
    return run.save(lambda p: overlap_figure(first, p, run.class_names, fams), out)


if __name__ == "__main__":
    main(sys.argv[1:])
