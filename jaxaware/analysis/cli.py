"""``jaxaware analyze VERB``: the paper's analyses from the command line.

Verbs: ``ablation`` (Fig. 3), ``response`` (Fig. 4 / App. A), ``overlap`` (Fig. 5a),
``transfer`` (Fig. 5b), ``shared`` (Tab. 1). Each writes a PNG (``--out``) and the numbers
behind it as JSON beside it (same name, ``.json``). Every verb takes a weights directory
(default: the shipped toy-world model), ``--truncation``, ``--seed``, ``--awareness FILE``
(a saved awareness file; otherwise it is computed from ``--awareness-latents`` latents)
and, where images are classified, ``--classifier FILE.py:NAME`` (default: the toy world's
classifier, for world models). Bad input ends in one ``error:`` line and exit status 2.
"""

from __future__ import annotations

import argparse
import os

from jaxaware.cli import positive_int
from jaxaware.errors import JaxawareError

VERBS = ("ablation", "response", "overlap", "transfer", "shared")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer; got {text!r}") from None


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number; got {text!r}") from None


def _truncation(text: str) -> float:
    from jaxaware.truncation import check_truncation

    try:
        return check_truncation(text)
    except JaxawareError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _common(p, out: str, classifier: bool = True) -> None:
    p.add_argument("weights", nargs="?", default=None, help="weights directory or a shipped "
                   "model's name (default: the shipped toy-world model)")
    p.add_argument("--truncation", type=_truncation, default=1.0)
    p.add_argument("--seed", type=_int, default=0, help="awareness latents; images use seed+1")
    p.add_argument("--awareness", default=None, help="a saved awareness .npz (jaxaware "
                   "awareness) with rows for the classes analysed")
    p.add_argument("--awareness-latents", type=positive_int, default=1000,
                   help="latents for awareness when --awareness is not given (default 1000)")
    if classifier:
        p.add_argument("--classifier", default=None, metavar="FILE.py:NAME",
                       help="a function images [B, H, W, 3] in [-1, 1] -> logits [B, K] "
                       "(default: the toy world's classifier, for world models)")
    p.add_argument("--out", default=out, help=f"PNG figure; the JSON goes beside it "
                   f"(default {out})")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def register(sub, model_command) -> None:
    """Adds ``analyze`` with one sub-command per analysis (``model_command`` is unused: the
    verbs share their own options)."""
    a = sub.add_parser("analyze", help="the paper's analyses: ablation, response, overlap, "
                       "transfer, shared")
    verbs = a.add_subparsers(dest="verb", required=True, parser_class=type(a))

    p = verbs.add_parser("ablation", help="zero lowest/random/highest-awareness channels "
                         "(Fig. 3)")
    _common(p, "analysis_ablation.png")
    p.add_argument("--class", dest="cls", default="0", help="the class (index or name)")
    p.add_argument("--sites", default="L0", help="CCBN sites, comma-separated, or all "
                   "(default L0)")
    p.add_argument("--fraction", type=_float, default=0.25,
                   help="share of each site's channels per group (default 0.25)")
    p.add_argument("--count", type=positive_int, default=None,
                   help="channels per site per group (instead of --fraction)")
    p.add_argument("--latents", type=positive_int, default=64, help="syntheses (default 64)")
    p.set_defaults(run=cmd_ablation)

    p = verbs.add_parser("response", help="channel-classifier response vs category awareness "
                         "(Fig. 4, App. A)")
    _common(p, "analysis_response.png")
    p.add_argument("--classes", default="all", help="classes (default all)")
    p.add_argument("--site", default="L0", help="one CCBN site (default L0)")
    p.add_argument("--group", type=positive_int, default=1,
                   help="channels zeroed together, in awareness order (App. A: 5)")
    p.add_argument("--latents", type=_int, default=100, help="M latent pairs (default 100)")
    p.add_argument("--method", choices=("exact", "first-order"), default="exact")
    p.add_argument("--window", type=_int, default=None,
                   help="Savitzky-Golay window (default: 51 scaled to the points; 0: none)")
    p.add_argument("--polyorder", type=_int, default=2)
    p.add_argument("--score", choices=("prob", "logit"), default="prob")
    p.set_defaults(run=cmd_response)

    p = verbs.add_parser("overlap", help="top-k channel overlap between classes (Fig. 5a)")
    _common(p, "analysis_overlap.png", classifier=False)
    p.add_argument("--classes", default="all", help="classes (default all)")
    p.add_argument("--sites", default="all", help="CCBN sites, comma-separated, or all")
    p.add_argument("--k", type=positive_int, default=None,
                   help="channels per class and site (default: 100/1536 of each site)")
    p.set_defaults(run=cmd_overlap)

    p = verbs.add_parser("transfer", help="a source class's top channel edited in other "
                         "classes (Fig. 5b)")
    _common(p, "analysis_transfer.png")
    p.add_argument("--source", default="0", help="the source class (index or name)")
    p.add_argument("--targets", default="all", help="target classes (default all)")
    p.add_argument("--site", default="L0", help="one CCBN site (default L0)")
    p.add_argument("--channel", type=_int, default=None,
                   help="site-local channel (default: the source's highest awareness)")
    p.add_argument("--op", choices=("add", "multiply"), default="add")
    p.add_argument("--strength", type=_float, default=3.0)
    p.add_argument("--latents", type=positive_int, default=16, help="syntheses per target")
    p.set_defaults(run=cmd_transfer)

    p = verbs.add_parser("shared", help="channels in every class's top k (Tab. 1)")
    _common(p, "analysis_shared.png", classifier=False)
    p.add_argument("--classes", default="all", help="classes (default all)")
    p.add_argument("--sites", default="all", help="CCBN sites, comma-separated, or all "
                   "(default: every site wider than k)")
    p.add_argument("--k", type=positive_int, default=10)
    p.set_defaults(run=cmd_shared)


