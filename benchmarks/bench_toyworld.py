"""Toy-world rendering throughput: images per second at 32x32 and 64x64.

    python benchmarks/bench_toyworld.py [--out benchmarks/results/toyworld.json]

Renders balanced batches (``sample_dataset``, the way training uses the world) after one
warm-up batch and reports the best of ``--repeats`` timed runs, with the machine it ran on.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

from jaxaware.toyworld.render import sample_dataset


def bench(resolution: int, batch: int, batches: int, repeats: int) -> dict:
    sample_dataset(batch, seed=99, resolution=resolution)  # warm-up
    rates = []
    for r in range(repeats):
        t0 = time.perf_counter()
        for b in range(batches):
            sample_dataset(batch, seed=r, resolution=resolution, start=b * batch)
        rates.append(batch * batches / (time.perf_counter() - t0))
    return {"resolution": resolution, "batch": batch, "images": batch * batches,
            "images_per_s_best": round(max(rates)), "images_per_s_median": round(
                float(np.median(rates)))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    results = "benchmarks/results/toyworld.json"
    ap.add_argument("--out", default=results,
                    help="where to save the JSON (a --quick run saves only when given)")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--images", type=int, default=20480, help="images per timed run at 32")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="a few images: checks it runs")
    args = ap.parse_args(argv)
    if args.quick:
        args.batch, args.images, args.repeats = 64, 256, 1
    rows = [bench(32, args.batch, max(1, args.images // args.batch), args.repeats),
            bench(64, args.batch, max(1, args.images // 4 // args.batch), args.repeats)]
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    result = {"benchmark": "toyworld render (sample_dataset)", "rows": rows,
              "machine": {"cpu_count": os.cpu_count(), "processor": platform.processor()
                          or platform.machine(), "python": platform.python_version(),
                          "numpy": np.__version__, "load_average_1min": load},
              "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    print(f"{'resolution':>10} {'batch':>6} {'images':>7} {'img/s best':>11} {'img/s median':>13}")
    for r in rows:
        print(f"{r['resolution']:>10} {r['batch']:>6} {r['images']:>7} "
              f"{r['images_per_s_best']:>11} {r['images_per_s_median']:>13}")
    print(f"machine: {os.cpu_count()} CPU cores, load average {load}")
    if args.quick and args.out == results:
        return 0
    from jaxaware.outputs import write_json

    write_json(args.out, result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
