"""Fig. 5b of He et al.: a channel found for a source class, edited in other classes.

    python experiments/transfer_fig5b.py                # the shipped world model -> docs/
    python experiments/transfer_fig5b.py WEIGHTS --classifier FILE.py:NAME --classes 1,2
    python experiments/transfer_fig5b.py --quick --out-dir /tmp/smoke

For each source (``sources``; ``--classes`` replaces them) its highest-awareness channel
at ``site`` is edited in syntheses of every class, with each op in ``ops`` (``add``:
``strength`` times the channel's RMS on the source; ``multiply``: by ``1 + strength``).
The paper: the edit changes similar classes and leaves unrelated ones alone. On a world
model we report, per source and op, the mean pixel change and the fall of each target's
own class probability on same-family vs other-family targets. The figure: the first
source and op.
"""

from __future__ import annotations

import sys

from jaxaware.analysis import channel_transfer
from jaxaware.analysis.experiment import setup
from jaxaware.analysis.figures import transfer_figure

CONFIG = {
    "sources": ["cat", "car", "appletree", "house"],  # one per world family
    "targets": None,  # None: every class
    "site": "L0",
    "ops": {"add": 3.0, "multiply": 3.0},  # op: strength
    "num_latents": 16,
    "awareness_latents": 1000,
    "truncation": 1.0,
    "seed": 0,
}
QUICK = {"sources": ["cat"], "targets": None, "ops": {"add": 3.0},
         "num_latents": 2, "awareness_latents": 64}


def main(argv=None) -> dict:
    run = setup("transfer", __doc__, CONFIG, QUICK, argv)
    cfg, model = run.config, run.model
    sources = run.classes("sources")
    aw = run.awareness(sources)
    fams = run.families()
    out, first = {}, None
    for src in sources:
        for op, strength in cfg["ops"].items():
            r = channel_transfer(model, run.classifier, src, cfg["targets"], cfg["site"], op=op,
                                 strength=strength, num_latents=cfg["num_latents"],
                                 awareness=aw, truncation=cfg["truncation"], seed=cfg["seed"])
            first = first or r
            d = r.to_json([run.class_names[k] for k in r.targets], fams)
            out[f"{run.class_names[src]}/{op}"] = d
            line = f"{run.class_names[src]:10s} {op:8s} channel {r.channel:3d}:"
            for group, s in d.get("summary", {}).items():
                if s["targets"]:
                    line += (f"  {group} dpx {s['pixel_change']:.4f} "
                             f"drop {s['target_drop']:+.4f}")
            print(line)
    return run.save(lambda p: transfer_figure(first, p, run.class_names), out)


if __name__ == "__main__":
    main(sys.argv[1:])
