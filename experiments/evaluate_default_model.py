"""Evaluate a toy-world generator: classifier accuracy and per-class Frechet distances.

    python experiments/evaluate_default_model.py runs/default_model/model
    python experiments/evaluate_default_model.py WEIGHTS --per-class 500 --out eval.json

Prints a table (accuracy of the reference classifier on samples at the given truncation,
Frechet distance to rendered world images in the classifier's 128-d feature space, and
the real-vs-real Frechet distance at the same sample size as a floor) and writes it as
JSON (default: ``evaluation.json`` next to the weights directory).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jaxaware.model import load
from jaxaware.errors import JaxawareError
from jaxaware.train.evaluate import evaluate, format_table, save_json


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights", help="jaxaware weights directory")
    ap.add_argument("--per-class", type=int, default=200)
    ap.add_argument("--truncation", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0, help="latent seed")
    ap.add_argument("--real-seed", type=int, default=1000, help="world seed of real images")
    ap.add_argument("--out", default=None, help="JSON output path")
    args = ap.parse_args(argv)
    try:
        model = load(args.weights)
        result = evaluate(model, args.per_class, args.truncation, args.seed, args.real_seed,
                          progress=True)
    except JaxawareError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    result["weights"] = str(args.weights)
    print(format_table(result))
    out = args.out or str(Path(args.weights).resolve().parent / "evaluation.json")
    print(f"wrote {save_json(result, out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
