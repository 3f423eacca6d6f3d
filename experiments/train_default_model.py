"""Train jaxaware's default model: a small class-conditional BigGAN-deep on the toy world.

    python experiments/train_default_model.py                    # the default config
    python experiments/train_default_model.py --smoke --out /tmp/smoke
    python experiments/train_default_model.py --steps 30000      # resume and extend

The run is a function of the config (seeds included). It checkpoints to
``OUT/checkpoint`` every ``checkpoint_every`` steps and resumes from there when started
again with the same config; the final model (EMA generator, spectral norm folded, 51
standing-statistics rows, the toy world's 16 class names) goes to ``OUT/model``, loadable
with ``jaxaware.load``. Evaluate it with ``experiments/evaluate_default_model.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

from jaxaware.models import BigGANDeepConfig
from jaxaware.errors import JaxawareError
from jaxaware.train import TrainConfig, train

# 32x32 BigGAN-deep: 4x4 -> 8 -> 16 -> 32, widths 16ch .. ch, attention before block 4
# (16x16, 4ch = 32 channels). 24 CCBN sites.
DEFAULT_LAYERS = (
    (False, 16, 16), (True, 16, 8), (False, 8, 8), (True, 8, 4), (False, 4, 2), (True, 2, 1),
)  # fmt: skip

CONFIGS = {
    # ~2 steps/s on 2 shared CPU cores (measured: 0.48 s/step, load ~2.8): ~1.4 h.
    "default": TrainConfig(
        model=BigGANDeepConfig(layers=DEFAULT_LAYERS, output_dim=32, z_dim=64, class_embed_dim=64,
                           channel_width=8, num_classes=16, attention_layer_position=4),
        d_ch=16, batch_size=64, steps=10000, lr_g=1e-4, lr_d=4e-4, d_steps=1,
        ema_decay=0.999, ema_start=1000, seed=0, data_seed=1, checkpoint_every=500,
        log_every=50, standing_batches=8, standing_batch_size=128,
    ),
    # The tests' tiny architecture, 6 steps, fast XLA compile: ~25 s in all.
    "smoke": TrainConfig(
        model=BigGANDeepConfig(layers=((True, 16, 8), (True, 8, 4), (False, 4, 2), (True, 2, 1)),
                           output_dim=32, z_dim=8, class_embed_dim=8, channel_width=4,
                           num_classes=16, attention_layer_position=2),
        d_ch=4, batch_size=8, steps=6, checkpoint_every=3, log_every=2, ema_start=0,
        standing_batches=1, standing_batch_size=16, fast_compile=True,
    ),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="a few steps of a tiny model (<1 min)")
    ap.add_argument("--out", default=None,
                    help="run directory (default runs/default_model or runs/smoke)")
    ap.add_argument("--steps", type=int, default=None, help="override the number of steps")
    ap.add_argument("--seed", type=int, default=None, help="override the run seed")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    name = "smoke" if args.smoke else "default"
    tc = CONFIGS[name]
    if args.steps is not None:
        tc = dataclasses.replace(tc, steps=args.steps)
    if args.seed is not None:
        tc = dataclasses.replace(tc, seed=args.seed)
    out = args.out or ("runs/smoke" if args.smoke else "runs/default_model")
    t0 = time.perf_counter()
    try:
        model = train(tc, out, progress=not args.no_progress,
                      model_id=f"toyworld-biggan-deep-{name}")
    except JaxawareError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({"out": f"{out}/model", "model_id": model.model_id, "steps": tc.steps,
                      "seconds": round(time.perf_counter() - t0, 1)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
