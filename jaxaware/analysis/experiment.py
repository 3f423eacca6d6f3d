"""What every paper-reproduction script in ``experiments/`` shares: its command line, the
model and classifier, and a record of the settings next to the results.

A script declares ``CONFIG`` (the run) and ``QUICK`` (overrides for a smoke run) at its
top and calls :func:`setup`; the analysis itself is a library call. Outputs:
``OUT_DIR/analysis_NAME.png`` and ``.json``, the JSON holding the numbers, the config, the
model id, the command line and the time taken.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

from jaxaware.analysis._common import class_name, write_json

__all__ = ["Run", "setup"]


@dataclasses.dataclass
class Run:
    """A script's model, classifier (None: the world's), config and output paths."""

    model: object
    classifier: object
    config: dict
    name: str
    out_dir: str
    quick: bool
    started: float

    @property
    def figure_path(self) -> str:
        return os.path.join(self.out_dir, f"analysis_{self.name}.png")

    @property
    def json_path(self) -> str:
        return os.path.join(self.out_dir, f"analysis_{self.name}.json")

    @property
    def class_names(self) -> list[str]:
        return [class_name(self.model, k) for k in range(self.model.config.num_classes)]

    def classes(self, key: str = "classes") -> list[int]:
        """``config[key]`` as class indices; None means every class."""
        spec = self.config[key]
        if spec is None:
            return list(range(self.model.config.num_classes))
        return self.model.resolve_classes(spec)

    def awareness(self, classes):
        """Awareness of ``classes`` with the config's ``awareness_latents``, ``truncation``
        and ``seed``."""
        from jaxaware.awareness import compute_awareness

        cfg = self.config
        return compute_awareness(self.model, classes, cfg["awareness_latents"],
                                 cfg["truncation"], cfg["seed"])

    def families(self, classes=None):
        """World families of ``classes`` (default: all) for a world model, else None."""
        from jaxaware.analysis.classifier import is_world_model
        from jaxaware.toyworld import WORLD

        if not is_world_model(self.model):
            return None
        classes = range(self.model.config.num_classes) if classes is None else classes
        return [WORLD.family_of(WORLD.class_names[int(k)]) for k in classes]

    def save(self, figure, results: dict) -> dict:
        """Writes the figure (``figure(path)``) and the JSON record; returns the record."""
        os.makedirs(self.out_dir, exist_ok=True)
        figure(self.figure_path)
        record = {"experiment": self.name, "model_id": getattr(self.model, "model_id", ""),
                  "config": self.config, "quick": self.quick,
                  "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
                  "seconds": time.perf_counter() - self.started, "results": results}
        write_json(self.json_path, record)
        print(f"wrote {self.figure_path} and {self.json_path}")
        return record


def setup(name: str, doc: str, config: dict, quick: dict, argv=None) -> Run:
    """Parses ``[WEIGHTS] [--classifier FILE.py:NAME] [--classes LIST] [--quick]
    [--out-dir DIR]``, loads the model (default: the shipped toy-world model) and the
    classifier. ``--classes`` replaces ``config['classes']`` (or ``'sources'``)."""
    from jaxaware.analysis.classifier import load_classifier_spec
    from jaxaware.model import load

    p = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    p.add_argument("weights", nargs="?", default=None,
                   help="weights directory (default: the shipped toy-world model)")
    p.add_argument("--classifier", default=None, metavar="FILE.py:NAME",
                   help="images -> logits (default: the toy world's classifier)")
    p.add_argument("--classes", default=None, help="override CONFIG's classes (indices or "
                   "names, comma-separated): the world's class names fit only world models")
    p.add_argument("--quick", action="store_true", help="a smoke run in seconds")
    p.add_argument("--out-dir", default=None, help="where analysis_NAME.png/.json go "
                   "(default: runs/analysis/<model_id>/, or runs/quick/ with --quick)")
    args = p.parse_args(argv)
    cfg = {**config, **(quick if args.quick else {})}
    model = load(args.weights)
    for key in ("classes", "sources"):
        if args.classes and key in cfg:
            cfg[key] = model.resolve_classes(args.classes)
    clf = load_classifier_spec(args.classifier, model) if args.classifier else None
    out = args.out_dir or ("runs/quick" if args.quick else
                           os.path.join("runs", "analysis", model.model_id or "model"))
    return Run(model, clf, cfg, name, out, args.quick, time.perf_counter())
