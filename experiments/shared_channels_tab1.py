"""Tab. 1 of He et al.: channels in the top k of every class, per site and criterion.

    python experiments/shared_channels_tab1.py          # the shipped world model -> docs/
    python experiments/shared_channels_tab1.py WEIGHTS --out-dir runs/x
    python experiments/shared_channels_tab1.py --quick --out-dir /tmp/smoke

The paper (k = 10, 1,000 classes, BigGAN L0-L11): nothing survives the intersection under
highest or lowest category awareness; 0-5 channels per layer under highest latent
awareness (3 3 3 1 3 3 0 4 2 1 5 4). Sites with at most k channels are skipped; the JSON
also gives the count expected if every class drew its k channels at random.
"""

from __future__ import annotations

import sys

from jaxaware.analysis import shared_channels
from jaxaware.analysis.experiment import setup
from jaxaware.analysis.figures import shared_figure
from jaxaware.analysis.shared import PAPER_TABLE

CONFIG = {
    "classes": None,  # None: every class
    "k": 10,
    "awareness_latents": 1000,
    "truncation": 1.0,
    "seed": 0,
}
QUICK = {"awareness_latents": 64}


def main(argv=None) -> dict:
    run = setup("shared", __doc__, CONFIG, QUICK, argv)
    cfg, model = run.config, run.model
    classes = run.classes("classes")
    aw = run.awareness(classes)
    r = shared_channels(aw, cfg["k"], model=model)
    print(r.table())
    if r.skipped:
        print(f"skipped (at most k={r.k} channels): {', '.join(r.skipped)}")
    out = r.to_json([run.class_names[k] for k in classes])
    out["paper"] = PAPER_TABLE
    return run.save(lambda p: shared_figure(r, p), out)


if __name__ == "__main__":
    main(sys.argv[1:])
