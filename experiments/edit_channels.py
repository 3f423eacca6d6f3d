"""Single-channel editing on a model (He et al., Sec. 4.1, Fig. 6, 7, 14), measured.

    python experiments/edit_channels.py                       # the default toy-world model
    python experiments/edit_channels.py WEIGHTS --out-dir runs/applications/mine
    python experiments/edit_channels.py --quick               # a smoke run (seconds)

For every class: its ``--num-channels`` channels of highest category awareness (class-
oriented) and the ``--num-channels`` channels most shared by all classes under Tab. 1's
latent criterion (latent-oriented), each edited alone by adding ``s * sigma_c`` and by
multiplying by ``1 + s`` over the strengths, on ``--per-class`` latents (the same for
every class). On a toy-world model each edit is scored (change share on the background /
object / parts of the segmenter's map of the unedited image, classifier identity, object
mask IoU); on any other model the figure and the change magnitudes are written.

Writes ``applications_edit.png`` (Fig. 14: a row per class and channel kind, the input in
the middle) and ``applications_edit.json`` (:func:`jaxaware.applications.edit_report`'s
payload) to ``--out-dir``, and prints the summary table (markdown).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from jaxaware.applications import (add_experiment_arguments, class_names, experiment_out_dir,
                                   write_json)
from jaxaware.applications.edit_measures import edit_report
from jaxaware.applications.editing import EditSweep, edit_figure
from jaxaware.errors import JaxawareError
from jaxaware.model import load

#: Classes shown in the figure (one per family of the toy world); others: the first four.
FIGURE_CLASSES = ("cat", "car", "sunflower", "house")


def summary_table(payload: dict) -> str:
    """Markdown: one row per (mode, channel kind), edits with s != 0 in both directions."""
    head = ("| mode | channels | mean change per pixel | change on background "
            "(background area) | change on object | p(class) after edit | still the class "
            "| object-mask IoU |")
    lines = [head, "| --- | --- | --- | --- | --- | --- | --- | --- |"]

    def f(d, key, pct=False):
        if key not in d or d[key] is None:
            return "n/a"
        return f"{100 * d[key]:.1f}%" if pct else f"{d[key]:.3f}"

    base = payload.get("unedited", {})
    if base:
        lines.append(f"| (unedited) | | 0 | | | {base['p_class_input']:.3f} | "
                     f"{100 * base['kept_input']:.1f}% | 1 |")
    for mode, groups in payload["summary"].items():
        for group, entry in groups.items():
            d = entry["both"]
            bg = "n/a" if "background_share" not in d else \
                f"{100 * d['background_share']:.1f}% ({100 * d['background_area']:.1f}%)"
            lines.append(f"| {mode} | {group} ({entry['channels']}) | {f(d, 'magnitude')} | "
                         f"{bg} | {f(d, 'object_share', True)} | {f(d, 'p_class')} | "
                         f"{f(d, 'kept', True)} | {f(d, 'object_iou')} |")
    return "\n".join(lines)


def part_table(payload: dict, mode: str = "add") -> str:
    """Markdown: the change share of every part next to its area, per channel kind."""
    groups = payload["summary"][mode]
    if not all("part_share" in g["both"] for g in groups.values()):
        return ""
    parts = list(next(iter(groups.values()))["both"]["part_area"])
    lines = ["| part | area | " + " | ".join(f"{g} channels" for g in groups) + " |",
             "| --- | --- |" + " --- |" * len(groups)]
    first = next(iter(groups.values()))["both"]
    for p in parts:
        shares = " | ".join(f"{100 * g['both']['part_share'].get(p, 0):.1f}%"
                            for g in groups.values())
        lines.append(f"| {p} | {100 * first['part_area'][p]:.1f}% | {shares} |")
    return "\n".join(lines)


def figure_sweeps(sweeps, model, classes) -> list:
    """One latent per class and its first channel of each kind, for the figure."""
    out = []
    for sw in sweeps:
        if sw.mode != "add" or int(sw.classes[0]) not in classes:
            continue
        keep, seen = [], set()
        for e, ch in enumerate(sw.channels):
            if ch.group not in seen:
                seen.add(ch.group)
                keep.append(e)
        out.append(EditSweep(sw.images[keep][:, :, :1], tuple(sw.channels[e] for e in keep),
                             sw.strengths, sw.amounts[keep], sw.mode, sw.units,
                             sw.classes[:1], sw.latents[:1], sw.truncation))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_experiment_arguments(ap)
    ap.add_argument("--classes", default="all")
    ap.add_argument("--num-channels", type=int, default=3)
    ap.add_argument("--per-class", type=int, default=8)
    ap.add_argument("--strengths", default="-8,-4,-2,2,4,8")
    ap.add_argument("--quick", action="store_true", help="2 classes, 2 latents, 1 channel")
    args = ap.parse_args(argv)
    try:
        model = load(args.weights)
        classes, per_class, n = args.classes, args.per_class, args.num_channels
        strengths = [float(s) for s in args.strengths.split(",")]
        modes = ("add", "multiply")
        if args.quick:
            classes, per_class, n, strengths, modes = "0,1", 2, 1, [-4.0, 4.0], ("add",)
        out_dir = experiment_out_dir(args, model)
        sweeps, payload = edit_report(model, classes, channels="both", num_channels=n,
                                      strengths=strengths, modes=modes, per_class=per_class,
                                      truncation=args.truncation, seed=args.seed,
                                      progress=not args.quick)
        payload["command"] = " ".join(["python", "experiments/edit_channels.py"]
                                      + list(argv if argv is not None else sys.argv[1:]))
        names = class_names(model)
        wanted = [names.index(c) for c in FIGURE_CLASSES if c in names] or \
            sorted({int(sw.classes[0]) for sw in sweeps})[:4]
        shown = figure_sweeps(sweeps, model, set(wanted)) or sweeps[:1]
        figure = os.path.join(out_dir, "applications_edit.png")
        edit_figure(shown, figure, model, max_latents=1,
                    title="Single-channel editing: +/- s x channel std, class-oriented "
                    "(category) and class-shared (latent) channels")
        write_json(os.path.join(out_dir, "applications_edit.json"), payload)
    except JaxawareError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(summary_table(payload))
    parts = part_table(payload)
    if parts:
        print()
        print(parts)
    if not payload["references"]["segmenter"]:
        notes = payload["references"]["notes"]
        print(f"\nno part scores: {notes.get('segmenter') or notes.get('scores')}")
    print(f"\nwrote {figure} and {os.path.join(out_dir, 'applications_edit.json')}")
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    sys.exit(main())
