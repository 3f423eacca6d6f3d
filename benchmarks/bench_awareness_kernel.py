"""Awareness kernel: formulations side by side, projected to the full BigGAN-deep-256 table.

For every class ``k`` and channel ``c`` over latents ``n``: ``g = a_s + b_s``,
``t = -(a_o + b_o) / g``; mean, population variance of ``t`` and ``#{g <= 0}``.
Target: ``N = 1000`` latents, ``K = 1000`` classes, ``C = 24192`` channels.

Each formulation is timed on one class chunk ``[K_chunk, C]`` (all ``N`` latents, all
channels) and projected linearly to ``K = 1000``. Formulations run interleaved, best of
``--reps``, so background load hits them alike; the load average is recorded. An accuracy
check against a float64 numpy computation runs first (small sizes).

    python benchmarks/bench_awareness_kernel.py [--quick] [--reps 3]

Writes ``benchmarks/results/awareness_kernel.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from jaxaware.awareness import awareness_moments, flip_counts

N_FULL, K_FULL, C_FULL = 1000, 1000, 24192


# ---------------------------------------------------------------- previous formulations
@jax.jit
def welford_tiles(a_s, a_o, b_s, b_o, tile=128):
    """The previous kernel: lax.map over channel tiles, lax.scan over latents, Welford."""
    n, c = a_s.shape
    k = b_s.shape[0]
    inv_count = 1.0 / jnp.arange(1, n + 1, dtype=jnp.float32)
    split = lambda x: x.reshape(x.shape[0], c // tile, tile).swapaxes(0, 1)  # noqa: E731

    def one_tile(args):
        ts, to, us, uo = args

        def step(carry, x):
            mean, m2 = carry
            xs, xo, inv = x
            t = -(xo + uo) / (xs + us)
            d = t - mean
            mean = mean + d * inv
            return (mean, m2 + d * (t - mean)), None

        zeros = jnp.zeros((k, tile), jnp.float32)
        (mean, m2), _ = jax.lax.scan(step, (zeros, zeros), (ts, to, inv_count))
        return mean, m2

    mean, m2 = jax.lax.map(one_tile, (split(a_s), split(a_o), split(b_s), split(b_o)))
    return mean.swapaxes(0, 1).reshape(k, c), m2.swapaxes(0, 1).reshape(k, c)


@jax.jit
def flips_searchsorted(a_s, b_s):
    """The previous flip count: sort each channel, binary search each class."""
    sorted_cols = jnp.sort(a_s, axis=0).T
    count = jax.vmap(lambda col, q: jnp.searchsorted(col, q, side="right"))
    return count(sorted_cols, -b_s.T).T


@jax.jit
def scan_two_carries(a_s, a_o, b_s, b_o):
    """Whole [K, C] block, lax.scan over latents, shifted sums in two float carries."""
    s = -(a_o[0] + b_o) / (a_s[0] + b_s)

    def step(carry, x):
        s1, s2 = carry
        d = -(x[1] + b_o) / (x[0] + b_s) - s
        return (s1 + d, s2 + d * d), None

    z = jnp.zeros_like(b_s)
    (s1, s2), _ = jax.lax.scan(step, (z, z), (a_s, a_o))
    return s1, s2


@jax.jit
def scan_complex_1row(a_s, a_o, b_s, b_o):
    """Whole [K, C] block, lax.scan over latents, (d, d^2) in one complex64 carry."""
    s = -(a_o[0] + b_o) / (a_s[0] + b_s)

    def step(acc, x):
        d = -(x[1] + b_o) / (x[0] + b_s) - s
        return acc + jax.lax.complex(d, d * d), None

    acc, _ = jax.lax.scan(step, jnp.zeros(b_s.shape, jnp.complex64), (a_s, a_o))
    return acc


@jax.jit
def flips_scan_1row(a_s, b_s):
    """Compare-and-count, one latent per lax.scan step."""
    nb = -b_s

    def step(f, x):
        return f + (x <= nb).astype(jnp.int32), None

    f, _ = jax.lax.scan(step, jnp.zeros(b_s.shape, jnp.int32), a_s)
    return f


def library(a_s, a_o, b_s, b_o):
    """The library kernels: jaxaware.awareness.awareness_moments + flip_counts."""
    return awareness_moments(a_s, a_o, b_s, b_o), flip_counts(a_s, b_s)


def library_moments(a_s, a_o, b_s, b_o):
    return awareness_moments(a_s, a_o, b_s, b_o)


def library_flips(a_s, a_o, b_s, b_o):
    return flip_counts(a_s, b_s)


FORMULATIONS = {
    "previous: welford tiles(128) + sort/searchsorted flips": lambda a, o, b, u: (
        welford_tiles(a, o, b, u), flips_searchsorted(a, b)),
    "previous moments only (welford tiles 128)": lambda a, o, b, u: welford_tiles(a, o, b, u),
    "previous flips only (sort + searchsorted)": lambda a, o, b, u: flips_searchsorted(a, b),
    "scan, block [K,C], two float carries": scan_two_carries,
    "scan, block [K,C], complex carry, 1 latent/step": scan_complex_1row,
    "flips: scan compare-count, 1 latent/step": lambda a, o, b, u: flips_scan_1row(a, b),
    "library moments (fori, 8 latents/step, complex)": library_moments,
    "library flips (fori, 8 latents/step, int32)": library_flips,
    "library total (moments + flips)": library,
}  # fmt: skip


# ---------------------------------------------------------------- data and accuracy
def make_data(n, k, c, seed=0):
    rng = np.random.default_rng(seed)
    a_s = (1 + 0.1 * rng.standard_normal((n, c))).astype(np.float32)
    a_o = (0.3 * rng.standard_normal((n, c)) + 0.2).astype(np.float32)
    b_s = (0.3 * rng.standard_normal((k, c))).astype(np.float32)
    b_o = (0.1 * rng.standard_normal((k, c)) + 0.3 * rng.standard_normal(c)).astype(np.float32)
    return a_s, a_o, b_s, b_o


def accuracy(n=1000, k=16, c=512, seed=1):
    """Library kernels and the previous ones vs float64 numpy, per-sample definition."""
    a_s, a_o, b_s, b_o = make_data(n, k, c, seed)
    g = a_s[:, None].astype(np.float64) + b_s[None]  # exact sums of float32 inputs
    t = -(a_o[:, None].astype(np.float64) + b_o[None]) / g
    mean, var = t.mean(0), t.var(0)
    flips = ((a_s[:, None] + b_s[None]) <= 0).sum(0)  # float32 sums, as the model computes g
    ok = np.abs(g).min(0) >= 0.05  # well conditioned (k, c)
    e_abs_t = np.abs(t).mean(0)
    out = {"n": n, "k": k, "c": c, "well_conditioned_fraction": float(ok.mean()),
           "flip_fraction": float(flips.mean() / n)}  # fmt: skip
    args = tuple(map(jnp.asarray, (a_s, a_o, b_s, b_o)))
    cands = {
        "library": (*awareness_moments(*args), flip_counts(args[0], args[2])),
        "previous": (*welford_tiles(*args), flips_searchsorted(args[0], args[2])),
    }
    for name, (m, m2, f) in cands.items():
        m, v, f = np.asarray(m, np.float64), np.asarray(m2, np.float64) / n, np.asarray(f)
        out[name] = {
            "mean_err_over_E|t|_max": float((np.abs(m - mean) / e_abs_t)[ok].max()),
            "var_rel_err_max": float((np.abs(v - var) / var)[ok].max()),
            "var_rel_err_median": float(np.median((np.abs(v - var) / var)[ok])),
            "flips_exact": bool(np.array_equal(f, flips)),
        }
    lib = out["library"]
    out["pass"] = bool(lib["mean_err_over_E|t|_max"] <= 1e-5 and lib["var_rel_err_max"] <= 1e-5
                       and lib["flips_exact"])  # fmt: skip
    return out


def loadavg():
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def bench(names, n, k, c, reps):
    a = tuple(map(jnp.asarray, make_data(n, k, c)))
    fns = {name: FORMULATIONS[name] for name in names}
    for f in fns.values():  # compile + warm up
        jax.block_until_ready(f(*a))
    wall = {name: [] for name in names}
    cpu = {name: [] for name in names}
    loads = [loadavg()]
    for _ in range(reps):
        for name, f in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            jax.block_until_ready(f(*a))
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
        loads.append(loadavg())
    rows = []
    for name in names:
        t = min(wall[name])
        rows.append({
            "formulation": name, "n": n, "k_chunk": k, "c": c,
            "best_s": t, "median_s": float(np.median(wall[name])), "cpu_s": min(cpu[name]),
            "ns_per_element": t * 1e9 / (n * k * c),
            "projected_full_s": t * (N_FULL / n) * (K_FULL / k) * (C_FULL / c),
            "load_avg_1min": [min(loads), max(loads)],
        })  # fmt: skip
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer channels, skip slow ones")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--chunks", default="32,50,64", help="class chunk sizes for the library")
    results = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                           "awareness_kernel.json")
    ap.add_argument("--out", default=results,
                    help="where to save the JSON (a --quick run saves only when given)")
    ap.add_argument("--latents", type=int, default=N_FULL)
    args = ap.parse_args()
    c = 4032 if args.quick else C_FULL
    print(f"jax {jax.__version__}  devices {jax.devices()}  cpus {os.cpu_count()}  "
          f"load {loadavg():.2f}")  # fmt: skip

    acc = accuracy()
    print("accuracy vs float64 numpy (N=1000, K=16, C=512, well-conditioned entries):")
    for name in ("library", "previous"):
        r = acc[name]
        print(
            f"  {name:9s} mean |err|/E|t| max {r['mean_err_over_E|t|_max']:.2e}  "
            f"var rel err max {r['var_rel_err_max']:.2e} (median "
            f"{r['var_rel_err_median']:.1e})  flips exact {r['flips_exact']}"
        )
    print(f"  library passes (<=1e-5, flips exact): {acc['pass']}")

    names = list(FORMULATIONS)
    if args.quick:
        names = [x for x in names if not x.startswith("previous")]
    n = min(args.latents, N_FULL)
    rows = bench(names, n, 64, c, args.reps)
    for k in map(int, args.chunks.split(",")):
        if k != 64:
            rows += bench(["library total (moments + flips)"], n, k, c, args.reps)

    print(
        f"\n{'formulation':58s} {'K':>4s} {'C':>6s} {'best s':>8s} {'ns/el':>7s} "
        f"{'full table s':>12s}  load"
    )
    for r in rows:
        print(
            f"{r['formulation']:58s} {r['k_chunk']:4d} {r['c']:6d} {r['best_s']:8.3f} "
            f"{r['ns_per_element']:7.3f} {r['projected_full_s']:12.1f}  "
            f"{r['load_avg_1min'][0]:.1f}-{r['load_avg_1min'][1]:.1f}"
        )
    if args.quick and args.out == results:
        return
    from jaxaware.outputs import write_json

    write_json(args.out, {
        "target": {"n": N_FULL, "k": K_FULL, "c": C_FULL},
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "processor": platform.processor(), "jax": jax.__version__,
                    "xla_flags": os.environ.get("XLA_FLAGS", "")},
        "accuracy": acc, "timings": rows,
    })  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
