"""Class names and class selection for class-conditional generators.

BigGAN is conditioned on one of the 1000 ImageNet classes. Users pick classes by
index (``207``) or by name (``"golden retriever"``); :func:`resolve_classes` turns such a
selection into a list of indices and says clearly what was wrong when it can't, and
:func:`to_class_vectors` turns indices (or ready-made class vectors) into the float32
``[B, num_classes]`` conditioning input the generator takes.

The ImageNet table ships as ``jaxaware/data/imagenet_classes.tsv`` (columns: index,
WordNet id, comma-separated names; the first name is the class's display name).
Everything here runs on the host with NumPy; nothing is meant to be traced by ``jit``.
"""

from __future__ import annotations

import csv
import difflib
import functools
import re
from collections.abc import Sequence
from importlib import resources

import numpy as np

from jaxaware.errors import JaxawareError

__all__ = [
    "IMAGENET_NUM_CLASSES",
    "imagenet_class_names",
    "imagenet_class_aliases",
    "imagenet_wnids",
    "resolve_classes",
    "one_hot",
    "to_class_vectors",
]

IMAGENET_NUM_CLASSES = 1000
"""Number of ImageNet-1k classes (the classes BigGAN is conditioned on)."""

_TSV_NAME = "imagenet_classes.tsv"
_ACCEPTED_SPEC = (
    "give class indices (e.g. 207), class names (e.g. \"golden retriever\"), "
    "a comma-separated mix of both, or 'all'"
)
_INDEX_RE = re.compile(r"[+-]?[0-9]+")


# --------------------------------------------------------------------------------------------
# The ImageNet table
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _imagenet_table() -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """Read and check the bundled TSV once: (WordNet ids, aliases per class) in index order."""
    text = resources.files("jaxaware").joinpath("data", _TSV_NAME).read_text(encoding="utf-8")
    lines = text.splitlines()
    if not lines or lines[0].split("\t") != ["index", "wnid", "names"]:
        raise JaxawareError(f"jaxaware/data/{_TSV_NAME} has no 'index, wnid, names' header; "
                            "reinstall jaxaware")
    wnids: list[str] = []
    aliases: list[tuple[str, ...]] = []
    for line_no, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != 3 or fields[0] != str(len(wnids)):
            raise JaxawareError(f"jaxaware/data/{_TSV_NAME} line {line_no} is malformed; "
                                "reinstall jaxaware")
        wnids.append(fields[1])
        aliases.append(tuple(name.strip() for name in fields[2].split(",")))
    if len(wnids) != IMAGENET_NUM_CLASSES:
        raise JaxawareError(f"jaxaware/data/{_TSV_NAME} has {len(wnids)} classes, not "
                            f"{IMAGENET_NUM_CLASSES}; reinstall jaxaware")
    return tuple(wnids), tuple(aliases)


@functools.lru_cache(maxsize=None)
def imagenet_class_names() -> tuple[str, ...]:
    """The display name of each ImageNet class, in class-index order (``[207]`` is
    ``'golden retriever'``). Display names are the first WordNet lemma, so they are not
    unique: ``'crane'`` (134, the bird; 517, the machine) and ``'maillot'`` (638, 639)
    each appear twice."""
    return tuple(names[0] for names in _imagenet_table()[1])


def imagenet_class_aliases() -> tuple[tuple[str, ...], ...]:
    """Every name of each ImageNet class, in class-index order; the first is the display
    name (``[0]`` is ``('tench', 'Tinca tinca')``). Pass this as ``names`` to
    :func:`resolve_classes` for an ImageNet-1000 model."""
    return _imagenet_table()[1]


def imagenet_wnids() -> tuple[str, ...]:
    """The WordNet synset id of each ImageNet class, in class-index order
    (``[0]`` is ``'n01440764'``)."""
    return _imagenet_table()[0]


# --------------------------------------------------------------------------------------------
# Class selection
# --------------------------------------------------------------------------------------------


def _normalize(name: str) -> str:
    """The form names are compared in: case-folded, '_' read as ' ', runs of spaces collapsed."""
    return " ".join(name.replace("_", " ").split()).casefold()


def _check_num_classes(num_classes: object) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise JaxawareError(f"num_classes must be a positive int; got {num_classes!r}")
    if num_classes < 1:
        raise JaxawareError(f"num_classes must be a positive int; got {num_classes}")
    return int(num_classes)


def _alias_table(names: Sequence[str | Sequence[str]]) -> list[tuple[str, ...]]:
    """Validate a class-name table: each entry is one name or a non-empty sequence of aliases."""
    if isinstance(names, np.ndarray):
        names = names.tolist()
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise JaxawareError("names must be a sequence with one entry per class (a name or a "
                            f"list of aliases); got {type(names).__name__}")
    table = []
    for index, entry in enumerate(names):
        aliases = (entry,) if isinstance(entry, str) else entry
        if (isinstance(aliases, Sequence) and len(aliases) > 0
                and all(isinstance(alias, str) for alias in aliases)):
            table.append(tuple(aliases))
        else:
            raise JaxawareError(f"names[{index}] must be a class name or a non-empty list of "
                                f"class names; got {entry!r}")
    return table


