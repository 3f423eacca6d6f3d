"""Benchmark: the channel-classifier response sweep (He et al., Sec. 3.1 / App. A).

(a) Exact sweep, images/s: jaxaware's :func:`~jaxaware.analysis.exact_response` (the
    generator up to the ablated site once per latent batch, the rest ``vmap``-ed over
    edits, the classifier fused in) against the straightforward PyTorch loop GAN
    Dissection's ``nethook`` suggests: for every channel a forward hook on that CCBN
    module (the site's ``reference_name``) zeroes the channel and one full forward runs
    (eval, no_grad), each batch then classified by the world's classifier ported to
    PyTorch (with ``--classifier``, a user's JAX classifier, the PyTorch side runs the
    generator only: a conservative ratio). Both count the unedited images too. A parity
    check compares the two sides' ablated images.

    Both sides run the *same* weights, in the family's real PyTorch model:

    * original BigGAN (``biggan``, the default model ``toyworld-biggan``): the
      BigGAN-PyTorch reference generator (:mod:`convert.biggan_pytorch_reference`) with
      random weights and exactly the benchmarked model's architecture, saved as
      BigGAN-PyTorch's ``G_ema.pth`` + ``state_dict.pth`` and converted by
      ``convert.convert`` into the jaxaware model the exact sweep runs on;
    * BigGAN-deep: ``pytorch_pretrained_biggan`` on the benchmarked model itself, exported
      with ``convert.export``; if export refuses it but the architecture fits that
      package, a random checkpoint in its format, converted as above;
    * an architecture with no PyTorch reference (e.g. ``toyworld-biggan-deep``'s
      constant-width layer table): the baseline is skipped, with the reason printed, and
      the exact sweep runs on the benchmarked model.

    Timings do not depend on weight values (``benchmarks/bench_biggan.py`` does the same).
(b) First order: :func:`~jaxaware.analysis.first_order_response` gives every channel of
    every CCBN site from one forward and one backward pass per latent batch, on the
    benchmarked model's own (trained) weights -- the shipped default unless ``--weights``
    -- since only trained weights make a ranking meaningful. Its speed-up is the exact
    sweep's time for the benchmarked site divided by the first-order time for *all* sites
    (with ``--all-sites``, also the exact sweep over all sites), both on those weights;
    its Spearman rank correlation with the exact drops is reported per class (target
    >= 0.8). The JSON records which weights each number used (``weights`` entries).

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
SEED = 0  # of the random-weight reference checkpoints


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


# -- the PyTorch side: which model, on which weights --------------------------------------


def _params_shapes(model) -> dict:
    import jax

    return jax.tree_util.tree_map(np.shape, model.variables["params"])


def _checked_same_architecture(model, converted):
    """The converted model, after checking it has every parameter of ``model`` with the same
    shape (the statistic rows may differ: a reference checkpoint stores one)."""
    if _params_shapes(converted) != _params_shapes(model):
        raise RuntimeError(
            "the random reference checkpoint converted to parameters of other shapes than "
            f"{model.model_id}'s: the benchmark would compare different architectures"
        )
    return converted


def _random_biggan_pytorch(model, work: str) -> dict:
    """Random BigGAN-PyTorch generator of ``model``'s architecture, saved in its format and
    converted; the PyTorch model is read back from the saved files."""
    from convert import biggan_pytorch_reference as R
    from convert import convert
    from convert.biggan_pytorch_io import read_checkpoint_dir
    from jaxaware import load
    from jaxaware.errors import JaxawareError

    train_config = model.config.to_pytorch_config()
    try:
        G = R.random_generator(train_config, seed=SEED)
    except JaxawareError as why:  # BigGAN-PyTorch cannot build this architecture
        return {"skipped": f"{model.model_id}'s architecture has no PyTorch reference: {why}"}
    ckpt, weights = os.path.join(work, "ckpt"), os.path.join(work, "weights")
    R.save_checkpoint_dir(G, train_config, ckpt)
    convert(ckpt, weights)
    state, config, _ = read_checkpoint_dir(ckpt, require_config=True)
    G = R.load_generator_state(R.build_generator(config), state)

    def forward(z, label):
        labels = np.full(len(z), label)
        return lambda: G(z, R.class_condition(G, labels))  # G(z, G.shared(y)) as the original

    return {
        "torch_model": G,
        "jax_model": _checked_same_architecture(model, load(weights)),
        "forward": forward,
        "weights": f"random (seed {SEED}) BigGAN-PyTorch G_ema.pth of {model.model_id}'s "
        "architecture, converted by convert.convert",
        "reference": "convert.biggan_pytorch_reference.BigGANGenerator (BigGAN-PyTorch)",
    }


def _deep_forward(torch_model, num_classes: int):
    import torch

    def forward(z, label):
        y = torch.zeros(len(z), num_classes)
        y[:, label] = 1.0
        return lambda: torch_model(z, y, 1.0)

    return forward


def _biggan_deep(model, work: str, weights_label: str) -> dict:
    """``pytorch_pretrained_biggan`` on ``model`` exported with ``convert.export``; else a
    random checkpoint in that package's format, converted; else why there is none."""
    from convert.biggan_deep import check_reference_compatible, config_json
    from convert.export import export
    from convert.reference import load_checkpoint, random_biggan, save_checkpoint
    from jaxaware.errors import JaxawareError

    cfg = model.config
    ckpt = os.path.join(work, "ckpt")
    try:
        torch_model = load_checkpoint(export(model, ckpt))
        return {
            "torch_model": torch_model,
            "jax_model": model,
            "forward": _deep_forward(torch_model, cfg.num_classes),
            "weights": f"{weights_label}, exported with convert.export",
            "reference": "pytorch_pretrained_biggan.BigGAN",
        }
    except JaxawareError as e:
        try:
            check_reference_compatible(cfg)
        except JaxawareError as why:
            return {"skipped": f"{model.model_id}'s architecture has no PyTorch reference: {why}"}
        refused = str(e)
    from pytorch_pretrained_biggan import BigGANConfig as RefConfig

    from convert import convert
    from jaxaware import load

    ref_cfg = RefConfig.from_dict(json.loads(config_json(cfg)))
    save_checkpoint(random_biggan(ref_cfg, seed=SEED), ref_cfg, ckpt, verify=False)
    convert(ckpt, os.path.join(work, "weights"))
    torch_model = load_checkpoint(ckpt)
    return {
        "torch_model": torch_model,
        "jax_model": _checked_same_architecture(model, load(os.path.join(work, "weights"))),
        "forward": _deep_forward(torch_model, cfg.num_classes),
        "weights": f"random (seed {SEED}) pytorch_pretrained_biggan checkpoint of "
        f"{model.model_id}'s architecture, converted by convert.convert (export refused "
        f"the model: {refused})",
        "reference": "pytorch_pretrained_biggan.BigGAN",
    }


