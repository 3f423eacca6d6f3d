"""Training-step time on this machine, YNNPACK's convolutions against XLA's own.

    python benchmarks/bench_train_step.py [--steps 20] [--out benchmarks/results/train_step.json]

jax 0.10's XLA hands a CPU program's convolutions to YNNPACK; ``TrainConfig.cpu_convolutions
= "xla"`` keeps them with XLA's emitter. For each training config (the two shipped models'
own, and the pack-4 one the extent runs use) both compiled steps run from one initial
state, interleaved step by step so that a busy spell of the machine hits both alike; the
table gives the median seconds per step after two warm-up steps, the ratio, and how far
apart the two steps' first losses are (they round differently; the runs then part). A
second table times one 3x3 convolution's value and gradients (batch 64, the
discriminator's and generator's sizes) compiled each way, the best of ``--reps``. A
``--quick`` run times two steps of a small config and one small convolution: it checks the
script, not the speed.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time

import numpy as np

RESULTS = "benchmarks/results/train_step.json"
PACK4 = {"d_minibatch_std": False, "d_class_groups": True, "d_pack": 4, "d_ch": 32}


def configs(quick: bool) -> dict:
    from jaxaware.model import resolve_weights_path
    from jaxaware.train.trainer import TrainConfig
    from jaxaware.weights_io import load_weights

    def shipped(name):
        extra = load_weights(resolve_weights_path(name))[1]["extra"]
        return TrainConfig.from_dict(extra["train_config"])

    biggan = shipped("toyworld-biggan")
    if quick:
        return {"toyworld-biggan (batch 8, fast compile)": dataclasses.replace(
            biggan, batch_size=8, fast_compile=True)}
    return {"toyworld-biggan": biggan,
            "toyworld-biggan-deep": shipped("toyworld-biggan-deep"),
            "toyworld-biggan, pack 4": dataclasses.replace(biggan, **PACK4)}


def bench(tc, steps: int) -> dict:
    import jax

    from jaxaware.train.trainer import (
        CPU_CONVOLUTIONS,
        compiled_step,
        init_state,
        real_batch,
        step_key,
    )

    runs = {}
    for conv in CPU_CONVOLUTIONS:
        variant = dataclasses.replace(tc, cpu_convolutions=conv)
        t0 = time.perf_counter()
        step = compiled_step(variant)
        state = init_state(variant)
        real, y = real_batch(variant, 0)
        state, metrics = step(state, real, y, step_key(variant.seed, 0))
        jax.block_until_ready(state)
        runs[conv] = {"step": step, "state": state, "first": metrics, "times": [],
                      "compile_s": time.perf_counter() - t0}
    for s in range(1, steps + 1):
        real, y = real_batch(tc, s)
        for run in runs.values():
            t = time.perf_counter()
            run["state"], _ = run["step"](run["state"], real, y, step_key(tc.seed, s))
            jax.block_until_ready(run["state"])
            run["times"].append(time.perf_counter() - t)
    warm = 2 if steps > 2 else 0
    row = {}
    for conv, run in runs.items():
        median = float(np.median(run["times"][warm:]))
        row[conv] = {"compile_and_first_step_s": round(run["compile_s"], 2),
                     "median_step_s": round(median, 4), "steps_per_s": round(1 / median, 3),
                     "first_d_loss": float(run["first"]["d_loss"]),
                     "first_g_loss": float(run["first"]["g_loss"])}
    a, b = (row[c] for c in CPU_CONVOLUTIONS)
    row["speedup_xla_over_ynnpack"] = round(a["median_step_s"] / b["median_step_s"], 3)
    row["first_loss_gap"] = max(abs(a["first_d_loss"] - b["first_d_loss"]),
                                abs(a["first_g_loss"] - b["first_g_loss"]))
    return row


CONVOLUTIONS = ((64, 32, 32, 32), (64, 16, 64, 64), (64, 32, 16, 16), (64, 8, 128, 128))


def bench_convolution(shape, reps: int) -> dict:
    """Value and both gradients of ``sum(conv(x, w)^2)`` for ``x [n, s, s, c]`` and a 3x3
    kernel to ``c_out`` channels, compiled with YNNPACK's convolutions and without."""
    import jax
    import jax.numpy as jnp

    from jaxaware.train.trainer import cpu_convolution_options

    n, side, c, c_out = shape
    kx, kw = jax.random.split(jax.random.PRNGKey(0))
    x = jax.random.normal(kx, (n, side, side, c))
    w = jax.random.normal(kw, (3, 3, c, c_out))

    def loss(x, w):
        y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return jnp.sum(y * y)

    fn = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    row = {"shape": list(shape), "gflop": 3 * 2 * n * side * side * c * c_out * 9 / 1e9}
    for conv in ("ynnpack", "xla"):
        options = cpu_convolution_options(conv) or None
        compiled = fn.lower(x, w).compile(compiler_options=options)
        jax.block_until_ready(compiled(x, w))
        best = float("inf")
        for _ in range(reps):
            t = time.perf_counter()
            jax.block_until_ready(compiled(x, w))
            best = min(best, time.perf_counter() - t)
        row[conv] = {"best_ms": round(best * 1e3, 3),
                     "gflop_per_s": round(row["gflop"] / best, 1)}
    row["speedup_xla_over_ynnpack"] = round(row["ynnpack"]["best_ms"] / row["xla"]["best_ms"],
                                            3)
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20, help="timed steps per config and choice")
    ap.add_argument("--out", default=None,
                    help=f"where to save the JSON (default {RESULTS}; a --quick run saves "
                         "only when given)")
    ap.add_argument("--reps", type=int, default=20, help="timed calls per convolution")
    ap.add_argument("--quick", action="store_true", help="two steps of a small config")
    args = ap.parse_args(argv)
    if args.steps < 1:
        print(f"error: --steps must be >= 1; got {args.steps}", file=sys.stderr)
        return 2
    if args.reps < 1:
        print(f"error: --reps must be >= 1; got {args.reps}", file=sys.stderr)
        return 2
    if args.quick:
        args.steps, args.reps = 2, 2
    import jax

    from jaxaware.environment import cpu_model

    rows = {}
    print(f"{'config':>40} {'ynnpack s/step':>15} {'xla s/step':>11} {'speedup':>8} "
          f"{'loss gap':>9}")
    for name, tc in configs(args.quick).items():
        r = rows[name] = bench(tc, args.steps)
        print(f"{name:>40} {r['ynnpack']['median_step_s']:>15.3f} "
              f"{r['xla']['median_step_s']:>11.3f} {r['speedup_xla_over_ynnpack']:>7.2f}x "
              f"{r['first_loss_gap']:>9.1e}", flush=True)
    shapes = [(8, 16, 16, 16)] if args.quick else CONVOLUTIONS
    print(f"\n{'convolution (n, side, c, c_out)':>40} {'ynnpack ms':>11} {'xla ms':>8} "
          f"{'speedup':>8}")
    convolutions = []
    for shape in shapes:
        r = bench_convolution(shape, args.reps)
        convolutions.append(r)
        print(f"{str(tuple(shape)):>40} {r['ynnpack']['best_ms']:>11.2f} "
              f"{r['xla']['best_ms']:>8.2f} {r['speedup_xla_over_ynnpack']:>7.2f}x", flush=True)
    flags = set()
    try:
        with open("/proc/cpuinfo") as fh:
            flags = {f for line in fh if line.startswith("flags") for f in line.split()}
    except OSError:
        pass
    result = {
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(),
                    "avx512f": "avx512f" in flags, "load_average": list(os.getloadavg()),
                    "platform": platform.platform(), "jax": jax.__version__,
                    "backend": jax.default_backend()},
        "quick": args.quick, "steps": args.steps, "configs": rows,
        "convolutions": convolutions,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    print(f"machine: {result['machine']['cpu']}, {os.cpu_count()} cores, AVX-512: "
          f"{result['machine']['avx512f']}, load average {result['machine']['load_average'][0]}")
    out = args.out or (None if args.quick else RESULTS)
    if out is not None:
        from jaxaware.outputs import write_json

        write_json(out, result)
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
