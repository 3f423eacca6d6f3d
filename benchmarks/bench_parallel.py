"""Benchmark: sharded awareness and exact sweep at 1, 2, 4, 8 devices; the sharded path's
overhead on one device.

Each device count runs in its own subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=D`` (host devices: on a CPU they share
its cores, so the point is correctness and overhead, not speed; on a GPU/TPU slice the same
script measures real scaling). Per device count:

* awareness: :func:`jaxaware.compute_awareness` of a random-weight model of the default
  model's architecture with ``--classes`` classes (toyworld-biggan: 384 channels),
  ``--latents`` latents, classes sharded over the devices;
* exact sweep: ``--edits`` rows of :func:`jaxaware.interventions.ablation_sweep` on the
  default model, each ablated generator run on ``--sweep-latents`` latents, through the
  generic :func:`jaxaware.parallel.map_rows` (``vmap`` over the edits of a block, ``block``
  edits per device per step);
* a SHA-256 of every result: all device counts must agree (bit-identical results).

On one device, the overhead of the sharded path: ``map_rows`` against the plain loop it
replaced (the jitted kernel called per chunk, the next dispatched before copying out) for
awareness, sample and the sweep, same chunks, interleaved, best of ``--reps``; target
<= 10%.

    python benchmarks/bench_parallel.py               # full: 1000 classes, 1000 latents
    python benchmarks/bench_parallel.py --quick       # tiny sizes, to check it runs

Writes ``benchmarks/results/parallel.json`` (with ``--quick`` only when ``--out`` is given).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
RESULTS = os.path.join(ROOT, "benchmarks", "results", "parallel.json")
TARGET_OVERHEAD = 0.10


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes, to check it runs")
    p.add_argument("--out", default=None, help=f"JSON output (default {RESULTS}; with "
                   "--quick none unless given)")
    p.add_argument("--devices", default=None, help="device counts, e.g. 1,2,4,8 (default; "
                   "quick: 1,8)")
    p.add_argument("--classes", type=int, default=None, help="awareness classes (1000; "
                   "quick 40)")
    p.add_argument("--latents", type=int, default=None, help="awareness latents (1000; "
                   "quick 64)")
    p.add_argument("--edits", type=int, default=None, help="sweep edits (64; quick 10)")
    p.add_argument("--sweep-latents", type=int, default=None, help="latents per edit (4; "
                   "quick 2)")
    p.add_argument("--block", type=int, default=None, help="sweep edits per device per step "
                   "(4; quick 2)")
    p.add_argument("--reps", type=int, default=None, help="timed repetitions, best taken "
                   "(3; quick 1)")
    p.add_argument("--timeout", type=int, default=1800, help="seconds per subprocess")
    p.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--settings", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    full = dict(devices="1,2,4,8", classes=1000, latents=1000, edits=64, sweep_latents=4,
                block=4, reps=3)
    quick = dict(devices="1,8", classes=40, latents=64, edits=10, sweep_latents=2, block=2,
                 reps=1)
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


# -- the worker: one device count -------------------------------------------------------------


def _digest(tree) -> str:
    import jax

    h = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        a = np.ascontiguousarray(np.asarray(leaf))
        h.update(str((a.dtype, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _best(fn, reps):
    """Seconds of the fastest of ``reps`` calls (after one untimed warm-up call)."""
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _sweep_fn(config):
    import jax

    from jaxaware.generate import forward

    def images(edits, variables, z, classes, blend):
        one = lambda e: forward(config, variables, z, classes, blend, e)[0]  # noqa: E731
        return jax.vmap(one)(edits)

    return images


def worker(args) -> dict:
    import jax

    from jaxaware import interventions as iv
    from jaxaware import parallel
    from jaxaware.awareness import chunk_awareness_rows, compute_awareness
    from jaxaware.generate import generate, sample, statistic_weights
    from jaxaware.model import init_random, load
    from jaxaware.sites import site_table

    d = jax.device_count()
    default = load()
    cfg = dataclasses.replace(default.config, num_classes=args.classes)
    big = init_random(cfg, seed=0)
    out = {"devices": d, "device_kind": jax.devices()[0].device_kind}

    def awareness():
        return compute_awareness(big, num_latents=args.latents, seed=0, class_chunk=100)

    aw = awareness()
    out["awareness_s"] = _best(awareness, args.reps)
    out["awareness_sha256"] = _digest((aw.category, aw.latent, aw.flip_fraction))

    dcfg = default.config
    total = sum(s.channels for s in site_table(dcfg))  # every CCBN channel of the model
    sweep = iv.ablation_sweep(dcfg, columns=np.linspace(0, total - 1, args.edits).astype(int))
    z = default.family.sample_latents(args.sweep_latents, dcfg, 1.0, 0)
    classes = np.arange(args.sweep_latents) % dcfg.num_classes
    blend = statistic_weights(dcfg, 1.0)
    fn = _sweep_fn(dcfg)

    def swept():
        return parallel.map_rows(fn, sweep, default.variables, z, classes, blend,
                                 block=args.block, shrink=False)

    images = swept()
    out["sweep_s"] = _best(swept, args.reps)
    out["sweep_images_per_s"] = args.edits * args.sweep_latents / out["sweep_s"]
    out["sweep_sha256"] = _digest(images)
    if d > 1:
        return out

    # One device: the sharded path against the plain loops it replaced, interleaved.
    affine = big.family.affine_maps(big.params, cfg)
    zz = big.family.sample_latents(args.latents, cfg, 1.0, 0)
    a_s, a_o = 1.0 + zz @ affine.gain_latent, zz @ affine.bias_latent
    b_s, b_o = affine.class_parts(np.arange(args.classes))
    chunk = min(100, args.classes)

    def plain_chunks(run, rows, shared, block):
        """The loop before jaxaware.parallel: the jitted function per chunk of rows (the
        last padded), the next dispatched before this one is copied out."""
        m = len(jax.tree.leaves(rows)[0])
        starts = list(range(0, m, block))

        def launch(s):
            index = np.minimum(np.arange(s, s + block), m - 1)
            return run(jax.tree.map(lambda x: x[index], rows), *shared)

        outs, pending = [], launch(0)
        for i, s in enumerate(starts):
            current = pending
            if i + 1 < len(starts):
                pending = launch(starts[i + 1])
            outs.append(jax.tree.map(lambda x: np.asarray(x)[: m - s], current))
        return jax.tree.map(lambda *xs: np.concatenate(xs), *outs)

    aw_rows = jax.jit(chunk_awareness_rows)
    sweep_jit = jax.jit(fn)
    host_b = (np.asarray(b_s), np.asarray(b_o))
    on_device = jax.device_put((default.variables, z, classes, blend))  # as map_rows does
    pairs = {
        "awareness": (
            lambda: plain_chunks(aw_rows, host_b, (a_s, a_o), chunk),
            lambda: parallel.map_rows(chunk_awareness_rows, host_b, a_s, a_o, block=chunk)),
        "sample": (
            lambda: _plain_sample(default, generate, args.classes),
            lambda: sample(default, list(range(dcfg.num_classes)), 1.0, 0,
                           per_class=max(1, args.classes // 16), batch_size=16)[0]),
        "sweep": (
            lambda: plain_chunks(sweep_jit, sweep, on_device, args.block),
            swept),
    }
    overhead = {}
    for name, (plain, sharded) in pairs.items():
        a, b = plain(), sharded()
        same = _digest(a) == _digest(b)
        plain(), sharded()  # warm
        tp, ts = [], []
        for _ in range(max(args.reps, 3)):
            t = time.perf_counter()
            plain()
            tp.append(time.perf_counter() - t)
            t = time.perf_counter()
            sharded()
            ts.append(time.perf_counter() - t)
        overhead[name] = {"plain_s": min(tp), "sharded_s": min(ts),
                          "overhead": min(ts) / min(tp) - 1, "bit_identical": same}
    out["overhead_one_device"] = overhead
    return out


def _plain_sample(model, generate, classes):
    """``sample``'s loop before jaxaware.parallel: generate per batch of 16, padded."""
    cfg = model.config
    per_class = max(1, classes // 16)
    z = model.family.sample_latents(per_class, cfg, 1.0, 0)
    labels = np.repeat(np.arange(cfg.num_classes), per_class)
    zs = np.tile(z, (cfg.num_classes, 1))
    out = []
    for s in range(0, len(labels), 16):
        zb, yb = zs[s : s + 16], labels[s : s + 16]
        if len(yb) < 16:
            pad = 16 - len(yb)
            zb = np.concatenate([zb, np.repeat(zb[-1:], pad, 0)])
            yb = np.concatenate([yb, np.repeat(yb[-1:], pad)])
        out.append(np.asarray(generate(model, zb, yb, 1.0))[: len(labels) - s])
    return np.concatenate(out)


# -- the driver -------------------------------------------------------------------------------


def run_worker(count: int, args) -> dict:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={count}",
           "PYTHONPATH": ROOT}
    argv = [sys.executable, os.path.abspath(__file__), "--worker", str(count), "--settings",
            json.dumps({k: getattr(args, k) for k in ("classes", "latents", "edits",
                                                       "sweep_latents", "block", "reps")})]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=args.timeout, env=env,
                         cwd=ROOT)
    if run.returncode != 0:
        raise SystemExit(f"the {count}-device worker failed:\n{run.stderr[-3000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker is not None:
        for key, value in json.loads(args.settings).items():
            setattr(args, key, value)
        print(json.dumps(worker(args)))
        return 0
    counts = [int(c) for c in str(args.devices).split(",")]
    rows = {}
    for c in counts:
        rows[c] = run_worker(c, args)
        r = rows[c]
        print(f"{c} device(s): awareness {r['awareness_s']:.3f} s, sweep {r['sweep_s']:.3f} s "
              f"({r['sweep_images_per_s']:.1f} images/s)", flush=True)
    identical = {key: len({r[key] for r in rows.values()}) == 1
                 for key in ("awareness_sha256", "sweep_sha256")}
    overhead = rows[counts[0]].get("overhead_one_device", {})
    for name, o in overhead.items():
        print(f"1 device, sharded vs plain {name}: {o['sharded_s']:.4f} s vs "
              f"{o['plain_s']:.4f} s ({o['overhead']:+.1%}; bit-identical: "
              f"{o['bit_identical']})")
    print(f"identical results on {counts} devices: {identical}")
    import jax

    from jaxaware.environment import cpu_model

    result = {
        "machine": {"cpu": cpu_model(),
                    "cores": os.cpu_count(), "load_average": list(os.getloadavg()),
                    "platform": platform.platform(), "jax": jax.__version__,
                    "device_kind": rows[counts[0]]["device_kind"],
                    "devices": "host devices (--xla_force_host_platform_device_count)"},
        "quick": args.quick,
        "settings": {k: getattr(args, k) for k in ("classes", "latents", "edits",
                                                   "sweep_latents", "block", "reps")},
        "awareness": {str(c): rows[c]["awareness_s"] for c in counts},
        "sweep": {str(c): {"seconds": rows[c]["sweep_s"],
                           "images_per_s": rows[c]["sweep_images_per_s"]} for c in counts},
        "identical": identical,
        "overhead_one_device": overhead,
        "target_overhead": TARGET_OVERHEAD,
    }
    out = args.out or (None if args.quick else RESULTS)
    if out is not None:
        from jaxaware.outputs import write_json

        write_json(out, result)
        print(f"wrote {out}")
    if not all(identical.values()) or not all(o["bit_identical"] for o in overhead.values()):
        print("error: results differ between device counts or paths", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