def reference_baseline(model, work: str, weights_label: str) -> dict:
    """The PyTorch side for ``model``'s architecture: ``torch_model``, ``jax_model`` (the
    jaxaware model holding the same weights), ``forward(z, label)`` (a closure running one
    batch: NCHW images), ``weights`` and ``reference`` (descriptions); or ``{"skipped":
    reason}``. Files go under ``work``."""
    family = model.config.family
    try:
        import torch  # noqa: F401
    except ImportError:
        return {"skipped": "torch is not installed"}
    if family == "biggan":
        return _random_biggan_pytorch(model, work)
    if family == "biggan-deep":
        try:
            import pytorch_pretrained_biggan  # noqa: F401
        except ImportError:
            return {"skipped": "pytorch_pretrained_biggan (BigGAN-deep's reference) is not "
                    "installed"}  # fmt: skip
        return _biggan_deep(model, work, weights_label)
    return {"skipped": f"the {family} family has no PyTorch reference"}


def torch_hook_loop(forward, module, classify, channels, label, batch: int) -> dict:
    """One full forward per channel (``forward()``: NCHW images) with a hook on ``module``
    zeroing it, each batch then classified (``classify``: NCHW images -> logits; None:
    generator only); also the unedited batch. Returns timings, the thread count and the
    images of the first channel."""
    import torch

    first = None

    def run(chs) -> float:
        nonlocal first
        t0 = time.perf_counter()
        with torch.no_grad():
            images = forward()  # the unedited images
            if classify is not None:
                torch.softmax(classify(images), dim=-1)[:, label]
            for c in chs:

                def hook(mod, args, out, c=c):  # zero the channel (before its ReLU: same)
                    out = out.clone()
                    out[:, c] = 0.0
                    return out

                handle = module.register_forward_hook(hook)
                try:
                    images = forward()
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
    n = batch * (len(channels) + 1)
    return {
        "seconds": seconds,
        "images": n,
        "images_per_s": n / seconds,
        "threads": torch.get_num_threads(),
        "first_channel_images": first,
    }


