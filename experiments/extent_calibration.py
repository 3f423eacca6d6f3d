"""Does the extent regressor's regression to the mean explain the extent term's overshoot?

    python experiments/extent_calibration.py docs/world-models/*extent1-from8000-11000*.json \
        --out docs/world-models/extent_calibration.json
    python experiments/extent_calibration.py --quick --out /tmp/calibration.json

The extent term of training (``--set extent=W``, :mod:`jaxaware.train.extent`) holds a
generator's sizes to the world's as a regressor reads them. Models trained with it draw
some classes' sizes wider than the world does (docs/world-models.md). A reader that
explains only part of a class's spread of sizes reads a size ``b`` times as far from the
class's typical one as it is (``b``, the slope of its readings on the truth, below 1);
a generator held to the true quantiles through such a reader should then spread its sizes
``1 / b`` times as wide as the world's.

This script trains the regressor exactly as training does (deterministic from its
arguments), reads the real renders that give the term's quantiles (1,000 per class), and
fits per class the line of the readings on the true areas
(:func:`jaxaware.train.extent.calibration`): the slope, the intercept and the readings'
within-class R^2. Given evaluation JSONs (``experiments/evaluate_world_model.py``) of
models trained with the term against true areas, it sets each class's measured area-spread
ratio (mean over the JSONs) beside the predicted ``1 / b``: Spearman's rank correlation
over the classes, and the median ratio of measured to predicted. Writes the JSON (``--out``) and a
figure beside it (``.png``): measured against predicted per class, with the diagonal.
``--quick`` trains a small regressor on few renders (a check that the script runs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

QUICK = {"steps": 100, "per_class": 50, "train_per_class": 100}


def reader_calibration(apply, params, per_class: int, resolution: int = 32) -> list[dict]:
    """Per class, the reader's line on the term's real renders (``per_class`` of each):
    ``slope``, ``intercept``, ``r2`` (its readings' R^2 against the truth within the
    class) and ``predicted_ratio`` (``1 / slope``)."""
    from jaxaware.toyworld import WORLD
    from jaxaware.train.extent import calibration, real_extents

    images, classes, areas = real_extents(per_class, resolution, start=10_000_000)
    readings = np.concatenate([np.asarray(apply(params, images[i:i + 500], classes[i:i + 500]))
                               for i in range(0, len(images), 500)]).astype(np.float64)
    intercept, slope = calibration(areas, readings, classes)
    rows = []
    for c in range(WORLD.num_classes):
        a, r = areas[classes == c].astype(np.float64), readings[classes == c]
        rows.append({"class": c, "name": WORLD.class_names[c], "slope": float(slope[c]),
                     "intercept": float(intercept[c]),
                     "r2": float(1.0 - np.mean((r - a) ** 2) / np.var(a)),
                     "predicted_ratio": float(1.0 / slope[c])})
    return rows


def measured_ratios(paths: list[str], num_classes: int) -> np.ndarray:
    """``[len(paths), K]``: each evaluation JSON's area-spread ratio per class (a one-line
    error for a file that is not one, or lacks a class)."""
    from jaxaware.errors import JaxawareError

    out = np.full((len(paths), num_classes), np.nan)
    for i, path in enumerate(paths):
        try:
            with open(path) as f:
                for row in json.load(f)["classes"]:
                    out[i, int(row["class"])] = float(row["area_ratio"])
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            raise JaxawareError(f"{path} is not an evaluation JSON with every class's "
                                "area_ratio; give the files experiments/evaluate_world_model.py "
                                "wrote") from None
        if np.isnan(out[i]).any():
            raise JaxawareError(f"{path} lacks the area ratio of "
                                f"{int(np.isnan(out[i]).sum())} of the {num_classes} classes; "
                                "give evaluations of all the world's classes")
    return out


def compare(predicted, measured) -> dict:
    """Spearman of the per-class ``measured`` ratios with the ``predicted`` ones, and the
    median over classes of measured over predicted (1: the prediction's level is right)."""
    from scipy import stats

    predicted, measured = np.asarray(predicted, float), np.asarray(measured, float)
    return {"spearman": float(stats.spearmanr(predicted, measured).statistic),
            "measured_over_predicted": float(np.median(measured / predicted))}


def plot(record: dict, path: str) -> None:
    from jaxaware.outputs import pyplot, save_figure

    plt = pyplot()
    rows = record["classes"]
    pred = [r["predicted_ratio"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.0, 5.2))
    if record["evaluations"]:
        meas = [r["measured_ratio"] for r in rows]
        lo = [r["measured_ratio"] - r["measured_min"] for r in rows]
        hi = [r["measured_max"] - r["measured_ratio"] for r in rows]
        ax.errorbar(pred, meas, yerr=[lo, hi], fmt="o", ms=4, capsize=2)
        for r, x, y in zip(rows, pred, meas):
            ax.annotate(r["name"], (x, y), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
        top = max(max(pred), max(r["measured_max"] for r in rows)) * 1.05
        ax.plot([0.9, top], [0.9, top], "k--", lw=0.8, label="measured = predicted")
        ax.axhline(1.0, color="grey", lw=0.6)
        ax.set_ylabel("measured area-spread ratio (mean, range over evaluations)")
        c = record["comparison"]
        ax.set_title(f"Spearman {c['spearman']:.2f}, measured / predicted "
                     f"{c['measured_over_predicted']:.2f} ({len(record['evaluations'])} "
                     f"evaluations)", fontsize=9)
        ax.legend(fontsize=8, loc="upper left")
    else:
        ax.bar([r["name"] for r in rows], pred)
        ax.tick_params(axis="x", rotation=60)
        ax.set_ylabel("predicted area-spread ratio")
    ax.set_xlabel("predicted ratio 1 / slope of the regressor's readings on the truth")
    save_figure(fig, path, dpi=110)


def main(argv=None) -> dict:
    from jaxaware.errors import JaxawareError
    from jaxaware.outputs import write_json
    from jaxaware.toyworld import WORLD
    from jaxaware.train.extent import extent_regressor

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("evaluations", nargs="*", help="evaluation JSONs of models trained with "
                   "the term against true areas")
    p.add_argument("--out", default="extent_calibration.json")
    p.add_argument("--steps", type=int, default=5000, help="regressor training steps "
                   "(training's default)")
    p.add_argument("--seed", type=int, default=0, help="the regressor's seed (training's "
                   "is 0; another shows how much of a slope is the seed's)")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    try:
        for path in args.evaluations:
            if not os.path.isfile(path):
                raise JaxawareError(f"no evaluation JSON at {path}; give the files "
                                    "experiments/evaluate_world_model.py wrote")
        if args.steps < 1:
            raise JaxawareError(f"--steps must be >= 1; got {args.steps}")
        meas = measured_ratios(args.evaluations, WORLD.num_classes)  # before any training
        steps, per_class, train_per_class = ((QUICK["steps"], QUICK["per_class"],
                                              QUICK["train_per_class"]) if args.quick
                                             else (args.steps, 1000, 2000))
        print(f"training the extent regressor ({steps} steps) ...", flush=True)
        apply, params, record = extent_regressor(32, steps, per_class=train_per_class,
                                                 seed=args.seed, progress=True)
        rows = reader_calibration(apply, params, per_class)
        out = {"quick": args.quick, "seed": args.seed, "regressor": record,
               "per_class": per_class,
               "evaluations": [os.path.basename(e) for e in args.evaluations],
               "classes": rows}
        if args.evaluations:
            for r, m in zip(rows, meas.T):
                r.update(measured_ratio=float(m.mean()), measured_min=float(m.min()),
                         measured_max=float(m.max()))
            out["comparison"] = compare([r["predicted_ratio"] for r in rows],
                                        [r["measured_ratio"] for r in rows])
    except JaxawareError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2)
    write_json(args.out, out)
    plot(out, os.path.splitext(args.out)[0] + ".png")
    for r in rows:
        meas = f"  measured {r['measured_ratio']:.2f}" if args.evaluations else ""
        print(f"{r['name']:>11}: R^2 {r['r2']:.3f}  slope {r['slope']:.3f}  "
              f"predicted {r['predicted_ratio']:.2f}{meas}")
    if args.evaluations:
        c = out["comparison"]
        print(f"Spearman {c['spearman']:.2f}; measured / predicted "
              f"{c['measured_over_predicted']:.2f}")
    print(f"wrote {args.out}")
    return out


if __name__ == "__main__":
    main()
