"""A procedural class-conditional image world with ground-truth parts.

16 classes in 4 families (critters, vehicles, plants, buildings), rendered at 32x32 or
64x64 with a per-pixel part map over one global part vocabulary, deterministically from
``(seed, index)``. See :mod:`.metadata` for the world as data (classes, families, parts,
palettes, similarity), :mod:`.render` for the renderer, :mod:`.classifier` for the shipped
reference classifier and its features, :mod:`.segmenter` for the shipped reference part
segmenter (per-pixel part labels of any world or generated image), and :mod:`.sheet` for a
PNG contact sheet.

    >>> from jaxaware.toyworld import WORLD, sample_dataset, load_classifier, load_segmenter
    >>> images, classes, part_maps = sample_dataset(64, seed=0, resolution=32)
    >>> clf = load_classifier()
    >>> clf.predict(images)          # doctest: +SKIP
    >>> seg = load_segmenter()       # doctest: +SKIP
    >>> seg.predict(images)          # doctest: +SKIP
"""

from jaxaware.toyworld.classifier import (
    ReferenceClassifier,
    ToyCNN,
    load_classifier,
    save_classifier,
)
from jaxaware.toyworld.metadata import PART_NAMES, RESOLUTIONS, WORLD, World
from jaxaware.toyworld.render import (
    Factors,
    background,
    balanced_classes,
    factors,
    light,
    render,
    sample_dataset,
)
from jaxaware.toyworld.segmenter import (
    ReferenceSegmenter,
    ToySegNet,
    load_segmenter,
    save_segmenter,
)
from jaxaware.toyworld.sheet import make_sheet, write_sheet

__all__ = [
    "WORLD",
    "World",
    "PART_NAMES",
    "RESOLUTIONS",
    "Factors",
    "factors",
    "background",
    "light",
    "render",
    "sample_dataset",
    "balanced_classes",
    "ReferenceClassifier",
    "ToyCNN",
    "load_classifier",
    "save_classifier",
    "ReferenceSegmenter",
    "ToySegNet",
    "load_segmenter",
    "save_segmenter",
    "make_sheet",
    "write_sheet",
]