class _NameIndex:
    """Looks class names up in a table of aliases (see :func:`resolve_classes` for the rules)."""

    def __init__(self, table: list[tuple[str, ...]]):
        self.table = table
        self.primary: dict[str, list[int]] = {}
        self.any_alias: dict[str, list[int]] = {}
        self.display: dict[str, str] = {}  # normalized alias -> its spelling in the table
        for index, aliases in enumerate(table):
            self.primary.setdefault(_normalize(aliases[0]), []).append(index)
            for alias in aliases:
                key = _normalize(alias)
                indices = self.any_alias.setdefault(key, [])
                if index not in indices:
                    indices.append(index)
                self.display.setdefault(key, alias)

    def lookup(self, name: str) -> int:
        key = _normalize(name)
        indices = self.primary.get(key) or self.any_alias.get(key)
        if not indices:
            closest = difflib.get_close_matches(key, list(self.display), n=5)
            if closest:
                hint = "closest: " + ", ".join(self.display[match] for match in closest)
            else:
                hint = "no close match; give a class index or a name from the model's classes"
            raise JaxawareError(f"unknown class name {name!r}; {hint}")
        if len(indices) > 1:
            listed = ", ".join(f"{i} ({self.table[i][0]})" for i in indices)
            raise JaxawareError(f"class name {name!r} is ambiguous: it names classes {listed}; "
                                "give the index instead")
        return indices[0]


def _split_spec(spec: str) -> list[str]:
    """Split a comma-separated class list, honouring double quotes around names with commas."""
    if "\n" in spec or "\r" in spec:
        raise JaxawareError(f"class list {spec!r} contains a line break; give the classes on "
                            "one line, separated by commas")
    try:
        rows = list(csv.reader([spec], skipinitialspace=True))
    except csv.Error as exc:
        raise JaxawareError(f"cannot parse class list {spec!r} ({exc}); {_ACCEPTED_SPEC}") from None
    fields = [field.strip() for field in rows[0]] if rows else []
    if any(field == "" for field in fields):
        raise JaxawareError(f"class list {spec!r} has an empty entry; separate classes with "
                            "single commas")
    return fields


def resolve_classes(
    spec: str | int | Sequence[int | str],
    names: Sequence[str | Sequence[str]] | None,
    num_classes: int | None = None,
) -> list[int]:
    """Turn a user's class selection into a list of class indices, in the order given.

    Args:
      spec: what the user asked for: a string such as ``'207,"golden retriever",1'``
        (comma-separated, parsed as CSV so double-quoted names may contain commas), the
        string ``'all'`` (every class, ``0..num_classes-1``), a single int, or a list of
        ints and strings. Each entry is a class index ``0 <= i < num_classes`` (a string of
        digits counts as an index) or a class name. Duplicates are kept.
      names: the model's class-name table, one entry per class: a name, or a list of
        aliases whose first item is the display name. For ImageNet-1000 pass
        :func:`imagenet_class_aliases`. ``None`` for a model without names (then only
        indices are accepted and ``num_classes`` is required).
      num_classes: how many classes the model has; defaults to ``len(names)`` and must
        equal it when both are given.

    Names match case-insensitively against any alias, with ``_`` and ``' '`` equivalent.
    When a name is the display name of exactly one class it resolves to that class even if
    other classes list it as an alias (``'tub'`` is 876, not the bathtub); otherwise a name
    shared by several classes (``'crane'``) is rejected as ambiguous.

    Returns:
      The class indices, as Python ints.

    Raises:
      JaxawareError: empty or unparsable ``spec``, an index out of range, or a name that is
        unknown (the message lists up to 5 close matches) or ambiguous.
    """
    if names is None:
        if num_classes is None:
            raise JaxawareError("resolve_classes needs names (the model's class-name table) "
                                "or num_classes; got neither")
        num_classes = _check_num_classes(num_classes)
        index: _NameIndex | None = None
    else:
        table = _alias_table(names)
        if num_classes is None:
            num_classes = len(table)
        num_classes = _check_num_classes(num_classes)
        if len(table) != num_classes:
            raise JaxawareError(f"the class-name table has {len(table)} entries but num_classes "
                                f"is {num_classes}; they must match")
        index = _NameIndex(table)

    if isinstance(spec, str):
        if not spec.strip():
            raise JaxawareError(f"no classes given; {_ACCEPTED_SPEC}")
        if spec.strip().casefold() == "all":
            return list(range(num_classes))
        entries: list[int | str] = list(_split_spec(spec))
    elif isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        entries = [spec]
    elif isinstance(spec, (Sequence, np.ndarray)):
        entries = spec.tolist() if isinstance(spec, np.ndarray) else list(spec)
        if not entries:
            raise JaxawareError(f"no classes given; {_ACCEPTED_SPEC}")
    else:
        raise JaxawareError(f"classes must be a string or a list of ints and names; got "
                            f"{type(spec).__name__}; {_ACCEPTED_SPEC}")

    resolved = []
    for entry in entries:
        if isinstance(entry, str):
            text = entry.strip()
            if not text:
                raise JaxawareError(f"empty class name in {spec!r}; {_ACCEPTED_SPEC}")
            if _INDEX_RE.fullmatch(text):
                entry = int(text)
            elif index is None:
                raise JaxawareError(f"class name {text!r} given but this model has no class "
                                    f"names; give class indices 0..{num_classes - 1}")
            else:
                resolved.append(index.lookup(text))
                continue
        if isinstance(entry, bool) or not isinstance(entry, (int, np.integer)):
            raise JaxawareError(f"class entries must be ints or names; got {entry!r}")
        entry = int(entry)
        if not 0 <= entry < num_classes:
            raise JaxawareError(f"class index {entry} is out of range; this model has classes "
                                f"0..{num_classes - 1}")
        resolved.append(entry)
    return resolved


