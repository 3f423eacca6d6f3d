"""Benchmark: precision/recall and Frechet distance, jaxaware vs the references, same run.

(a) Improved precision and recall, k = 3, N real x M fake features of dimension d (default
    10,000 x 10,000 x 2,048): ``jaxaware.metrics.precision_recall`` (``inclusive=False``,
    the ``<`` rule, so that the answers must be equal) against ``prdc.compute_prdc``, which
    builds the three full distance matrices (it also returns density and coverage from
    them; that is its only entry point).
(b) Frechet distance on the same features: ``jaxaware.metrics.frechet_distance`` against
    pytorch-fid's formula (``np.cov``, ``scipy.linalg.sqrtm(S_a S_b)``).

Each measurement runs in its own subprocess so that its peak RSS is its own. jaxaware's
first call compiles for the input shape; the table shows the second call and the JSON
both. The features are synthetic and post-ReLU-like (low-rank structure plus noise, then a
ReLU), fixed by ``--seed``; timings do not depend on the values beyond that.

    python benchmarks/bench_metrics.py                    # full run (several minutes)
    python benchmarks/bench_metrics.py --quick --out /tmp/m.json   # tiny sizes, seconds
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results", "metrics.json")


def _peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM; not inherited across fork + exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def features(args):
    """``(real, fake)`` float32 ``[n, d]``: relu of a rank-64 signal plus noise; the fake set
    is shifted and wider, so precision and recall are strictly between 0 and 1."""
    import numpy as np

    rng = np.random.default_rng(args.seed)
    mix = rng.standard_normal((64, args.dim)).astype(np.float32) / 8
    bias = rng.normal(0, 0.5, args.dim).astype(np.float32)

    def draw(n, scale, shift):
        z = rng.standard_normal((n, 64)).astype(np.float32) * scale + shift
        noise = rng.standard_normal((n, args.dim)).astype(np.float32) * 0.3
        return np.maximum(z @ mix + bias + noise, 0)

    return draw(args.real, 1.0, 0.0), draw(args.fake, 1.2, 0.15)


# -- the measured parts, each run in a fresh process -------------------------------------


def part_pr_jax(args) -> dict:
    from jaxaware.metrics import precision_recall

    real, fake = features(args)
    t0 = time.perf_counter()
    first = precision_recall(real, fake, args.k, inclusive=False)
    t1 = time.perf_counter()
    result = precision_recall(real, fake, args.k, inclusive=False)
    t2 = time.perf_counter()
    inclusive = precision_recall(real, fake, args.k)
    assert result == first
    return {"seconds": t2 - t1, "seconds_first_call": t1 - t0, "precision": result[0],
            "recall": result[1], "precision_inclusive": inclusive[0],
            "recall_inclusive": inclusive[1], "peak_rss_mb": _peak_rss_mb()}  # fmt: skip


def part_pr_prdc(args) -> dict:
    import prdc

    real, fake = features(args)
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # it prints the sample counts
        out = prdc.compute_prdc(real, fake, args.k)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "precision": float(out["precision"]),
            "recall": float(out["recall"]), "peak_rss_mb": _peak_rss_mb()}  # fmt: skip


def part_fd_jax(args) -> dict:
    from jaxaware.metrics import frechet_distance

    real, fake = features(args)
    t0 = time.perf_counter()
    first = frechet_distance(real, fake)
    t1 = time.perf_counter()
    value = frechet_distance(real, fake)
    t2 = time.perf_counter()
    return {"seconds": t2 - t1, "seconds_first_call": t1 - t0, "value": value,
            "agrees_with_first_call": value == first, "peak_rss_mb": _peak_rss_mb()}  # fmt: skip


def part_fd_sqrtm(args) -> dict:
    import warnings

    import numpy as np
    import scipy.linalg

    real, fake = features(args)
    t0 = time.perf_counter()
    mu_a, mu_b = real.mean(axis=0, dtype=np.float64), fake.mean(axis=0, dtype=np.float64)
    s_a = np.cov(real.astype(np.float64), rowvar=False)
    s_b = np.cov(fake.astype(np.float64), rowvar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root = scipy.linalg.sqrtm(s_a @ s_b)  # no disp: scipy >= 1.18 removed it
    if np.iscomplexobj(root):
        root = root.real
    diff = mu_a - mu_b
    value = float(diff @ diff + np.trace(s_a) + np.trace(s_b) - 2 * np.trace(root))
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "value": value, "peak_rss_mb": _peak_rss_mb()}


PARTS = {
    "pr-jax": part_pr_jax,
    "pr-prdc": part_pr_prdc,
    "fd-jax": part_fd_jax,
    "fd-sqrtm": part_fd_sqrtm,
}


def run_part(name: str, args) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--part", name, "--real", str(args.real),
           "--fake", str(args.fake), "--dim", str(args.dim), "--k", str(args.k),
           "--seed", str(args.seed)]  # fmt: skip
    print(f"  running {name} ...", flush=True)
    out = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        raise SystemExit(f"part {name} failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--part", choices=PARTS)
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks the script runs")
    p.add_argument("--real", type=int, default=10_000, help="real feature vectors")
    p.add_argument("--fake", type=int, default=10_000, help="fake feature vectors")
    p.add_argument("--dim", type=int, default=2048, help="feature dimension")
    p.add_argument("--k", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help=f"JSON path (default {os.path.relpath(RESULTS, ROOT)}; a "
                                 "--quick run writes only where --out says)")  # fmt: skip
    args = p.parse_args(argv)
    if args.part:
        print(json.dumps(PARTS[args.part](args)))
        return 0
    if args.quick:
        args.real, args.fake, args.dim = 300, 250, 64

    load_start = os.getloadavg()[0]
    from jaxaware.environment import cpu_model

    cpu, cores = cpu_model(), os.cpu_count()
    print(f"machine: {cpu}, {cores} cores, load average {load_start:.2f} at start")
    pr_jax, pr_ref = run_part("pr-jax", args), run_part("pr-prdc", args)
    fd_jax, fd_ref = run_part("fd-jax", args), run_part("fd-sqrtm", args)
    load_end = os.getloadavg()[0]
    size = f"{args.real} x {args.fake} x {args.dim}"
    pr_equal = (pr_jax["precision"], pr_jax["recall"]) == (pr_ref["precision"], pr_ref["recall"])
    fd_rel = abs(fd_jax["value"] - fd_ref["value"]) / max(abs(fd_ref["value"]), 1e-300)
    result = {
        "benchmark": "metrics: precision/recall vs prdc, Frechet distance vs sqrtm formula",
        "size": {
            "real": args.real,
            "fake": args.fake,
            "dim": args.dim,
            "k": args.k,
            "seed": args.seed,
        },
        "precision_recall": {
            "jax": pr_jax,
            "prdc": pr_ref,
            "equal": pr_equal,
            "speedup": pr_ref["seconds"] / pr_jax["seconds"],
        },
        "frechet_distance": {
            "jax": fd_jax,
            "sqrtm": fd_ref,
            "relative_difference": fd_rel,
            "speedup": fd_ref["seconds"] / fd_jax["seconds"],
        },
        "machine": {
            "cpu": cpu,
            "cores": cores,
            "load_avg_1m_start": load_start,
            "load_avg_1m_end": load_end,
            # our own parts run one at a time; a load above ~0.5 before the first one means
            # something else was running
            "other_load_at_start": load_start >= 0.5,
            "python": platform.python_version(),
            "blas": _blas_threads(),
        },
        "versions": _versions(),
        "quick": args.quick,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }

    def sec(x: float) -> str:
        return f"{x:.3g} s"

    rows = [
        (f"precision/recall, k={args.k}", size, sec(pr_jax["seconds"]),
         sec(pr_ref["seconds"]), f"{result['precision_recall']['speedup']:.1f}x"),
        ("  first call (compiles)", "", sec(pr_jax["seconds_first_call"]), "", ""),
        ("  peak RSS", "", f"{pr_jax['peak_rss_mb']:.0f} MB", f"{pr_ref['peak_rss_mb']:.0f} MB",
         ""),
        ("  (precision, recall)", "<, as prdc",
         f"({pr_jax['precision']:.4f}, {pr_jax['recall']:.4f})",
         f"({pr_ref['precision']:.4f}, {pr_ref['recall']:.4f})",
         "equal" if pr_equal else "DIFFERENT"),
        ("Frechet distance", size, sec(fd_jax["seconds"]), sec(fd_ref["seconds"]),
         f"{result['frechet_distance']['speedup']:.1f}x"),
        ("  peak RSS", "", f"{fd_jax['peak_rss_mb']:.0f} MB", f"{fd_ref['peak_rss_mb']:.0f} MB",
         ""),
        ("  value", "", f"{fd_jax['value']:.6g}", f"{fd_ref['value']:.6g}",
         f"rel. diff {fd_rel:.1e}"),
    ]  # fmt: skip
    head = ("benchmark", "size", "jaxaware", "reference", "ratio")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(5)]
    for r in [head, tuple("-" * w for w in widths), *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    print(f"references: prdc {result['versions'].get('prdc')}, scipy "
          f"{result['versions'].get('scipy')} sqrtm; load average {load_start:.2f} -> "
          f"{load_end:.2f}" + (" (other load present: timings are not clean)"
                                if load_start >= 0.5 else ""))  # fmt: skip
    out = args.out or (None if args.quick else RESULTS)
    if out:
        from jaxaware.outputs import write_json

        write_json(out, result)
        print(f"saved {out}")
    if not pr_equal:
        print("error: precision/recall differ from prdc", file=sys.stderr)
        return 1
    return 0


def _blas_threads():
    """The BLAS libraries numpy/scipy use and their thread counts (None without
    threadpoolctl). On a loaded machine many BLAS threads can be much slower than one."""
    try:
        import numpy  # noqa: F401  (loads its BLAS)
        import scipy.linalg  # noqa: F401
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    return [{"library": i.get("internal_api"), "threads": i.get("num_threads")}
            for i in threadpool_info() if i.get("user_api") == "blas"]  # fmt: skip


def _versions() -> dict:
    from importlib import metadata

    out = {}
    for name in ("jax", "numpy", "scipy", "prdc", "scikit-learn"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


if __name__ == "__main__":
    sys.exit(main())