# -- the commands --------------------------------------------------------------------------


def _model(args):
    from jaxaware.model import load

    return load(args.weights)


def _names(model):
    from jaxaware.analysis._common import class_name

    return [class_name(model, k) for k in range(model.config.num_classes)]


def _families(model, classes):
    """World families of ``classes`` for a world model, else None."""
    from jaxaware.analysis.classifier import is_world_model
    from jaxaware.toyworld import WORLD

    if not is_world_model(model):
        return None
    return [WORLD.family_of(WORLD.class_names[int(k)]) for k in classes]


def _classifier(args, model):
    from jaxaware.analysis.classifier import as_classifier, load_classifier_spec

    if args.classifier:
        return load_classifier_spec(args.classifier, model)
    return as_classifier(None, model)


def _awareness(args, model, classes):
    from jaxaware.analysis._common import check_awareness
    from jaxaware.awareness import Awareness, compute_awareness

    if args.awareness:
        aw = Awareness.load(args.awareness)
        check_awareness(aw, model)
        return aw
    return compute_awareness(model, classes=list(classes), num_latents=args.awareness_latents,
                             truncation=args.truncation, seed=args.seed,
                             progress=not args.quiet)


def _classes(model, spec):
    from jaxaware.analysis._common import class_list

    return class_list(model, None if spec == "all" else spec)


def _sites(spec):
    return None if spec == "all" else spec


def _site_axis(model):
    """``(names, offsets)`` of the model's CCBN sites (an awareness file's columns)."""
    from jaxaware.sites import site_offsets, site_table

    return [s.name for s in site_table(model.config)], site_offsets(model.config)


def _json_path(out: str) -> str:
    return os.path.splitext(out)[0] + ".json"


def _write(args, figure, data) -> None:
    from jaxaware.analysis._common import write_json

    figure(args.out)
    write_json(_json_path(args.out), data)
    print(f"wrote {args.out} and {_json_path(args.out)}")


def cmd_ablation(args) -> None:
    from jaxaware.analysis._common import one_class
    from jaxaware.analysis.ablation import ablation_groups, plan_groups
    from jaxaware.analysis.figures import ablation_figure

    model = _model(args)
    clf = _classifier(args, model)
    k = one_class(model, args.cls)
    plan_groups(model.config, _sites(args.sites), args.fraction, args.count)
    aw = _awareness(args, model, [k])
    r = ablation_groups(model, clf, k, _sites(args.sites), fraction=args.fraction, count=args.count,
                        num_latents=args.latents, awareness=aw, truncation=args.truncation,
                        seed=args.seed)
    names = _names(model)
    for g, s in r.summary().items():
        print(f"{g:9s} prob {s['prob']:.3f}  accuracy {s['accuracy']:.0%}  "
              f"pixel change {s['pixel_change']:.4f}")
    _write(args, lambda p: ablation_figure(r, p, names), r.to_json(names[k]))


