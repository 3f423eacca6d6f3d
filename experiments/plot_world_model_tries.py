"""The world-model training tries side by side: a table and the accuracy-vs-size figure.

    python experiments/plot_world_model_tries.py                  # docs/world-models/
    python experiments/plot_world_model_tries.py --dir DIR --out DIR/tradeoff.png

Reads ``DIR/tries.json`` (one entry per evaluated model: the evaluation JSON that
``experiments/evaluate_world_model.py`` wrote, the run it came from, its config overrides,
step and machine), prints a markdown table of the bars for each (with the evaluation's
verdicts where it has intervals: met, missed, or within noise), and draws, per family,
overall accuracy against the smallest area-spread ratio over classes, with the points of
one run joined in step order and the issue's bars (98% overall, 0.70) as dashed lines.
It also measures the trade the figure shows, per family: the rank correlation (Spearman)
of overall accuracy with the smallest area ratio over every evaluation, and of the
Fréchet ratio with it over the evaluations at 97% accuracy or more; printed, and written
with the counts behind them to ``DIR/trade.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

BAR_ACCURACY, BAR_SPREAD = 0.98, 0.70
SHARP = 0.97  # evaluations at least this accurate enter the Fréchet-vs-area correlation


def summarize(entry: dict, result: dict) -> dict:
    """The numbers a row shows, from one evaluation JSON."""
    rows = result["classes"]
    worst = min(rows, key=lambda r: r["accuracy"])
    spread = {f: [r[f"{f}_ratio"] for r in rows] for f in ("centre", "area", "background")}
    return {
        **entry,
        "accuracy": result["accuracy"], "worst_class": worst["name"],
        "worst_accuracy": worst["accuracy"],
        "classes_below_95": sum(r["accuracy"] < 0.95 for r in rows),
        "frechet_over_floor": result["frechet_over_floor"],
        **{f"{f}_min": min(v) for f, v in spread.items()},
        **{f"{f}_below": sum(x < BAR_SPREAD for x in v) for f, v in spread.items()},
        "verdicts": result.get("bar_verdicts"),
    }


def verdict_text(verdicts) -> str:
    """``class accuracy / overall / spreads`` verdicts, short (— without intervals)."""
    if not verdicts:
        return "—"
    short = {"met": "met", "missed": "missed", "within noise": "noise"}
    return " / ".join(short[verdicts[k]] for k in
                      ("every_class_accuracy", "overall_accuracy", "diversity_every_class"))


def table(rows: list[dict]) -> str:
    head = ("| family | run | step | machine | CPU min | samples / class | accuracy "
            "| worst class | Fréchet / floor | area min (classes < 0.70) | centre min (< 0.70) "
            "| background min | 90% verdicts: class acc. / overall / spreads |")
    lines = [head, "|" + " --- |" * 13]
    for r in rows:
        minutes = "" if r["cpu_minutes"] is None else f"{r['cpu_minutes']:g}"
        lines.append(
            f"| {r['family']} | {r['run']} | {r['step']:,} | {r['machine']} | {minutes} "
            f"| {r['per_class']} "
            f"| {100 * r['accuracy']:.1f}% | {r['worst_class']} {100 * r['worst_accuracy']:.1f}% "
            f"| {r['frechet_over_floor']:.1f}× | {r['area_min']:.2f} ({r['area_below']}) "
            f"| {r['centre_min']:.2f} ({r['centre_below']}) | {r['background_min']:.2f} "
            f"| {verdict_text(r['verdicts'])} |")
    return "\n".join(lines)


def _spearman(x: list[float], y: list[float]) -> dict:
    from scipy.stats import spearmanr

    if len(x) < 3:
        return {"n": len(x), "spearman": None, "p": None}
    res = spearmanr(x, y)
    return {"n": len(x), "spearman": float(res.statistic), "p": float(res.pvalue)}


def trade(rows: list[dict]) -> dict:
    """Per family: how the smallest area ratio ranks against accuracy and Fréchet ratio."""
    out = {}
    for family in sorted({r["family"] for r in rows}):
        mine = [r for r in rows if r["family"] == family]
        sharp = [r for r in mine if r["accuracy"] >= SHARP]
        out[family] = {
            "accuracy_vs_area_min": _spearman([r["accuracy"] for r in mine],
                                              [r["area_min"] for r in mine]),
            "frechet_vs_area_min_at_97": _spearman([r["frechet_over_floor"] for r in sharp],
                                                   [r["area_min"] for r in sharp]),
        }
    return out


def trade_text(result: dict) -> str:
    def one(c):
        return "n/a" if c["spearman"] is None else f"{c['spearman']:+.2f} (p {c['p']:.2g})"
    return "\n".join(
        f"{family}: Spearman of accuracy with area min {one(c['accuracy_vs_area_min'])} over "
        f"{c['accuracy_vs_area_min']['n']} evaluations; of Fréchet / floor with area min "
        f"{one(c['frechet_vs_area_min_at_97'])} over the "
        f"{c['frechet_vs_area_min_at_97']['n']} at >= {SHARP:.0%}"
        for family, c in result.items())


ZOOM = 0.95  # a second panel per family shows the evaluations at least this accurate


def figure(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = sorted({r["family"] for r in rows})
    # each family's tries, and beside them the same tries near the bars (when there are a
    # few there), where the full view's points crowd into one corner
    panels = [(f, z) for f in families
              for z in ((False, True) if sum(r["family"] == f and r["accuracy"] >= ZOOM
                                             for r in rows) >= 5 else (False,))]
    most = max(len({r["run"] for r in rows if r["family"] == f}) for f in families)
    # tall enough for the longest legend (about 0.17 inch a line at this font size)
    fig, axes = plt.subplots(1, len(panels), figsize=(8 * len(panels), max(6.5, 0.17 * most)),
                             squeeze=False, layout="constrained")
    for ax, (family, zoom) in zip(axes[0], panels):
        mine = [r for r in rows if r["family"] == family]
        runs = list(dict.fromkeys(r["run"] for r in mine))
        colours = plt.cm.tab20.colors
        for i, key in enumerate(runs):
            pts = sorted((r for r in mine if r["run"] == key), key=lambda r: r["step"])
            gpu = "H200" in pts[0]["machine"]
            shipped = key.startswith("shipped")
            ax.plot([r["accuracy"] for r in pts], [r["area_min"] for r in pts],
                    marker="*" if shipped else ("^" if gpu else "o"),  # hollow: 2nd lap
                    markersize=13 if shipped else 7, linestyle=":" if gpu else "-",
                    color=colours[i % len(colours)], label=key,
                    markerfacecolor="white" if i >= len(colours) else None)
            for r in pts:
                if zoom and r["accuracy"] < ZOOM:
                    continue
                ax.annotate(f"{r['step'] // 1000}k" if r["step"] % 1000 == 0
                            else f"{r['step'] / 1000:g}k",
                            (r["accuracy"], r["area_min"]), textcoords="offset points",
                            xytext=(4, 3), fontsize=7)
        ax.axhline(BAR_SPREAD, color="grey", linestyle="--", linewidth=1)
        ax.axvline(BAR_ACCURACY, color="grey", linestyle="--", linewidth=1)
        ax.set_xlabel("overall accuracy (world classifier)")
        ax.set_ylabel("smallest area-spread ratio over classes (generated / real)")
        if zoom:
            near = [r for r in mine if r["accuracy"] >= ZOOM]
            lo, hi = min(r["area_min"] for r in near), max(r["area_min"] for r in near)
            ax.set_xlim(ZOOM, 1.0)
            ax.set_ylim(min(lo, BAR_SPREAD) - 0.03, max(hi, BAR_SPREAD) + 0.03)
            ax.set_title(f"{family}: the tries at >= {ZOOM:.0%} accuracy")
        else:
            ax.set_title(f"{family}: tries (the bars: right of and above the dashed lines)")
            # beside the axes: inside it, thirty runs' names hid the points they name
            ax.legend(fontsize=6.5, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default=os.path.join("docs", "world-models"))
    ap.add_argument("--out", default=None, help="figure (default DIR/tradeoff.png)")
    args = ap.parse_args(argv)
    try:
        with open(os.path.join(args.dir, "tries.json")) as f:
            entries = json.load(f)
        rows = []
        for entry in entries:
            with open(os.path.join(args.dir, entry["file"])) as f:
                rows.append(summarize(entry, json.load(f)))
    except (OSError, ValueError, KeyError) as e:
        print(f"error: cannot read the tries in {args.dir}: {e}", file=sys.stderr)
        return 2
    print(table(rows))
    result = trade(rows)
    print(trade_text(result))
    json_path = os.path.join(args.dir, "trade.json")
    with open(json_path + ".tmp", "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    os.replace(json_path + ".tmp", json_path)
    print(f"wrote {json_path}")
    out = args.out or os.path.join(args.dir, "tradeoff.png")
    figure(rows, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
