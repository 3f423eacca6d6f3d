"""Category hybridization on a model (He et al., Sec. 4.2, Fig. 8, 15), scored.

    python experiments/hybridize_classes.py                   # the default toy-world model
    python experiments/hybridize_classes.py WEIGHTS --out-dir runs/applications/mine
    python experiments/hybridize_classes.py --quick           # a smoke run (seconds)

Figure (``applications_hybridize.png``, Fig. 8): for a few class pairs, the input, the
reference, style mixing and channel mixing at ``--figure-site`` with a quarter and half of
its channels. Scores (toy-world models only; ``applications_hybridize.json``): every ordered
pair of distinct classes x ``--per-pair`` latents, style mixing and channel mixing at every
site of :func:`jaxaware.applications.hybrid_measures.default_sites` and every share of its
channels; printed as markdown tables.
"""

from __future__ import annotations

import argparse
import os
import sys

from jaxaware.applications import (add_experiment_arguments, class_names, experiment_out_dir,
                                   latents, world_references, write_json)
from jaxaware.applications.hybrid_measures import DEFAULT_SHARES, all_pairs, hybrid_report
from jaxaware.applications.hybridization import hybrid_figure, hybridize
from jaxaware.errors import JaxawareError
from jaxaware.model import load

#: Pairs in the figure (input, reference), across the toy world's families.
FIGURE_PAIRS = (("cat", "car"), ("bunny", "sunflower"), ("truck", "house"),
                ("pine", "castle"), ("boat", "bear"))


def table(report: dict) -> str:
    """Markdown: a row per (site, method, k) with the hybrid scores."""
    lines = ["| site | method | k | mass on the two | reference share | evenness | "
             "plausible |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for name in ("input", "reference"):
        r = report[name]
        lines.append(f"| ({name} synthesis) | | | {r['mass']:.3f} | "
                     f"{r['reference_share']:.3f} | {r['evenness']:.3f} | "
                     f"{100 * r['plausible']:.1f}% |")
    for r in report["rows"]:
        how = f"style mixing from block {r['style_from']}" if r["method"] == "style" \
            else "channel mixing"
        lines.append(f"| {r['site']} | {how} | {r['k']} | {r['mass']:.3f} | "
                     f"{r['reference_share']:.3f} | {r['evenness']:.3f} | "
                     f"{100 * r['plausible']:.1f}% |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_experiment_arguments(ap)
    ap.add_argument("--per-pair", type=int, default=2, help="latents per class pair")
    ap.add_argument("--figure-site", default=None, help="default: the middle block's input "
                    "(the output of block n_blocks // 2 - 1)")
    ap.add_argument("--figure-pairs", default=None,
                    help="INPUT:REFERENCE,... (default: pairs across the world's families)")
    ap.add_argument("--quick", action="store_true", help="2 pairs, 1 latent, 1 site")
    args = ap.parse_args(argv)
    try:
        model = load(args.weights)
        cfg = model.config
        out_dir = experiment_out_dir(args, model)
        site = args.figure_site or f"block{max(cfg.n_blocks // 2 - 1, 0)}.out"
        names = class_names(model)
        if args.figure_pairs:
            pairs = [tuple(p.split(":")) for p in args.figure_pairs.split(",")]
        else:
            pairs = [p for p in FIGURE_PAIRS if p[0] in names and p[1] in names] or \
                [(0, 1), (1, 0)]
        if args.quick:
            pairs = pairs[:2]
        per_fig = 1 if args.quick else 2
        z = latents(model, per_fig, args.truncation, args.seed)
        width = min(s.channels for s in _sites(cfg, site))
        ks = tuple(dict.fromkeys((max(1, width // 4), max(1, width // 2))))
        shown = [hybridize(model, a, b, z, site, ks, truncation=args.truncation)
                 for a, b in pairs]
        figure = os.path.join(out_dir, "applications_hybridize.png")
        hybrid_figure(_stack(shown), figure, model, max_rows=len(pairs) * per_fig)
        payload = {"figure": {"site": site, "pairs": [list(map(str, p)) for p in pairs]}}
        clf, _, notes = world_references(model)
        if clf is not None:
            quick = dict(sites=[site], shares=(0.5, 1.0), per_pair=1) if args.quick else \
                dict(shares=DEFAULT_SHARES, per_pair=args.per_pair)
            report = hybrid_report(model, all_pairs(model) if not args.quick else pairs,
                                   truncation=args.truncation, seed=args.seed,
                                   classifier=clf, progress=not args.quick, **quick)
            payload.update(report)
        else:
            payload["notes"] = notes
        payload["command"] = " ".join(["python", "experiments/hybridize_classes.py"]
                                      + list(argv if argv is not None else sys.argv[1:]))
        write_json(os.path.join(out_dir, "applications_hybridize.json"), payload)
    except JaxawareError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if "rows" in payload:
        print(table(payload))
    else:
        print(f"no scores: {payload['notes']}")
    print(f"\nwrote {figure} and {os.path.join(out_dir, 'applications_hybridize.json')}")
    return 0


def _sites(config, site):
    from jaxaware.sites import resolve_site

    return [resolve_site(config, s) for s in site.split(",")]


def _stack(hybrids):
    """One :class:`Hybrids` of several (same site and k), rows one after another."""
    import numpy as np

    from jaxaware.applications.hybridization import Hybrids

    first = hybrids[0]
    cat = lambda key: np.concatenate([getattr(h, key) for h in hybrids])  # noqa: E731
    ks = list(first.channel)
    return Hybrids(cat("input"), cat("reference"), cat("style"),
                   {k: np.concatenate([h.channel[k] for h in hybrids]) for k in ks},
                   first.channels, cat("input_class"), cat("reference_class"), first.sites,
                   first.style_from, cat("latents"), first.truncation)


if __name__ == "__main__":
    sys.exit(main())
