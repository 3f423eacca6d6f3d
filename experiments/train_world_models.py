"""Train the two shipped world models of the toy world: an original BigGAN and a BigGAN-deep.

    python experiments/train_world_models.py toyworld-biggan           # the shipped config
    python experiments/train_world_models.py toyworld-biggan-deep
    python experiments/train_world_models.py toyworld-biggan --smoke --out /tmp/smoke
    python experiments/train_world_models.py toyworld-biggan --set mode_seeking=1 \
        --steps 2000 --out runs/toyworld-biggan-ms      # a variant (any config field)
    python experiments/train_world_models.py toyworld-biggan --set mode_seeking=0.1 \
        --set mode_seeking_start=6000 --out runs/ms-late  # the term after step 6,000 only
    python experiments/train_world_models.py toyworld-biggan --set d_minibatch_std=false \
        --set d_class_groups=true --set d_pack=4 --set d_ch=32 --set extent=1 \
        --set extent_start=8000 --steps 11000 --out runs/extent  # z_0 sets the object's area

Each run is a function of its config (seeds included): it checkpoints to ``OUT/checkpoint``
every ``checkpoint_every`` steps and resumes from there when started again with the same
config (``--steps`` may grow); the final model (EMA generator, spectral norm folded,
standing statistics, the world's class names) goes to ``OUT/model``, loadable with
``jaxaware.load``. ``--ship`` then copies it to ``jaxaware/data/<name>``. Evaluate with
``experiments/evaluate_world_model.py``.

Architectures (chosen so the paper's per-site analyses have room: top-10 channels, smoothed
curves over a site's channels):

* ``toyworld-biggan``: BigGAN-PyTorch's 32 px ``G_arch`` (3 blocks, every block
  upsampling) at ``ch = 16``: 64 channels at all 6 CCBN sites; hierarchical latents
  (z_dim 120 = 4 chunks of 30), a shared 64-d class embedding, attention at 16x16;
  standing statistics at truncation 1 (row 0) and 0.25, 0.5, 0.75.
* ``toyworld-biggan-deep``: BigGAN-deep blocks at a constant width of 128 (the residual
  stream) with 32-channel bottlenecks (6 blocks, 2 per resolution as BigGAN-deep): at least
  32 channels at all 24 CCBN sites; attention before block 4 (16x16).

Training (both): hinge loss, projection discriminator with spectral norm, Adam
``(0, 0.999)`` with the two-timescale rates of SAGAN (G 1e-4, D 4e-4), batch 32, EMA of G,
fresh toy-world renders every step (an endless data stream, so no augmentation against
overfitting). The discriminator sees pixel coordinates and the batch's feature spread
(:mod:`jaxaware.train.discriminator`): a first run with DiffAugment (translation, cutout)
and neither drew every class near the image centre (object-centre spread 0.4-0.7 of the
data's at step 4000), the failure the world models must not have.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

from jaxaware.errors import JaxawareError
from jaxaware.models import BigGANConfig, BigGANDeepConfig
from jaxaware.train import TrainConfig, train

DEEP_LAYERS = (
    (False, 4, 4), (True, 4, 4), (False, 4, 4), (True, 4, 4), (False, 4, 4), (True, 4, 4),
)  # fmt: skip

COMMON = dict(batch_size=32, lr_g=1e-4, lr_d=4e-4, d_steps=1, ema_decay=0.999,
              ema_start=1000, data_seed=1, checkpoint_every=250, log_every=50,
              standing_batches=8, standing_batch_size=128, d_coords=True, d_minibatch_std=True)

CONFIGS = {
    "toyworld-biggan": TrainConfig(
        model=BigGANConfig(resolution=32, channel_width=16, z_dim=120, shared_dim=64,
                           hier=True, shared=True, attention=(16,), num_classes=16,
                           eps=1e-4, sn_eps=1e-6, n_stats=4,
                           stats_truncations=(0.25, 0.5, 0.75)),
        d_ch=24, steps=8000, seed=0, **COMMON,
    ),
    "toyworld-biggan-deep": TrainConfig(
        model=BigGANDeepConfig(layers=DEEP_LAYERS, output_dim=32, z_dim=64, class_embed_dim=64,
                               channel_width=32, num_classes=16, attention_layer_position=4),
        # Trained in two sittings (3000 steps, then resumed to 8000 from the checkpoint):
        # the same run as one 8000-step call, since a resume restores every state.
        d_ch=24, steps=8000, seed=0, **COMMON,
    ),
}


def smoke(tc: TrainConfig) -> TrainConfig:
    """A few steps of the same architecture with a fast compile (for the tests)."""
    return dataclasses.replace(tc, steps=4, batch_size=8, checkpoint_every=2, log_every=2,
                               ema_start=0, standing_batches=1, standing_batch_size=16,
                               fast_compile=True)


def _coerce(name: str, old, text: str):
    """``text`` (JSON, or a bare string) as a value of ``old``'s type, or a one-line error."""
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    if isinstance(old, bool):
        ok, kind = isinstance(value, bool), "true or false"
    elif isinstance(old, int):
        ok, kind = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif isinstance(old, float):
        ok, kind = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
    else:
        ok, kind = isinstance(value, str), "a string"
    if not ok:
        raise JaxawareError(f"--set {name} takes {kind}; got {text!r}")
    return type(old)(value)