# --------------------------------------------------------------------------------------------
# Class vectors
# --------------------------------------------------------------------------------------------


def one_hot(labels, num_classes: int) -> np.ndarray:
    """One-hot class vectors for integer labels.

    Args:
      labels: integer class indices, shape ``[B]`` (NumPy, JAX or a list).
      num_classes: number of classes; every label must be in ``0..num_classes-1``.

    Returns:
      float32 array of shape ``[B, num_classes]`` with a single 1 per row.
    """
    num_classes = _check_num_classes(num_classes)
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise JaxawareError(f"class labels must have shape [B]; got {labels.shape}")
    if labels.size == 0:
        return np.zeros((0, num_classes), np.float32)
    if labels.dtype.kind not in "iu":
        raise JaxawareError(f"class labels must be integers; got dtype {labels.dtype}")
    bad = labels[(labels < 0) | (labels >= num_classes)]
    if bad.size:
        raise JaxawareError(f"class label {int(bad[0])} is out of range; this model has classes "
                            f"0..{num_classes - 1}")
    out = np.zeros((labels.shape[0], num_classes), np.float32)
    out[np.arange(labels.shape[0]), labels] = 1.0
    return out


def to_class_vectors(labels_or_vectors, num_classes: int, n_blocks: int | None = None):
    """The generator's class-conditioning input from labels or from class vectors.

    Args:
      labels_or_vectors: integer labels of shape ``[B]`` (one-hot encoded), class vectors
        of shape ``[B, num_classes]`` (e.g. mixtures of classes; passed through) or, when
        ``n_blocks`` is given, per-block class vectors ``[B, n_blocks, num_classes]``.
      num_classes: the model's number of classes.
      n_blocks: the model's number of blocks (None: per-block vectors are not accepted).

    Returns:
      float32 array of shape ``[B, num_classes]`` or ``[B, n_blocks, num_classes]``.
    """
    num_classes = _check_num_classes(num_classes)
    array = np.asarray(labels_or_vectors)
    per_block = f", or per-block class vectors [B, {n_blocks}, {num_classes}]" if n_blocks else ""
    if array.ndim == 1:
        if array.size and array.dtype.kind not in "iu":
            raise JaxawareError(f"class labels of shape [B] must be integers; got dtype "
                                f"{array.dtype} (or give class vectors of shape "
                                f"[B, {num_classes}])")
        return one_hot(array, num_classes)
    if array.ndim == 3 and n_blocks:
        if array.shape[1:] != (n_blocks, num_classes):
            raise JaxawareError(f"per-block class vectors must have shape [B, {n_blocks}, "
                                f"{num_classes}] ({n_blocks} blocks); got {list(array.shape)}")
    elif array.ndim != 2:
        raise JaxawareError(f"class input must be integer labels of shape [B] or class vectors "
                            f"of shape [B, {num_classes}]{per_block}; got {array.shape}")
    elif array.shape[1] != num_classes:
        raise JaxawareError(f"class vectors must have shape [B, {num_classes}]; got "
                            f"{array.shape}")
    if array.dtype.kind not in "biuf":
        raise JaxawareError(f"class vectors must be real numbers; got dtype {array.dtype}")
    vectors = array.astype(np.float32)
    if not np.isfinite(vectors).all():
        raise JaxawareError("class vectors contain NaN or infinity; give finite values")
    return vectors
