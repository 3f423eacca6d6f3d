"""Train the toy world's reference classifier and write its weights (atomically).

    python experiments/train_classifier.py                 # the shipped weights
    python experiments/train_classifier.py --seed 1 --out /tmp/clf.npz

The run is a function of ``--seed`` (initial weights and training data); it prints the
held-out accuracy on a disjoint world seed and the training time, and writes the npz plus
its JSON sidecar (config, training record, sha256) next to it.
"""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from jaxaware.errors import JaxawareError
from jaxaware.toyworld.classifier import DEFAULT_CONFIG, DEFAULT_WEIGHTS, save_classifier
from jaxaware.toyworld.train import train_classifier


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
    ap.add_argument("--steps", type=int, default=600, help="training steps (default 600)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    ap.add_argument("--eval-seed", type=int, default=7, help="world seed of the held-out set")
    ap.add_argument("--eval-size", type=int, default=4096)
    ap.add_argument("--out", default=str(DEFAULT_WEIGHTS),
                    help="weights path (.npz); the sidecar goes next to it as .json")
    args = ap.parse_args(argv)
    try:
        with tqdm(total=args.steps, desc="train classifier", unit="step") as bar:
            def callback(step, loss, acc):
                bar.update(1)
                if step % 10 == 0 or step + 1 == args.steps:
                    bar.set_postfix(loss=f"{loss:.3f}", acc=f"{acc:.3f}")

            params, info = train_classifier(
                seed=args.seed, steps=args.steps, batch_size=args.batch_size,
                learning_rate=args.lr, eval_seed=args.eval_seed, eval_size=args.eval_size,
                config=DEFAULT_CONFIG, callback=callback)
    except JaxawareError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    path = save_classifier(params, DEFAULT_CONFIG, args.out, info=info)
    print(f"held-out accuracy {info['heldout_accuracy']:.4f} on {info['eval_size']} images "
          f"(world seed {info['eval_seed']}); trained in {info['train_seconds']:.0f} s")
    print(f"wrote {path} and its sidecar")
    return 0


if __name__ == "__main__":
    sys.exit(main())