def cmd_response(args) -> None:
    from jaxaware.analysis.figures import response_figure
    from jaxaware.analysis.response import plan_response, response_correlation

    model = _model(args)
    clf = _classifier(args, model)
    classes = _classes(model, args.classes)
    plan_response(model.config, args.site, args.group, args.latents, args.method, args.window,
                  args.polyorder)
    aw = _awareness(args, model, classes)
    r = response_correlation(model, clf, classes, args.site, group=args.group,
                             num_latents=args.latents, method=args.method, awareness=aw,
                             truncation=args.truncation, seed=args.seed, window=args.window,
                             polyorder=args.polyorder, score=args.score,
                             progress=not args.quiet)
    names = _names(model)
    print(f"{r.site}, {len(classes)} classes, g={r.group}, M={r.num_latents}, {r.method}, "
          f"window {r.window}: mean Pearson {r.mean_pearson:.3f}, mean Spearman "
          f"{r.mean_spearman:.3f} (paper: 0.503 BigGAN, 0.603 BigGAN-deep)")
    _write(args, lambda p: response_figure(r, p, names),
           r.to_json([names[k] for k in r.classes]))


def cmd_overlap(args) -> None:
    from jaxaware.analysis.figures import overlap_figure
    from jaxaware.analysis.overlap import channel_overlap, plan_sites

    model = _model(args)
    classes = _classes(model, args.classes)
    plan_sites(*_site_axis(model), _sites(args.sites), args.k, model=model)
    aw = _awareness(args, model, classes)
    r = channel_overlap(aw, _sites(args.sites), args.k, classes=classes, model=model)
    names, fams = _names(model), _families(model, r.classes)
    data = r.to_json([names[k] for k in r.classes], fams)
    line = f"top {r.k} channels over {len(r.sites)} site(s); chance {r.chance:.3f}"
    if fams is not None:
        line += (f"; within family {data['within_family']:.3f}, between families "
                 f"{data['between_family']:.3f}")
    print(line)
    _write(args, lambda p: overlap_figure(r, p, names, fams), data)


def cmd_transfer(args) -> None:
    from jaxaware.analysis._common import class_list, one_class
    from jaxaware.analysis.figures import transfer_figure
    from jaxaware.analysis.transfer import channel_transfer, plan_transfer

    model = _model(args)
    clf = _classifier(args, model)
    src = one_class(model, args.source, "source")
    targets = class_list(model, None if args.targets == "all" else args.targets)
    plan_transfer(model.config, args.site, args.channel, args.op, args.strength)
    aw = None if args.channel is not None else _awareness(args, model, [src])
    r = channel_transfer(model, clf, src, targets, args.site, channel=args.channel, op=args.op,
                         strength=args.strength, num_latents=args.latents, awareness=aw,
                         truncation=args.truncation, seed=args.seed)
    names = _names(model)
    fams = _families(model, range(model.config.num_classes))
    data = r.to_json([names[k] for k in r.targets], fams)
    print(f"channel {r.channel} of {r.site} from {names[src]}: {r.op} {r.amount:.3g}")
    if fams is not None:
        for group, s in data["summary"].items():
            if s["targets"]:
                print(f"  {group:12s} ({s['targets']:2d} targets): pixel change "
                      f"{s['pixel_change']:.4f}, target prob drop {s['target_drop']:+.4f}")
    _write(args, lambda p: transfer_figure(r, p, names), data)


def cmd_shared(args) -> None:
    from jaxaware.analysis.figures import shared_figure
    from jaxaware.analysis.shared import plan_sites, shared_channels

    model = _model(args)
    classes = _classes(model, args.classes)
    if len(classes) < 2:
        raise JaxawareError(f"shared channels need at least 2 classes to intersect; got "
                            f"{len(classes)}")
    plan_sites(*_site_axis(model), args.k, _sites(args.sites), model=model)
    aw = _awareness(args, model, classes)
    r = shared_channels(aw, args.k, _sites(args.sites), classes=classes, model=model)
    print(r.table())
    if r.skipped:
        print(f"skipped (at most k={r.k} channels): {', '.join(r.skipped)}")
    names = _names(model)
    _write(args, lambda p: shared_figure(r, p), r.to_json([names[k] for k in r.classes]))
