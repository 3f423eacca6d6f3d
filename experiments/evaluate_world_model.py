"""Evaluate a toy-world generator: accuracy, Frechet distance vs the floor, diversity.

    python experiments/evaluate_world_model.py toyworld-biggan
    python experiments/evaluate_world_model.py runs/toyworld-biggan/model --per-class 200 \
        --out eval.json --sheet sheet.png

Prints the per-class table of :mod:`jaxaware.toyworld.quality` (the reference classifier's
accuracy on samples at the given truncation, the Frechet distance to rendered world images
in its 128-d features next to the real-vs-real floor, and the spreads of object centre,
object area and background colour of samples relative to real renders, all read with the
reference segmenter) with the world-models issue's bars, and how far this evaluation's own
sampling may move them (90% intervals and a verdict per bar: met, missed, or within noise),
and writes the JSON and a sample sheet (samples of every class beside the segmenter's part
maps of them).
"""

from __future__ import annotations

import argparse
import json
import sys

from jaxaware.atomic import atomic_write
from jaxaware.errors import JaxawareError
from jaxaware.model import load
from jaxaware.toyworld.quality import REAL_SEED, evaluate_world_model, format_table
from jaxaware.toyworld.sheet import sheet_image


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights", nargs="?", default=None,
                    help="weights directory or shipped model name (default: the default model)")
    ap.add_argument("--per-class", type=int, default=200)
    ap.add_argument("--truncation", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0, help="latent seed")
    ap.add_argument("--real-seed", type=int, default=REAL_SEED, help="world seed of real images")
    ap.add_argument("--out", default=None, help="JSON output path")
    ap.add_argument("--sheet", default=None, help="PNG sample sheet with part maps")
    ap.add_argument("--sheet-samples", type=int, default=6)
    ap.add_argument("--zoom", type=int, default=2)
    ap.add_argument("--bootstrap", type=int, default=1000,
                    help="draws for the 90%% intervals of the spread ratios (with Wilson "
                    "intervals for the accuracies and a verdict per bar); 0: none")
    ap.add_argument("--findings", action="store_true",
                    help="also the awareness findings: family overlap, similarity correlation, "
                    "ablation ordering at every site")
    ap.add_argument("--checkpoint", action="store_true",
                    help="WEIGHTS is a training run directory: evaluate its latest checkpoint")
    ap.add_argument("--raw", action="store_true",
                    help="with --checkpoint: the trained generator itself, not its EMA")
    args = ap.parse_args(argv)
    if args.raw and not args.checkpoint:
        print("error: --raw takes a training run directory: give --checkpoint too "
              "(a shipped model holds only the EMA generator)", file=sys.stderr)
        return 2
    try:
        if args.checkpoint:
            from jaxaware.train.trainer import model_from_checkpoint

            model = model_from_checkpoint(args.weights, standing_batches=2,
                                          use_ema=not args.raw)
        else:
            model = load(args.weights)
        result = evaluate_world_model(model, args.per_class, args.truncation, args.seed,
                                      args.real_seed, progress=True,
                                      sheet_samples=args.sheet_samples if args.sheet else 0,
                                      bootstrap=args.bootstrap)
    except JaxawareError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    result["weights"] = str(args.weights)
    print(format_table(result))
    if args.findings:
        from jaxaware.toyworld.quality import awareness_findings

        f = result["findings"] = awareness_findings(model, seed=args.seed, progress=True)
        ordered = sum(v["ordered"] for v in f["ablation"]["per_site"].values())
        print(f"top-10% overlap within / between families: {f['overlap']['within_family']:.3f}"
              f" / {f['overlap']['between_family']:.3f}; similarity vs awareness correlation "
              f"(Spearman): {f['similarity']['spearman']:.3f}; ablation lowest < random < "
              f"highest at {ordered} of {len(f['ablation']['per_site'])} sites")
    sheet = result.pop("sheet", None)
    if args.out:
        with atomic_write(args.out, "w") as f:
            json.dump(result, f, indent=2)
        print(f"wrote {args.out}")
    if sheet is not None:
        image = sheet_image(sheet["images"], sheet["part_maps"], sheet["samples"], args.zoom)
        with atomic_write(args.sheet) as f:
            image.save(f, format="PNG", optimize=True)
        print(f"wrote {args.sheet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
