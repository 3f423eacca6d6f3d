"""What the analyses, the applications and the evaluation write and show: JSON records
(NumPy values made plain, NaN as null), PNG figures with matplotlib's Agg backend, both
written atomically; and two small helpers every results table uses (class names, softmax)."""

from __future__ import annotations

import json
import math

import numpy as np

from jaxaware.atomic import atomic_write

__all__ = ["to_jsonable", "write_json", "pyplot", "save_figure", "class_name", "softmax",
           "weights_label", "model_report_main"]


def to_jsonable(value):
    """NumPy scalars and arrays as plain JSON values; NaN and infinities as null."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    return value


def write_json(path: str, data: dict) -> str:
    """``data`` as indented JSON, written atomically."""
    with atomic_write(path, "w") as f:
        json.dump(to_jsonable(data), f, indent=1)
        f.write("\n")
    return path


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str, dpi: int = 100) -> str:
    """A matplotlib figure as PNG, written atomically; the figure is closed."""
    plt = pyplot()
    try:
        with atomic_write(path) as f:
            fig.savefig(f, dpi=dpi, format="png")
    finally:
        plt.close(fig)
    return path


def weights_label(name: str) -> str:
    """A short label for a weights path in a legend: ``runs/x/model`` -> ``x``; shipped
    model names stay as given."""
    import os

    path = name.rstrip("/")
    if path.endswith("/model"):
        path = path[:-len("/model")]
    return os.path.basename(path) or name


def model_report_main(argv, description: str, measure, report, plot, *, per_class: int,
                      quick_per_class: int, add_arguments=None) -> dict:
    """The command line of the experiments that measure toy-world models side by side
    (``experiments/edge_magnitude.py``, ``experiments/latent_size.py``): positional
    weights (default: the default model), ``--per-class``, ``--seed``, ``--out`` (a .json;
    the figure goes beside it as .png), ``--quick``, and what ``add_arguments(parser)``
    adds. ``measure(models, per_class, args)`` gives the record, ``report(record)`` prints
    it, ``plot(record, png)`` draws it. A :class:`~jaxaware.errors.JaxawareError` before
    anything is written prints ``error: ...`` and exits 2."""
    import argparse
    import os
    import sys

    import jaxaware
    from jaxaware.errors import JaxawareError

    p = argparse.ArgumentParser(description=description)
    p.add_argument("weights", nargs="*", help="weights directories or shipped model names "
                   "(default: the default model)")
    p.add_argument("--per-class", type=int, default=per_class)
    p.add_argument("--seed", type=int, default=0, help="latent seed")
    p.add_argument("--out", required=True, help="JSON output path (the figure beside it)")
    p.add_argument("--quick", action="store_true",
                   help=f"{quick_per_class} samples per class (a smoke run)")
    if add_arguments is not None:
        add_arguments(p)
    args = p.parse_args(argv)
    try:
        if not args.out.endswith(".json"):
            raise JaxawareError(f"--out must name a .json file; got {args.out!r}")
        models = {n: jaxaware.load(n) for n in args.weights or ["toyworld-biggan"]}
        record = measure(models, quick_per_class if args.quick else args.per_class, args)
    except JaxawareError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    record["quick"] = bool(args.quick)
    report(record)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write_json(args.out, record)
    png = args.out[:-len(".json")] + ".png"
    plot(record, png)
    print(f"wrote {args.out}\nwrote {png}")
    return record


def class_name(model, k: int) -> str:
    """The display name of class ``k`` (its first alias), or the index as text."""
    names = model.class_names
    if names is None:
        return str(int(k))
    n = names[int(k)]
    return n if isinstance(n, str) else n[0]


def softmax(logits) -> np.ndarray:
    """Softmax over the last axis, in float64."""
    x = np.asarray(logits, np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