def timed_exact(model, clf, classes, cols, kw, warm):
    """:func:`exact_response`, the first call compiling, the second timed."""
    from jaxaware.analysis import exact_response

    exact_response(model, clf, classes[:1], cols, **warm)
    return exact_response(model, clf, classes, cols, **kw)


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
    with tempfile.TemporaryDirectory() as work:
        result = run(args, work)
    out = args.out or (None if args.quick else RESULTS)
    if out:
        from jaxaware.outputs import write_json

        write_json(out, result)
        print(f"saved {out}")


def run(args, work: str) -> dict:
    from jaxaware import load
    from jaxaware.analysis import first_order_response, site_columns, spearman
    from jaxaware.analysis.classifier import as_classifier, load_classifier_spec
    from jaxaware.generate import generate
    from jaxaware.interventions import flat_zero
    from jaxaware.sites import resolve_site, site_table

    model = load(args.weights)  # the benchmarked model, trained weights
    weights = f"{model.model_id}'s own weights ({args.weights or 'the shipped default'})"
    cfg = model.config
    if args.classifier:
        clf = load_classifier_spec(args.classifier, model)
    else:
        clf = as_classifier(None, model)
    site = resolve_site(cfg, args.site, kinds=("ccbn",))
    n_ch = min(args.channels or site.channels, site.channels)
    cols = site_columns(cfg, site)[:n_ch]
    k = cfg.num_classes
    if args.classes:
        classes = [int(c) for c in args.classes.split(",")]
    else:
        classes = sorted(set(np.linspace(0, k - 1, min(4, k)).astype(int).tolist()))
    kw = {"num_latents": args.latents, "truncation": 1.0, "seed": 1, "batch_size": args.batch}
    warm = {**kw, "num_latents": max(2, args.batch)}  # one latent batch: compiles
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"model {model.model_id}, site {site.name} ({n_ch} of {site.channels} channels), "
          f"{len(classes)} classes, M = {args.latents}", flush=True)  # fmt: skip

    # (a) the PyTorch reference and, on the same weights, the jaxaware exact sweep.
    base = reference_baseline(model, work, weights)
    if "skipped" in base:
        print(f"PyTorch baseline skipped: {base['skipped']}", flush=True)
    sweep_model = base.get("jax_model", model)
    sweep_weights = base.get("weights", weights)
    ex = timed_exact(sweep_model, clf, classes, cols, kw, warm)
    jax_side = {"seconds": ex.seconds, "images": ex.images,
                "images_per_s": ex.images / ex.seconds, "weights": sweep_weights}  # fmt: skip

    torch_side, parity = None, None
    if "torch_model" in base:
        import torch

        z = sweep_model.family.sample_latents(args.latents, sweep_model.config, 1.0, 1)
        zt = torch.from_numpy(np.asarray(z, np.float32))
        module = base["torch_model"].get_submodule(site.reference_name)
        classify = None
        if args.classifier is None:  # the world's classifier, ported: a like-for-like loop
            from jaxaware.toyworld import load_classifier

            classify = torch_world_classifier(load_classifier().params)
        total = {"seconds": 0.0, "images": 0, "with_classifier": classify is not None}
        for c in classes:
            r = torch_hook_loop(base["forward"](zt, c), module, classify, list(range(n_ch)), c,
                                len(z))  # fmt: skip
            if parity is None:
                edit = flat_zero(sweep_model.config, [site.offset])
                ours = generate(sweep_model, z, np.full(len(z), c), 1.0, interventions=edit)
                parity = float(np.abs(np.asarray(ours) - r["first_channel_images"]).max())
            total["seconds"] += r["seconds"]
            total["images"] += r["images"]
            total["threads"] = r["threads"]
        torch_side = {**total, "images_per_s": total["images"] / total["seconds"],
                      "weights": base["weights"], "reference": base["reference"],
                      "module": site.reference_name}  # fmt: skip

    # (b) first order on the trained weights, against the exact sweep on the same weights.
    ex_trained = ex if sweep_model is model else timed_exact(model, clf, classes, cols, kw, warm)
    first_order_response(model, clf, classes[:1], **warm)  # compiles
    fo = first_order_response(model, clf, classes, **kw)
    fo_site = fo.drop[:, cols[:, 0]]
    rho_site = [spearman(a, b) for a, b in zip(fo_site, ex_trained.drop)]
    result_all = None
    if args.all_sites:
        everything = np.arange(fo.drop.shape[1])[:, None]
        ex_all = timed_exact(model, clf, classes, everything, kw, warm)  # every start block
        rho_all = [spearman(a, b) for a, b in zip(fo.drop, ex_all.drop)]
        per_site = {}
        for s in site_table(cfg):
            if s.channels > 2:
                cut = slice(s.offset, s.offset + s.channels)
                per_site[s.name] = float(np.nanmean(
                    [spearman(a[cut], b[cut]) for a, b in zip(fo.drop, ex_all.drop)]))  # fmt: skip
        result_all = {"exact_seconds": ex_all.seconds, "exact_images": ex_all.images,
                      "speedup": ex_all.seconds / fo.seconds, "spearman_per_class": rho_all,
                      "mean_spearman": float(np.nanmean(rho_all)),
                      "mean_spearman_per_site": per_site}  # fmt: skip
    result = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "load_avg_1m": os.getloadavg()[0],
        },
        "model": model.model_id,
        "family": cfg.family,
        "site": site.name,
        "channels": n_ch,
        "classes": classes,
        "latents": args.latents,
        "batch": args.batch,
        "weights": {
            "benchmarked": weights,
            "exact_and_torch": sweep_weights,
            "first_order_and_spearman": weights,
        },
        "exact": jax_side,
        "torch": torch_side,
        "torch_skipped": base.get("skipped"),
        "speedup_vs_torch": (
            jax_side["images_per_s"] / torch_side["images_per_s"] if torch_side else None
        ),
        "parity_max_abs_diff": parity,
        "first_order": {
            "seconds": fo.seconds,
            "channels": int(fo.drop.shape[1]),
            "exact_site_seconds": ex_trained.seconds,
            "speedup_vs_exact_site": ex_trained.seconds / fo.seconds,
            "all_sites": result_all,
            "weights": weights,
        },
        "spearman": {
            "site_per_class": rho_site,
            "site_mean": float(np.nanmean(rho_site)),
            "weights": weights,
        },
        "quick": args.quick,
    }
    rows = [("exact sweep, images/s", f"{jax_side['images_per_s']:.0f}",
             f"{torch_side['images_per_s']:.0f}" if torch_side else "-",
             f"{result['speedup_vs_torch']:.1f}x" if torch_side else "-", ">= 5x"),
            (f"first order ({fo.drop.shape[1]} ch) vs exact ({n_ch} ch of {site.name})",
             f"{fo.seconds:.2f} s", f"{ex_trained.seconds:.2f} s",
             f"{ex_trained.seconds / fo.seconds:.0f}x", ">= 100x")]  # fmt: skip
    if result_all:
        rows.append((f"first order vs exact, all {fo.drop.shape[1]} channels",
                     f"{fo.seconds:.2f} s", f"{ex_all.seconds:.1f} s",
                     f"{result_all['speedup']:.0f}x", ">= 100x"))  # fmt: skip
    rows.append((f"Spearman(first order, exact), {site.name}", f"{np.nanmean(rho_site):.3f}",
                 "", "", ">= 0.8"))  # fmt: skip
    if result_all:
        rows.append(("Spearman(first order, exact), all channels",
                     f"{result_all['mean_spearman']:.3f}", "", "", ">= 0.8"))  # fmt: skip
    head = ("benchmark", "jaxaware", "baseline", "ratio", "target")
    widths = [max(len(r[i]) for r in [*rows, head]) for i in range(5)]
    for r in [head, tuple("-" * w for w in widths), *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    print(f"weights: exact sweep{' and PyTorch baseline' if torch_side else ''}: "
          f"{sweep_weights}; first order and Spearman: {weights}")  # fmt: skip
    if torch_side:
        print(f"baseline: {torch_side['reference']}, hook on {site.reference_name}; parity: "
              f"max |jaxaware - PyTorch| of the ablated images {parity:.2e}; torch threads "
              f"{torch_side['threads']}")  # fmt: skip
    else:
        print(f"PyTorch baseline skipped: {base['skipped']}")
    return result


if __name__ == "__main__":
    main()
