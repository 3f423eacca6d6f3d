"""What the toy world contains, as data: classes, families, parts, palettes, similarity.

The world has 16 classes in 4 families of 4. A family shares a part vocabulary and a
layout (all critters are side-view animals with a body, a head, ears and a tail; all
vehicles have a chassis, wheels and windows; ...), while classes of one family differ in
shape details, proportions and colours. Every pixel of every image is labelled with one
part of a single global vocabulary, :data:`PART_NAMES`, where index 0 is the background.

Nothing here is typed twice: which parts a class has is read off its palette (a class
has exactly the parts it has a colour for), and the class-similarity matrix is computed
from those part sets and palettes. Tests and experiments ask :data:`WORLD` which classes
are similar instead of hard-coding it.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

import numpy as np

from jaxaware.errors import JaxawareError

#: Resolutions the renderer supports (square images).
RESOLUTIONS = (32, 64)

#: Family name -> its class names, in class-index order.
FAMILIES: dict[str, tuple[str, ...]] = {
    "critters": ("cat", "bunny", "mouse", "bear"),
    "vehicles": ("car", "bus", "truck", "boat"),
    "plants": ("appletree", "pine", "sunflower", "cactus"),
    "buildings": ("house", "skyscraper", "barn", "castle"),
}

#: The global part vocabulary; index 0 is the background. "windows" is the one part two
#: families (vehicles and buildings) share.
PART_NAMES: tuple[str, ...] = (
    "background",
    "body", "head", "ears", "tail",          # critters
    "chassis", "wheels", "windows",         # vehicles (windows also in buildings)
    "stem", "leaves", "blossom",            # plants
    "walls", "roof", "door",                # buildings
)

#: Class name -> {part name: base RGB colour in [0, 1]}. The keys are the parts the class
#: has; every pixel of a part is drawn in that colour (jittered per image, then lit).
PALETTES: dict[str, dict[str, tuple[float, float, float]]] = {
    "cat": {"body": (0.93, 0.55, 0.16), "head": (0.97, 0.66, 0.28),
            "ears": (0.62, 0.27, 0.07), "tail": (0.80, 0.40, 0.10)},
    "bunny": {"body": (0.88, 0.86, 0.84), "head": (0.97, 0.96, 0.94),
              "ears": (0.96, 0.62, 0.70), "tail": (1.00, 1.00, 1.00)},
    "mouse": {"body": (0.42, 0.42, 0.48), "head": (0.52, 0.52, 0.58),
              "ears": (0.95, 0.58, 0.66), "tail": (0.85, 0.45, 0.55)},
    "bear": {"body": (0.40, 0.24, 0.12), "head": (0.50, 0.31, 0.16),
             "ears": (0.24, 0.13, 0.06)},
    "car": {"chassis": (0.86, 0.12, 0.14), "wheels": (0.12, 0.12, 0.14),
            "windows": (0.62, 0.86, 0.97)},
    "bus": {"chassis": (0.98, 0.78, 0.08), "wheels": (0.15, 0.15, 0.15),
            "windows": (0.25, 0.35, 0.48)},
    "truck": {"chassis": (0.12, 0.32, 0.82), "wheels": (0.10, 0.10, 0.10),
              "windows": (0.75, 0.92, 1.00)},
    "boat": {"chassis": (0.08, 0.12, 0.42), "windows": (1.00, 0.92, 0.55)},
    "appletree": {"stem": (0.45, 0.28, 0.12), "leaves": (0.30, 0.70, 0.20),
                  "blossom": (0.92, 0.08, 0.10)},
    "pine": {"stem": (0.36, 0.22, 0.10), "leaves": (0.04, 0.38, 0.20)},
    "sunflower": {"stem": (0.32, 0.62, 0.18), "leaves": (0.20, 0.50, 0.12),
                  "blossom": (1.00, 0.84, 0.05)},
    "cactus": {"stem": (0.16, 0.52, 0.34), "blossom": (0.98, 0.30, 0.65)},
    "house": {"walls": (0.94, 0.86, 0.62), "roof": (0.70, 0.18, 0.12),
              "door": (0.42, 0.22, 0.08), "windows": (0.58, 0.80, 0.96)},
    "skyscraper": {"walls": (0.40, 0.46, 0.58), "door": (0.12, 0.12, 0.16),
                   "windows": (0.98, 0.92, 0.45)},
    "barn": {"walls": (0.68, 0.10, 0.08), "roof": (0.28, 0.28, 0.30),
             "door": (0.96, 0.95, 0.90)},
    "castle": {"walls": (0.62, 0.62, 0.56), "roof": (0.18, 0.28, 0.72),
               "door": (0.30, 0.18, 0.08), "windows": (0.10, 0.10, 0.14)},
}


def _palette_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric chamfer distance between two sets of RGB colours (rows)."""
    d = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)
    return 0.5 * (d.min(axis=1).mean() + d.min(axis=0).mean())


