"""Benchmark: channel awareness at full scale and image generation, JAX vs PyTorch, for
both model families.

(a) Awareness for the BigGAN-deep-256 architecture (all classes x 48 CCBN layers x N
    latents) and for the original BigGAN-256 (the paper's model: 12 CCBN layers),
    jaxaware vs a straightforward PyTorch loop (per class: condition vectors, each
    layer's gain/bias modules, t, mean, variance) on the same weights, in the same run.
    Also the peak memory of each and, for deep-256, a lower bound from FLOPs and bytes
    over this machine's measured matmul and memory peaks.
(b) Images/s at batch 8 for BigGAN-deep-128 (vs pytorch_pretrained_biggan) and for the
    original BigGAN-128 (the 138k release architecture, vs our PyTorch reference of
    BigGAN-PyTorch's generator).

Each measurement runs in its own subprocess so that its peak RSS is its own (``--quick``
runs all but the first in this process: it checks that every part runs, and its memory
figures are not each part's own). Weights are
random (real ones cannot be downloaded here) but built and saved in the real format and
converted by ``jaxaware convert``'s code path; timings do not depend on weight values.

    python benchmarks/bench_biggan.py                  # full run (several minutes)
    python benchmarks/bench_biggan.py --quick          # small sizes, to check it works
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results", "biggan.json")


def _peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM; unlike ru_maxrss it is not inherited
    from the parent across fork + exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# -- the measured parts, each run in a fresh process -------------------------------------


def part_machine(args) -> dict:
    """Measured peaks: float32 matmul FLOP/s (JAX) and memory bandwidth (a large copy)."""
    import jax
    import jax.numpy as jnp

    n = 1024 if args.quick else 4096
    a = jnp.ones((n, n), jnp.float32)
    mm = jax.jit(lambda x: x @ x)
    mm(a).block_until_ready()
    best = min(_time(lambda: mm(a).block_until_ready()) for _ in range(3))
    x = jnp.ones(2**22 if args.quick else 2**27, jnp.float32)  # 16 / 512 MiB
    inc = jax.jit(lambda v: v + 1)
    inc(x).block_until_ready()
    bw = min(_time(lambda: inc(x).block_until_ready()) for _ in range(3))
    return {"matmul_gflops": 2 * n**3 / best / 1e9, "bandwidth_gbs": 2 * x.nbytes / bw / 1e9}


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def part_awareness_jax(args) -> dict:
    from jaxaware.model import load
    from jaxaware.awareness import compute_awareness

    model = load(args.weights)
    base = _rss_mb()
    classes = list(range(min(args.classes, model.config.num_classes)))
    # First call compiles; time the second, as a user running many analyses would see.
    run = lambda cls: compute_awareness(  # noqa: E731
        model, cls, args.latents, 1.0, 0, class_chunk=args.chunk
    )
    run(classes[: args.chunk])
    t0 = time.perf_counter()
    aw = run(classes)
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "peak_rss_mb": _peak_rss_mb(),
        "working_mb": _peak_rss_mb() - base,
        "channels": int(aw.category.shape[1]),
        "sites": len(aw.site_names),
    }


def part_awareness_torch(args) -> dict:
    import torch
    from convert.reference import load_checkpoint
    from convert.torch_awareness import torch_awareness

    model = load_checkpoint(args.checkpoint)
    base = _rss_mb()
    classes = list(range(args.torch_classes))
    # Give PyTorch its best thread count on this machine (on a shared 2-core CPU two
    # threads can be far slower than one).
    speed = {}
    for threads in sorted({1, os.cpu_count() or 1}):
        torch.set_num_threads(threads)
        torch_awareness(model, classes[:1], args.latents, 1.0, 0)  # warm-up
        speed[threads] = _time(lambda: torch_awareness(model, classes[:2], args.latents, 1.0, 0))
    torch.set_num_threads(min(speed, key=speed.get))
    t0 = time.perf_counter()
    torch_awareness(model, classes, args.latents, 1.0, 0)
    seconds = time.perf_counter() - t0
    return {
        "seconds_measured": seconds,
        "classes_measured": len(classes),
        # The loop is one identical iteration per class: time scales linearly.
        "seconds": seconds * args.classes / len(classes),
        "peak_rss_mb": _peak_rss_mb(),
        "working_mb": _peak_rss_mb() - base,
        "threads": torch.get_num_threads(),
    }


def part_images_jax(args) -> dict:
    import numpy as np

    from jaxaware.generate import generate
    from jaxaware.model import load
    from jaxaware.truncation import truncated_noise

    model = load(args.weights)
    z = truncated_noise(args.batch, model.config.z_dim, 0.4, 0)
    labels = np.random.RandomState(0).randint(0, model.config.num_classes, args.batch)
    generate(model, z, labels, 0.4).block_until_ready()
    times = [_time(lambda: generate(model, z, labels, 0.4).block_until_ready())
             for _ in range(args.repeats)]  # fmt: skip
    return {"best": args.batch / min(times), "median": args.batch / sorted(times)[len(times) // 2],
            "peak_rss_mb": _peak_rss_mb()}  # fmt: skip


def part_images_torch(args) -> dict:
    from convert.reference import load_checkpoint
    from convert.torch_awareness import torch_images_per_second

    model = load_checkpoint(args.checkpoint)
    r = torch_images_per_second(model, batch=args.batch, truncation=0.4, repeats=args.repeats)
    return {"best": r["best"], "median": r["median"], "peak_rss_mb": _peak_rss_mb(),
            "threads": r["threads"]}  # fmt: skip


def _reference_biggan(checkpoint: str):
    from convert.biggan_pytorch_io import read_checkpoint_dir
    from convert.biggan_pytorch_reference import build_generator, load_generator_state

    state, config, _ = read_checkpoint_dir(checkpoint, require_config=True)
    return load_generator_state(build_generator(config), state)


def part_awareness_torch_biggan(args) -> dict:
    from convert.torch_awareness import torch_awareness_biggan

    G = _reference_biggan(args.checkpoint)
    base = _rss_mb()
    measured = min(args.torch_classes, args.classes, G.n_classes)
    torch_awareness_biggan(G, [0], args.latents, 1.0, 0)  # warm-up
    t0 = time.perf_counter()
    torch_awareness_biggan(G, list(range(measured)), args.latents, 1.0, 0)
    seconds = (time.perf_counter() - t0) * args.classes / measured
    return {"seconds": seconds, "classes_measured": measured, "peak_rss_mb": _peak_rss_mb(),
            "working_mb": _peak_rss_mb() - base}


def part_images_torch_biggan(args) -> dict:
    from convert.torch_awareness import torch_images_per_second_biggan

    G = _reference_biggan(args.checkpoint)
    r = torch_images_per_second_biggan(G, batch=args.batch, repeats=args.repeats)
    return {"best": r["best"], "median": r["median"], "peak_rss_mb": _peak_rss_mb(),
            "threads": r["threads"]}


PARTS = {
    "machine": part_machine,
    "awareness-jax": part_awareness_jax,
    "awareness-torch": part_awareness_torch,
    "awareness-torch-biggan": part_awareness_torch_biggan,
    "images-jax": part_images_jax,
    "images-torch": part_images_torch,
    "images-torch-biggan": part_images_torch_biggan,
}


def run_part(name: str, args=None, **kw) -> dict:
    """Part ``name`` with options ``kw`` in a fresh process, or in this one with ``args``
    (the parsed options, which ``kw`` then overrides)."""
    print(f"  running {name} ...", flush=True)
    if args is not None:
        return PARTS[name](argparse.Namespace(**{**vars(args), **kw}))
    cmd = [sys.executable, __file__, "--part", name] + (["--quick"] if "quick" in kw else [])
    for k, v in kw.items():
        if k != "quick":
            cmd += [f"--{k.replace('_', '-')}", str(v)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        raise SystemExit(f"part {name} failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def make_models(workdir: str, names: list[str]) -> dict:
    """Random reference checkpoints in the real format, converted by our converter:
    ``biggan-deep-*`` as pytorch_pretrained_biggan saves them, others as BigGAN-PyTorch's
    ``utils.save_weights`` does."""
    from convert import convert
    from convert import biggan_pytorch_reference as R
    from convert.reference import get_config, random_biggan, save_checkpoint

    paths = {}
    for name in dict.fromkeys(names):
        ckpt, weights = os.path.join(workdir, name), os.path.join(workdir, name + "-jax")
        print(f"  building random {name} in the checkpoint format ...", flush=True)
        if not name.startswith(("biggan-", "tiny-")) or name.startswith("biggan-deep"):
            cfg = get_config(name)
            save_checkpoint(random_biggan(cfg, seed=0), cfg, ckpt, verify=False)
        else:
            R.save_checkpoint_dir(R.random_generator(name, seed=0, calib_batch=1), name, ckpt)
        convert(ckpt, weights)
        paths[name] = (ckpt, weights)
    return paths


def awareness_bounds(machine: dict, n: int, k: int, channels: int, z_dim: int) -> dict:
    """Lower bounds: the matmuls (2 maps x (N + K) rows x z_dim x C) at the matmul peak plus
    N*K*C elementwise probes (add, add, divide, 3 for the running moments: 6 flops, the
    divide counted as one) also at that peak; bytes: the kernels in, three [K, C] out."""
    flops = 2 * 2 * (n + k) * z_dim * channels + 6 * n * k * channels
    nbytes = 4 * (2 * 2 * z_dim * channels + 3 * k * channels)
    by_flops = flops / (machine["matmul_gflops"] * 1e9)
    by_bytes = nbytes / (machine["bandwidth_gbs"] * 1e9)
    return {"flops": flops, "bytes": nbytes, "seconds": max(by_flops, by_bytes),
            "seconds_by_flops": by_flops, "seconds_by_bytes": by_bytes}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--part", choices=PARTS)
    p.add_argument("--quick", action="store_true", help="small sizes: checks the script runs")
    p.add_argument("--weights")
    p.add_argument("--checkpoint")
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--torch-classes", type=int, default=100,
                   help="classes the PyTorch loop runs (its time is scaled to --classes)")
    p.add_argument("--latents", type=int, default=1000)
    p.add_argument("--chunk", type=int, default=100, help="classes per awareness chunk")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=RESULTS)
    args = p.parse_args()
    if args.part:
        print(json.dumps(PARTS[args.part](args)))
        return
    if args.quick:
        args.classes, args.torch_classes, args.latents, args.repeats = 16, 2, 64, 1

    from jaxaware.environment import cpu_model

    print(f"machine: {cpu_model()}, {os.cpu_count()} cores")
    machine = run_part("machine", **({"quick": True} if args.quick else {}))
    here = args if args.quick else None  # quick: the other parts in this process
    names = {"deep": ("biggan-deep-256", "biggan-deep-128"),
             "biggan": ("biggan-256", "biggan-128-138k")}
    if args.quick:  # the small test architectures: checks every part runs, in seconds
        names = {"deep": ("tiny", "tiny"), "biggan": ("tiny-64-hier", "tiny-32-hier")}
    common = {"classes": args.classes, "latents": args.latents}
    aw, im = {}, {}
    with tempfile.TemporaryDirectory() as work:
        for family, (aw_name, im_name) in names.items():
            models = make_models(work, [aw_name, im_name])
            (ckpt_a, w_a), (ckpt_i, w_i) = models[aw_name], models[im_name]
            torch_suffix = "" if family == "deep" else "-biggan"
            aw[family] = (aw_name, run_part("awareness-jax", here, weights=w_a,
                                            chunk=args.chunk, **common),
                          run_part("awareness-torch" + torch_suffix, here, checkpoint=ckpt_a,
                                   torch_classes=args.torch_classes, **common))
            im[family] = (im_name, run_part("images-jax", here, weights=w_i, batch=args.batch,
                                            repeats=args.repeats),
                          run_part("images-torch" + torch_suffix, here, checkpoint=ckpt_i,
                                   batch=args.batch, repeats=args.repeats))
    _, aj, at = aw["deep"]
    ij, it = im["deep"][1:]
    bound = awareness_bounds(machine, args.latents, args.classes, aj["channels"], 128)
    result = {
        "machine": {**machine, "cpu": cpu_model(),
                    "cores": os.cpu_count(), "load_avg_1m": os.getloadavg()[0]},  # fmt: skip
        "awareness": {"classes": args.classes, "latents": args.latents, "sites": aj["sites"],
                      "channels": aj["channels"], "jax": aj, "torch": at,
                      "speedup": at["seconds"] / aj["seconds"], "lower_bound": bound},  # fmt: skip
        "images": {"model": im["deep"][0], "batch": args.batch, "jax": ij, "torch": it,
                   "ratio": ij["best"] / it["best"]},  # fmt: skip
        "biggan": {
            "awareness": {"model": aw["biggan"][0], "classes": args.classes,
                          "latents": args.latents, "sites": aw["biggan"][1]["sites"],
                          "channels": aw["biggan"][1]["channels"], "jax": aw["biggan"][1],
                          "torch": aw["biggan"][2],
                          "speedup": aw["biggan"][2]["seconds"] / aw["biggan"][1]["seconds"]},
            "images": {"model": im["biggan"][0], "batch": args.batch, "jax": im["biggan"][1],
                       "torch": im["biggan"][2],
                       "ratio": im["biggan"][1]["best"] / im["biggan"][2]["best"]},
        },
        "quick": args.quick,
    }
    rows = [
        (f"awareness, {aw['deep'][0]}",
         f"{args.classes} cls x {aj['sites']} layers x N={args.latents}",
         f"{aj['seconds']:.2f} s", f"{at['seconds']:.1f} s"
         + (f" ({at['classes_measured']} cls measured)" if at["classes_measured"] < args.classes
            else ""), f"{result['awareness']['speedup']:.0f}x"),
        ("  peak RSS / working", "", f"{aj['peak_rss_mb']:.0f} / {aj['working_mb']:.0f} MB",
         f"{at['peak_rss_mb']:.0f} / {at['working_mb']:.0f} MB", ""),
        ("  lower bound", f"{bound['flops'] / 1e9:.0f} GFLOP", f"{bound['seconds']:.2f} s", "",
         f"{bound['seconds'] / aj['seconds']:.0%} of bound"),
        (f"images/s, {im['deep'][0]}", f"batch {args.batch}", f"{ij['best']:.2f}",
         f"{it['best']:.2f}",
         f"{result['images']['ratio']:.2f}x"),
    ]  # fmt: skip
    ba, bi = result["biggan"]["awareness"], result["biggan"]["images"]
    rows += [
        (f"awareness, {ba['model']}", f"{args.classes} cls x {ba['sites']} layers x "
         f"N={args.latents}", f"{ba['jax']['seconds']:.2f} s", f"{ba['torch']['seconds']:.1f} s"
         + (f" ({ba['torch']['classes_measured']} cls measured)"
            if ba["torch"]["classes_measured"] < args.classes else ""),
         f"{ba['speedup']:.0f}x"),
        ("  peak RSS / working", "",
         f"{ba['jax']['peak_rss_mb']:.0f} / {ba['jax']['working_mb']:.0f} MB",
         f"{ba['torch']['peak_rss_mb']:.0f} / {ba['torch']['working_mb']:.0f} MB", ""),
        (f"images/s, {bi['model']}", f"batch {args.batch}", f"{bi['jax']['best']:.2f}",
         f"{bi['torch']['best']:.2f}", f"{bi['ratio']:.2f}x"),
    ]
    head = ("benchmark", "size", "jaxaware", "pytorch", "ratio")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(5)]
    for r in [head, tuple("-" * w for w in widths), *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    print(f"machine peaks: matmul {machine['matmul_gflops']:.0f} GFLOP/s, "
          f"memory {machine['bandwidth_gbs']:.1f} GB/s")  # fmt: skip
    if not args.quick or args.out != RESULTS:
        from jaxaware.outputs import write_json

        write_json(args.out, result)
        print(f"saved {args.out}")


if __name__ == "__main__":
    main()
