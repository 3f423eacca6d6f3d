"""Plumbing the three applications share: classes, latents, awareness rows, checks, the
toy world's references, image grids and the JSON files written next to figures."""

from __future__ import annotations

import os

import numpy as np

from jaxaware.checks import check_int, check_seed
from jaxaware.errors import JaxawareError
from jaxaware.outputs import (  # noqa: F401  (re-exported for the applications)
    class_name, pyplot, save_figure, softmax, to_jsonable, write_json)
from jaxaware.sites import site_table

#: Latents of the awareness an application computes when none is given (the paper's N).
AWARENESS_LATENTS = 1000
#: Models with at most this many classes get awareness of all of them when any is needed.
ALL_CLASSES_UP_TO = 100


def one_class(model, cls, what: str = "class") -> int:
    """One class index from an index or a name (unknown names fail with the closest)."""
    spec = cls.item() if isinstance(cls, np.generic) else cls
    labels = model.resolve_classes(spec)
    if len(labels) != 1:
        raise JaxawareError(f"{what} must be one class; got {len(labels)} ({cls!r})")
    return int(labels[0])


def class_list(model, classes) -> list[int]:
    """Class indices (in order, without repeats) from indices, names, ``'all'`` or a list."""
    if isinstance(classes, np.ndarray):
        classes = classes.tolist()
    labels = model.resolve_classes(classes)
    if not labels:
        raise JaxawareError("classes is empty; give at least one class")
    return list(dict.fromkeys(int(k) for k in labels))




def latents(model, num, truncation: float, seed) -> np.ndarray:
    """``num`` latents drawn the family's way (float32 ``[num, z_dim]``)."""
    num = check_int(num, "number of latents")
    seed = check_seed(seed)
    return np.asarray(model.family.sample_latents(num, model.config, truncation, seed),
                      np.float32)


def awareness_for(model, classes, awareness=None, truncation: float = 1.0, seed: int = 0,
                  num_latents: int = AWARENESS_LATENTS):
    """An :class:`~jaxaware.awareness.Awareness` holding rows for ``classes``: the one given
    (checked against the model) or one computed here, for every class of the model when it
    has at most :data:`ALL_CLASSES_UP_TO` (one compiled shape for any request; cheap), else
    for ``classes``."""
    if awareness is None:
        from jaxaware.awareness import compute_awareness

        wanted = sorted(set(int(k) for k in classes))
        if model.config.num_classes <= ALL_CLASSES_UP_TO:
            wanted = list(range(model.config.num_classes))
        return compute_awareness(model, classes=wanted, num_latents=num_latents,
                                 truncation=truncation, seed=seed)
    want = [s.name for s in site_table(model.config)]
    if list(awareness.site_names) != want:
        raise JaxawareError(
            f"the awareness has sites {awareness.site_names[0]}..{awareness.site_names[-1]} "
            f"({len(awareness.site_names)}); this model has {want[0]}..{want[-1]} "
            f"({len(want)}): compute it with this model")
    aw_rows(awareness, classes)  # every class has a row
    return awareness


def aw_rows(awareness, classes) -> np.ndarray:
    """Row indices of ``classes`` in an awareness, or a one-line error naming a missing one."""
    have = {int(k): i for i, k in enumerate(np.asarray(awareness.classes))}
    missing = [int(k) for k in classes if int(k) not in have]
    if missing:
        raise JaxawareError(f"the awareness has no row for class {missing[0]}; compute it for "
                            "the classes you use")
    return np.array([have[int(k)] for k in classes], np.int64)


def check_count_in(k, limit: int, what: str, minimum: int = 1) -> int:
    """``k`` as an int, or a one-line error unless ``minimum <= k <= limit``."""
    ok = isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_))
    if not ok or not minimum <= int(k) <= limit:
        raise JaxawareError(f"{what} must be an integer in {minimum}..{limit}; got {k!r}")
    return int(k)


def finite_numbers(values, what: str) -> np.ndarray:
    """``values`` as a float64 vector of finite numbers, or a one-line error."""
    try:
        a = np.atleast_1d(np.asarray(values))
    except (TypeError, ValueError):
        a = np.asarray([values], dtype=object)
    if a.ndim != 1 or a.size == 0 or a.dtype.kind not in "biuf":
        raise JaxawareError(f"{what} must be one or more real numbers; got {values!r}")
    if not np.all(np.isfinite(a)):
        bad = a[~np.isfinite(a)][0]
        raise JaxawareError(f"{what} must be finite numbers; got {float(bad)}")
    return a.astype(np.float64)


def world_references(model):
    """``(classifier, segmenter, notes)`` of the toy world when ``model`` is a world model
    (its classes are the world's, its images 32 or 64 px), else ``(None, None, notes)``.
    A reference that cannot be loaded (e.g. not shipped yet) is None, and ``notes`` says
    why."""
    from jaxaware.toyworld import WORLD

    notes = {}
    names = tuple(class_name(model, k) for k in range(model.config.num_classes))
    if names != tuple(WORLD.class_names) or model.config.resolution not in (32, 64):
        notes["scores"] = "not a toy-world model: no reference classifier or segmenter"
        return None, None, notes
    from jaxaware.toyworld import load_classifier, load_segmenter

    refs = []
    for what, loader in (("classifier", load_classifier), ("segmenter", load_segmenter)):
        try:
            refs.append(loader())
        except (JaxawareError, OSError) as e:
            refs.append(None)
            notes[what] = f"unavailable: {e}"
    return refs[0], refs[1], notes




def to_uint8(images) -> np.ndarray:
    from jaxaware.generate import to_uint8 as convert

    return convert(images)


def zoom_for(resolution: int) -> int:
    """An integer upscaling that makes a cell about 96-128 px (small images are unreadable)."""
    return max(1, 128 // int(resolution))


def json_path(figure_path: str) -> str:
    """The JSON written next to a figure: the same path with ``.json``."""
    root, _ = os.path.splitext(figure_path)
    return root + ".json"









def add_experiment_arguments(parser) -> None:
    """The arguments every application experiment takes: ``weights`` (a weights directory
    or shipped name; default the shipped model), ``--out-dir``, ``--truncation``, ``--seed``."""
    parser.add_argument("weights", nargs="?", default=None, help="weights (default: toy world)")
    parser.add_argument("--out-dir", default=None, help="default runs/applications/<model_id>")
    parser.add_argument("--truncation", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)


def experiment_out_dir(args, model) -> str:
    """``--out-dir``, or ``runs/applications/<model_id>``."""
    return args.out_dir or os.path.join("runs", "applications", model.model_id or "model")


def class_names(model) -> list[str]:
    """Every class's display name (:func:`jaxaware.outputs.class_name`), in index order."""
    return [class_name(model, k) for k in range(model.config.num_classes)]