@dataclass(frozen=True)
class World:
    """Immutable description of the toy world (see the module docstring).

    Attributes:
        class_names: the 16 class names; a class index is a position in this tuple.
        family_names: the 4 family names.
        class_family: int [16], the family index of each class.
        part_names: the global part vocabulary, ``part_names[0] == "background"``.
        class_parts: bool [16, num_parts], which parts each class has (background is False).
        palettes: float32 [16, num_parts, 3], each class's base colour per part (0 where the
            class lacks the part).
        part_similarity: float [16, 16], Jaccard overlap of the classes' part sets.
        palette_similarity: float [16, 16], ``exp(-chamfer / 0.25)`` of the palettes'
            RGB colour sets, so 1 for identical palettes and near 0 for unrelated ones.
        similarity: float [16, 16], ``0.7 * part_similarity + 0.3 * palette_similarity``;
            symmetric, 1 on the diagonal, and within a family well above across families.
        resolutions: the supported image sizes.
    """

    class_names: tuple[str, ...]
    family_names: tuple[str, ...]
    class_family: np.ndarray
    part_names: tuple[str, ...]
    class_parts: np.ndarray
    palettes: np.ndarray
    part_similarity: np.ndarray
    palette_similarity: np.ndarray
    similarity: np.ndarray
    resolutions: tuple[int, ...] = field(default=RESOLUTIONS)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_parts(self) -> int:
        """Size of the global part vocabulary, background included."""
        return len(self.part_names)

    def class_index(self, name_or_index) -> int:
        """The index of a class given by name (``"cat"``) or index (``0``).

        Raises :class:`JaxawareError` for an unknown name (listing the accepted names,
        closest first) or an index out of range.
        """
        if isinstance(name_or_index, str):
            if name_or_index in self.class_names:
                return self.class_names.index(name_or_index)
            order = difflib.get_close_matches(
                name_or_index, self.class_names, n=len(self.class_names), cutoff=0.0)
            order += [c for c in self.class_names if c not in order]
            raise JaxawareError(
                f"unknown class {name_or_index!r}; accepted names (closest first): "
                + ", ".join(order))
        if isinstance(name_or_index, (bool, np.bool_)) or not isinstance(
                name_or_index, (int, np.integer)):
            raise JaxawareError(
                f"a class must be a name or an integer index, got {name_or_index!r}")
        if not 0 <= int(name_or_index) < self.num_classes:
            raise JaxawareError(
                f"unknown class {int(name_or_index)}; class indices are 0..{self.num_classes - 1}")
        return int(name_or_index)

    def part_index(self, name: str) -> int:
        """The index of a part name in the global vocabulary."""
        if name in self.part_names:
            return self.part_names.index(name)
        order = difflib.get_close_matches(name, self.part_names, n=len(self.part_names),
                                          cutoff=0.0)
        order += [p for p in self.part_names if p not in order]
        raise JaxawareError(f"unknown part {name!r}; accepted names (closest first): "
                            + ", ".join(order))

    def family_of(self, name_or_index) -> str:
        """The family name of a class."""
        return self.family_names[self.class_family[self.class_index(name_or_index)]]

    def parts_of(self, name_or_index) -> tuple[str, ...]:
        """The part names a class has, in vocabulary order."""
        row = self.class_parts[self.class_index(name_or_index)]
        return tuple(p for p, has in zip(self.part_names, row) if has)

    def most_similar(self, name_or_index, k: int = 3) -> tuple[str, ...]:
        """The ``k`` other classes most similar to a class, most similar first."""
        c = self.class_index(name_or_index)
        order = [int(j) for j in np.argsort(-self.similarity[c], kind="stable") if j != c]
        return tuple(self.class_names[j] for j in order[:k])


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def build_world() -> World:
    """Build :class:`World` from :data:`FAMILIES`, :data:`PART_NAMES` and :data:`PALETTES`."""
    class_names = tuple(c for members in FAMILIES.values() for c in members)
    family_names = tuple(FAMILIES)
    class_family = np.array([i for i, members in enumerate(FAMILIES.values())
                             for _ in members], dtype=np.int32)
    n, p = len(class_names), len(PART_NAMES)
    class_parts = np.zeros((n, p), dtype=bool)
    palettes = np.zeros((n, p, 3), dtype=np.float32)
    for c, name in enumerate(class_names):
        for part, rgb in PALETTES[name].items():
            k = PART_NAMES.index(part)
            class_parts[c, k] = True
            palettes[c, k] = rgb
    inter = (class_parts[:, None, :] & class_parts[None, :, :]).sum(-1)
    union = (class_parts[:, None, :] | class_parts[None, :, :]).sum(-1)
    part_sim = inter / union
    pal_sim = np.ones((n, n))
    for a in range(n):
        for b in range(n):
            d = _palette_distance(palettes[a][class_parts[a]], palettes[b][class_parts[b]])
            pal_sim[a, b] = np.exp(-d / 0.25)
    similarity = 0.7 * part_sim + 0.3 * pal_sim
    return World(
        class_names=class_names,
        family_names=family_names,
        class_family=_readonly(class_family),
        part_names=PART_NAMES,
        class_parts=_readonly(class_parts),
        palettes=_readonly(palettes),
        part_similarity=_readonly(part_sim),
        palette_similarity=_readonly(pal_sim),
        similarity=_readonly(similarity),
    )


#: The toy world's metadata; import this rather than re-deriving it.
WORLD = build_world()


def check_resolution(resolution) -> int:
    """Return ``resolution`` as an int, or raise :class:`JaxawareError` if unsupported."""
    if isinstance(resolution, (bool, np.bool_)) or not isinstance(
            resolution, (int, np.integer)) or int(resolution) not in RESOLUTIONS:
        raise JaxawareError(f"resolution {resolution!r} is not supported; use 32 or 64")
    return int(resolution)
