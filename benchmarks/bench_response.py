"""Benchmark: the channel-classifier response sweep (He et al., Sec. 3.1 / App. A).

(a) Exact sweep, images/s: jaxaware's :func:`~jaxaware.analysis.exact_response` (the
    generator up to the ablated site once per latent batch, the rest ``vmap``-ed over
    edits, the classifier fused in) against the straightforward PyTorch loop GAN
    Dissection's ``nethook`` suggests: for every channel a forward hook on that CCBN
    module zeroes the channel and one full forward runs (``pytorch_pretrained_biggan``,
    eval, no_grad), on the *same* model exported with ``convert.export``, each batch then
    classified by the world's classifier ported to PyTorch (with ``--classifier``, a user's
    JAX classifier, the PyTorch side runs the generator only: a conservative ratio). Both
    count the unedited images too. A parity check compares the two sides' ablated images.
(b) First order: :func:`~jaxaware.analysis.first_order_response` gives every channel of
    every CCBN site from one forward and one backward pass per latent batch. Its speed-up
    is the exact sweep's time for the benchmarked site divided by the first-order time for
    *all* sites (with ``--all-sites``, also the exact sweep over all sites); its Spearman
    rank correlation with the exact drops is reported per class (target >= 0.8).

    python benchmarks/bench_response.py                  # full: default model, L0, M = 64
    python benchmarks/bench_response.py --all-sites      # also the exact sweep of all sites
    python benchmarks/bench_response.py --quick          # tiny sizes, to check it runs

Results go to ``benchmarks/results/response.json`` (not with ``--quick`` unless ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
RESULTS = os.path.join(ROOT, "benchmarks", "results", "response.json")


def torch_world_classifier(params):
    """The toy world's classifier (:class:`jaxaware.toyworld.ToyCNN`: 3x3 SAME convs with
    ReLU and 2x2 average pooling, a global mean, a ReLU dense layer, the logits) in PyTorch,
    from its Flax params, for the baseline to classify what it generates."""
    import torch
    from torch import nn

    layers = []
    i = 0
    while f"conv{i}" in params:
        k = np.asarray(params[f"conv{i}"]["kernel"])  # [3, 3, in, out]
        conv = nn.Conv2d(k.shape[2], k.shape[3], 3, padding=1)
        conv.weight.data = torch.from_numpy(k.transpose(3, 2, 0, 1).copy())
        conv.bias.data = torch.from_numpy(np.asarray(params[f"conv{i}"]["bias"]).copy())
        layers += [conv, nn.ReLU(), nn.AvgPool2d(2)]
        i += 1

    def dense(name):
        lin = nn.Linear(*np.asarray(params[name]["kernel"]).shape)
        lin.weight.data = torch.from_numpy(np.asarray(params[name]["kernel"]).T.copy())
        lin.bias.data = torch.from_numpy(np.asarray(params[name]["bias"]).copy())
        return lin

    convs, feats, logits = nn.Sequential(*layers), dense("features"), dense("logits")

    def classify(images_nchw):
        h = convs(images_nchw).mean(dim=(2, 3))
        return logits(torch.relu(feats(h)))

    return classify


def torch_hook_loop(torch_model, classify, config, site, channels, z, label,
                    truncation) -> dict:
    """One full forward per channel with a hook zeroing it at ``site``, each batch then
    classified (``classify``: NCHW images -> logits; None: generator only); also the
    unedited batch. Returns timings, the thread count and the images of the first channel."""
    import torch

    module = torch_model.get_submodule(site.reference_name)
    zt = torch.from_numpy(np.asarray(z, np.float32))
    y = torch.zeros(len(z), config.num_classes)
    y[:, label] = 1.0
    first = None

    def run(chs) -> float:
        nonlocal first
        t0 = time.perf_counter()
        with torch.no_grad():
            images = torch_model(zt, y, truncation)  # the unedited images
            if classify is not None:
                torch.softmax(classify(images), dim=-1)[:, label]
            for c in chs:
                def hook(mod, args, out, c=c):  # zero the channel (before its ReLU: same)
                    out = out.clone()
                    out[:, c] = 0.0
                    return out

                handle = module.register_forward_hook(hook)
                try:
                    images = torch_model(zt, y, truncation)
                finally:
                    handle.remove()
                if classify is not None:
                    torch.softmax(classify(images), dim=-1)[:, label]
                if first is None:
                    first = images.permute(0, 2, 3, 1).numpy()
        return time.perf_counter() - t0

    speed = {}
    for threads in sorted({1, os.cpu_count() or 1}):  # its best thread count here
        torch.set_num_threads(threads)
        run(channels[:1])  # warm-up
        speed[threads] = run(channels[:2])
    torch.set_num_threads(min(speed, key=speed.get))
    seconds = run(channels)
    n = len(z) * (len(channels) + 1)
    return {"seconds": seconds, "images": n, "images_per_s": n / seconds,
            "threads": torch.get_num_threads(), "first_channel_images": first}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--weights", default=None, help="jaxaware weights (default: shipped model)")
    p.add_argument("--classifier", default=None, metavar="FILE.py:NAME",
                   help="images -> logits (default: the toy world's, for world models)")
    p.add_argument("--site", default="L0")
    p.add_argument("--classes", default=None, help="default: 4 classes spread over the range")
    p.add_argument("--latents", type=int, default=64, help="M latent pairs per class")
    p.add_argument("--channels", type=int, default=None, help="first N channels of the site")
    p.add_argument("--batch", type=int, default=16, help="latents per batch (jaxaware)")
    p.add_argument("--all-sites", action="store_true", help="also time the exact sweep of "
                   "every CCBN site (the honest denominator of the first-order speed-up)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks the script runs")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    if args.quick:
        args.latents, args.channels, args.batch = 4, 6, 4
        args.classes = args.classes or "0"

    from jaxaware import load
    from jaxaware.analysis import exact_response, first_order_response, site_columns
    from jaxaware.analysis import spearman
    from jaxaware.analysis.classifier import as_classifier, load_classifier_spec
    from jaxaware.generate import generate
    from jaxaware.interventions import flat_zero
    from jaxaware.sites import resolve_site, site_table

    model = load(args.weights)
    cfg = model.config
    clf = load_classifier_spec(args.classifier, model) if args.classifier else \
        as_classifier(None, model)
    site = resolve_site(cfg, args.site, kinds=("ccbn",))
    n_ch = min(args.channels or site.channels, site.channels)
    cols = site_columns(cfg, site)[:n_ch]
    k = cfg.num_classes
    classes = [int(c) for c in args.classes.split(",")] if args.classes else \
        sorted(set(np.linspace(0, k - 1, min(4, k)).astype(int).tolist()))
    kw = dict(num_latents=args.latents, truncation=1.0, seed=1, batch_size=args.batch)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"model {model.model_id}, site {site.name} ({n_ch} of {site.channels} channels), "
          f"{len(classes)} classes, M = {args.latents}", flush=True)

    # (a) exact sweep, jaxaware: the first call compiles; time the second.
    warm = {**kw, "num_latents": max(2, args.batch)}  # one latent batch: compiles
    exact_response(model, clf, classes[:1], cols, **warm)
    ex = exact_response(model, clf, classes, cols, **kw)
    jax_side = {"seconds": ex.seconds, "images": ex.images,
                "images_per_s": ex.images / ex.seconds}

    torch_side, parity = None, None
    try:
        import torch  # noqa: F401
    except ImportError:
        print("torch is not installed: no PyTorch baseline")
    else:
        from convert.export import export
        from convert.reference import load_checkpoint

        z = model.family.sample_latents(args.latents, cfg, 1.0, 1)
        with tempfile.TemporaryDirectory() as work:
            torch_model = load_checkpoint(export(model, os.path.join(work, "ckpt")))
        classify = None
        if args.classifier is None:  # the world's classifier, ported: a like-for-like loop
            from jaxaware.toyworld import load_classifier

            classify = torch_world_classifier(load_classifier().params)
        total = {"seconds": 0.0, "images": 0, "with_classifier": classify is not None}
        for c in classes:
            r = torch_hook_loop(torch_model, classify, cfg, site, list(range(n_ch)), z, c, 1.0)
            if parity is None:
                ours = np.asarray(generate(model, z, np.full(len(z), c), 1.0,
                                           interventions=flat_zero(cfg, [site.offset])))
                parity = float(np.abs(ours - r["first_channel_images"]).max())
            total["seconds"] += r["seconds"]
            total["images"] += r["images"]
            total["threads"] = r["threads"]
        torch_side = {**total, "images_per_s": total["images"] / total["seconds"]}

    # (b) first order: every channel of every site; the first call compiles.
    first_order_response(model, clf, classes[:1], **warm)
    fo = first_order_response(model, clf, classes, **kw)
    fo_site = fo.drop[:, cols[:, 0]]
    rho_site = [spearman(a, b) for a, b in zip(fo_site, ex.drop)]
    result_all = None
    if args.all_sites:
        everything = np.arange(fo.drop.shape[1])[:, None]
        exact_response(model, clf, classes[:1], everything, **warm)  # every start block
        ex_all = exact_response(model, clf, classes, everything, **kw)
        rho_all = [spearman(a, b) for a, b in zip(fo.drop, ex_all.drop)]
        per_site = {s.name: float(np.nanmean([spearman(a[s.offset:s.offset + s.channels],
                                                       b[s.offset:s.offset + s.channels])
                                             for a, b in zip(fo.drop, ex_all.drop)]))
                    for s in site_table(cfg) if s.channels > 2}
        result_all = {"exact_seconds": ex_all.seconds, "exact_images": ex_all.images,
                      "speedup": ex_all.seconds / fo.seconds, "spearman_per_class": rho_all,
                      "mean_spearman": float(np.nanmean(rho_all)),
                      "mean_spearman_per_site": per_site}
    result = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "load_avg_1m": os.getloadavg()[0]},
        "model": model.model_id, "site": site.name, "channels": n_ch, "classes": classes,
        "latents": args.latents, "batch": args.batch,
        "exact": jax_side, "torch": torch_side,
        "speedup_vs_torch": (jax_side["images_per_s"] / torch_side["images_per_s"]
                             if torch_side else None),
        "parity_max_abs_diff": parity,
        "first_order": {"seconds": fo.seconds, "channels": int(fo.drop.shape[1]),
                        "speedup_vs_exact_site": ex.seconds / fo.seconds,
                        "all_sites": result_all},
        "spearman": {"site_per_class": rho_site, "site_mean": float(np.nanmean(rho_site))},
        "quick": args.quick,
    }
    rows = [("exact sweep, images/s", f"{jax_side['images_per_s']:.0f}",
             f"{torch_side['images_per_s']:.0f}" if torch_side else "-",
             f"{result['speedup_vs_torch']:.1f}x" if torch_side else "-", ">= 5x"),
            (f"first order ({fo.drop.shape[1]} ch) vs exact ({n_ch} ch of {site.name})",
             f"{fo.seconds:.2f} s", f"{ex.seconds:.2f} s",
             f"{ex.seconds / fo.seconds:.0f}x", ">= 100x")]
    if result_all:
        rows.append((f"first order vs exact, all {fo.drop.shape[1]} channels",
                     f"{fo.seconds:.2f} s", f"{ex_all.seconds:.1f} s",
                     f"{result_all['speedup']:.0f}x", ">= 100x"))
    rows.append((f"Spearman(first order, exact), {site.name}", f"{np.nanmean(rho_site):.3f}",
                 "", "", ">= 0.8"))
    if result_all:
        rows.append(("Spearman(first order, exact), all channels",
                     f"{result_all['mean_spearman']:.3f}", "", "", ">= 0.8"))
    head = ("benchmark", "jaxaware", "baseline", "ratio", "target")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(5)]
    for r in [head, tuple("-" * w for w in widths), *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    if parity is not None:
        print(f"parity: max |jaxaware - PyTorch| of the ablated images {parity:.2e}; torch "
              f"threads {torch_side['threads']}")
    out = args.out or (None if args.quick else RESULTS)
    if out:
        from jaxaware.atomic import atomic_write

        with atomic_write(out, "w") as f:
            json.dump(result, f, indent=2)
        print(f"saved {out}")


if __name__ == "__main__":
    main()
