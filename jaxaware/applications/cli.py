"""``jaxaware edit``, ``jaxaware hybridize`` and ``jaxaware segment`` (He et al., Sec. 4.1-4.3).

Each writes a figure (``--out``, PNG) and a JSON of its numbers next to it (the same path
with ``.json``; keys in the README section of the applications). On a toy-world model the
JSON holds the world's scores (classifier, and the part segmenter once it ships); on any
other model, the settings, the channels used and what can be measured without references.
Registered by :mod:`jaxaware.cli` through its plugin list.
"""

from __future__ import annotations

import argparse

from jaxaware.errors import JaxawareError


def _floats(text: str, what: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise JaxawareError(f"{what} must be numbers separated by commas, e.g. 2,4,8; got "
                            f"{text!r}") from None


def _ints(text: str, what: str) -> list[int]:
    out = []
    for x in (t.strip() for t in text.split(",")):
        if not x:
            continue
        try:
            out.append(int(x))
        except ValueError:
            raise JaxawareError(f"{what} must be integers separated by commas, e.g. 3,5; got "
                                f"{text!r}") from None
    if not out:
        raise JaxawareError(f"{what} is empty; give integers separated by commas, e.g. 3,5")
    return out


def _prepare(args, figure: str):
    """Checks both outputs before any work and loads the model."""
    from jaxaware.applications._common import json_path
    from jaxaware.atomic import check_output_path, check_outputs_distinct
    from jaxaware.model import load, resolve_weights_path

    reads = [(resolve_weights_path(args.weights), "the weights directory")]
    outputs = [("--out", figure), ("the JSON next to --out", json_path(figure))]
    for _, path in outputs:
        check_output_path(path, reads=reads)
    check_outputs_distinct(outputs)
    return load(args.weights)


def _write(payload: dict, figure: str) -> None:
    from jaxaware.applications._common import json_path, write_json

    write_json(json_path(figure), payload)
    print(f"wrote {figure} and {json_path(figure)}")


def cmd_edit(args) -> None:
    from jaxaware.applications._common import finite_numbers
    from jaxaware.applications.edit_measures import CHANNEL_KINDS, edit_report
    from jaxaware.applications.editing import edit_figure

    magnitudes = finite_numbers(_floats(args.strengths, "--strengths"), "strengths")
    if (magnitudes <= 0).any():
        raise JaxawareError(f"--strengths are magnitudes, applied in both directions: give "
                            f"positive numbers; got {args.strengths!r}")
    strengths = sorted(set((-magnitudes).tolist() + magnitudes.tolist()))
    model = _prepare(args, args.out)
    if args.channels not in CHANNEL_KINDS:  # a SITE:CHANNEL list: check it before any work
        from jaxaware.applications.editing import parse_channels

        parse_channels(model.config, args.channels)
    sweeps, payload = edit_report(
        model, args.classes, channels=args.channels, num_channels=args.num_channels,
        sites=args.sites, strengths=strengths, modes=(args.mode,), units=args.units,
        per_class=args.per_class, truncation=args.truncation, seed=args.seed,
        progress=not args.quiet)
    edit_figure(sweeps, args.out, model, max_latents=args.per_class)
    _write(payload, args.out)


def cmd_hybridize(args) -> None:
    from jaxaware.applications._common import (
        class_name,
        latents,
        one_class,
        world_references,
    )
    from jaxaware.applications.hybridization import (
        classify,
        hybrid_figure,
        hybrid_scores,
        hybridize,
        summarize_hybrids,
    )

    if args.classes is not None:
        raise JaxawareError("hybridize takes its two classes as INPUT_CLASS REFERENCE_CLASS, "
                            "not --classes")
    ks = []
    for item in (x.strip() for x in args.k.split(",")):
        if item in ("all", "half"):
            ks.append(item)
        elif item:
            ks.extend(_ints(item, "--k"))
    if not ks:
        raise JaxawareError("--k is empty; give channel counts, half or all, e.g. 8,half,all")
    model = _prepare(args, args.out)
    a = one_class(model, args.input_class, "input class")
    b = one_class(model, args.reference_class, "reference class")
    sites = args.sites or f"block{max(model.config.n_blocks // 2 - 1, 0)}.out"
    z = latents(model, args.per_class, args.truncation, args.seed)
    h = hybridize(model, a, b, z, sites, ks, style_from=args.style_from,
                  truncation=args.truncation)
    hybrid_figure(h, args.out, model, max_rows=args.per_class)
    clf, _, notes = world_references(model)
    payload = {
        "model_id": model.model_id, "input_class": a, "reference_class": b,
        "input_name": class_name(model, a), "reference_name": class_name(model, b),
        "sites": list(h.sites), "style_from": h.style_from, "per_class": args.per_class,
        "truncation": args.truncation, "seed": args.seed,
        "channels": {str(k): {site: ch[0] for site, ch in v.items()}
                     for k, v in h.channels.items()},
        "notes": notes,
    }
    if clf is not None:
        def score(images):
            return summarize_hybrids(hybrid_scores(classify(clf, images), h.input_class,
                                                   h.reference_class))

        payload["scores"] = {"input": score(h.input), "reference": score(h.reference),
                             "style": score(h.style),
                             **{f"channel_k{k}": score(v) for k, v in h.channel.items()}}
    _write(payload, args.out)


def cmd_segment(args) -> None:
    from jaxaware.applications.segmentation import segment_report, segmentation_figure

    ks = _ints(args.k, "--k")
    layers = [x.strip().replace("+", ",") for x in args.layers.split(",") if x.strip()]
    weightings = [x.strip() for x in args.weighting.split(",") if x.strip()]
    model = _prepare(args, args.out)
    seg, parts, payload = segment_report(
        model, args.classes, per_class=args.per_class, ks=ks, layers=layers,
        weightings=weightings, truncation=args.truncation, seed=args.seed,
        backend=args.backend, n_init=args.n_init)
    segmentation_figure(seg, args.out, model, parts, max_rows=args.max_rows)
    _write(payload, args.out)


def register(sub, model_command) -> None:
    """Adds ``edit``, ``hybridize`` and ``segment`` to the ``jaxaware`` command."""
    from jaxaware.applications.edit_measures import CHANNEL_KINDS
    from jaxaware.applications.editing import MODES, UNITS
    from jaxaware.applications.clustering import BACKENDS
    from jaxaware.cli import positive_int

    e = model_command("edit", "single-channel editing (Sec. 4.1): strength sweeps of chosen "
                      "channels, a grid with the input in the middle, and their scores", "0",
                      "edit.png", cmd_edit)
    e.add_argument("--channels", default="both",
                   help=f"{', '.join(CHANNEL_KINDS)} (category: the class's channels of "
                   "highest category awareness; latent: the channels most shared by all "
                   "classes under Tab. 1's latent criterion), or SITE:CHANNEL,... e.g. "
                   "block3.bn1:5,L13:2 (default: both)")
    e.add_argument("--num-channels", type=positive_int, default=2,
                   help="channels of each kind (default 2)")
    e.add_argument("--sites", default=None, help="choose channels only at these CCBN sites")
    e.add_argument("--mode", choices=MODES, default="add")
    e.add_argument("--units", choices=UNITS, default="std",
                   help="add: strengths in units of the channel's std (default) or raw")
    e.add_argument("--strengths", default="2,4,8",
                   help="magnitudes s, each applied in both directions: add -s..s channel "
                   "stds, or multiply by 1 - s..1 + s (default 2,4,8; the input sits in "
                   "the middle)")
    e.add_argument("--per-class", type=positive_int, default=2, help="latents per class")

    h = model_command("hybridize", "category hybridization (Sec. 4.2): input, reference, "
                      "style mixing and channel mixing side by side, with scores", None,
                      "hybrid.png", cmd_hybridize)
    for action in h._actions:
        if action.dest == "classes":
            action.help = argparse.SUPPRESS
    h.add_argument("input_class", metavar="INPUT_CLASS", help="index or name")
    h.add_argument("reference_class", metavar="REFERENCE_CLASS", help="index or name")
    h.add_argument("--sites", default=None,
                   help="site(s) to transplant at, e.g. block2.out or block3.bn0 (default: "
                   "the output of the block before the middle)")
    h.add_argument("--k", default="half",
                   help="channels to transplant per site: counts, half or all (default half)")
    h.add_argument("--style-from", type=int, default=None,
                   help="style mixing from this block on (default: after the sites' block)")
    h.add_argument("--per-class", type=positive_int, default=4, help="latents")

    s = model_command("segment", "awareness-weighted K-Means segmentation (Sec. 4.3), "
                      "without and with weights, scored on the toy world", "0", "segment.png",
                      cmd_segment)
    s.add_argument("--k", default="3,5", help="clusters, e.g. 3,5 (default)")
    s.add_argument("--layers", default="all,second-half",
                   help="layer sets: all, second-half, or sites joined by + "
                   "(e.g. block3.bn0+block4.bn0); comma-separated (default all,second-half)")
    s.add_argument("--weighting", default="none,awareness",
                   help="none, awareness or both (default none,awareness)")
    s.add_argument("--per-class", type=positive_int, default=2, help="images per class")
    s.add_argument("--backend", choices=BACKENDS, default="jax", help="K-Means (default jax)")
    s.add_argument("--n-init", type=positive_int, default=3, help="K-Means restarts")
    s.add_argument("--max-rows", type=positive_int, default=8, help="images in the figure")