def override(tc: TrainConfig, assignments: list[str]) -> TrainConfig:
    """``tc`` with ``FIELD=VALUE`` assignments applied (scalar fields; VALUE as JSON).

    ``model.FIELD=VALUE`` sets a scalar field of the generator's config (e.g.
    ``model.channel_width=24``); the family config checks the result as it always does.
    """
    scalar = (bool, int, float, str)
    fields = {f.name for f in dataclasses.fields(tc) if f.name != "model"}
    model_fields = {f.name for f in dataclasses.fields(tc.model)
                    if isinstance(getattr(tc.model, f.name), scalar)}
    accepted = ", ".join(sorted(fields) + [f"model.{n}" for n in sorted(model_fields)])
    changes, model_changes = {}, {}
    for item in assignments:
        name, sep, text = item.partition("=")
        field = name.removeprefix("model.")
        if field != name and sep and field in model_fields:
            model_changes[field] = _coerce(name, getattr(tc.model, field), text)
        elif field == name and sep and name in fields:
            changes[name] = _coerce(name, getattr(tc, name), text)
        else:
            raise JaxawareError(f"--set takes FIELD=VALUE with FIELD one of {accepted}; "
                                f"got {item!r}")
    if model_changes:
        changes["model"] = dataclasses.replace(tc.model, **model_changes)
    return dataclasses.replace(tc, **changes)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", choices=sorted(CONFIGS))
    ap.add_argument("--smoke", action="store_true", help="4 steps at batch 8 (a check)")
    ap.add_argument("--out", default=None, help="run directory (default runs/<name>)")
    ap.add_argument("--steps", type=int, default=None, help="override the number of steps")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override a training-config field (a variant: give it its own --out)")
    ap.add_argument("--ship", action="store_true",
                    help="copy the final model to jaxaware/data/<name> (the shipped weights)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    tc = CONFIGS[args.name]
    if args.smoke:
        tc = smoke(tc)
    if args.steps is not None:
        tc = dataclasses.replace(tc, steps=args.steps)
    try:
        tc = override(tc, args.set)
    except JaxawareError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = args.out or os.path.join("runs", args.name + ("-smoke" if args.smoke else ""))
    t0 = time.perf_counter()
    try:
        model = train(tc, out, progress=not args.no_progress, model_id=args.name)
    except JaxawareError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - t0
    if args.ship:  # through the weights writer: checksummed, atomic
        from jaxaware.model import load
        from jaxaware.weights_io import load_weights

        target = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                              "jaxaware", "data", args.name)
        source = os.path.join(out, "model")
        load(source).save(target, extra=load_weights(source)[1]["extra"])
    print(json.dumps({"out": f"{out}/model", "model_id": model.model_id, "steps": tc.steps,
                      "seconds": round(seconds, 1), "shipped": args.ship}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
