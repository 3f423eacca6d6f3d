"""Channel overlap between classes (He et al., Sec. 3.1, Fig. 5a).

For classes ``i`` and ``j`` with ``S_i``, ``S_j`` the ``k`` channels of highest category
awareness, the overlap is ``|S_i ∩ S_j| / k``: 1 for the same channels, 0 for disjoint
ones. The paper (k = 100 on ImageNet BigGAN) finds blocks of overlap among similar classes
and near-zero overlap between unrelated ones.

Over several sites, ``S_i`` is the union of each site's top ``k_s`` channels and the
overlap is divided by ``sum_s k_s``. Two random ``k``-subsets of ``C`` channels overlap by
``k / C`` on average (``chance`` in the result, summed the same way over sites).

Our defaults (the paper gives k = 100 but not which layer): every CCBN site, each with
``k_s = round(100 / 1536 * C_s)`` (at least 1) channels, the paper's share of a
1,536-channel layer; or an explicit ``k`` for every site. On a world model the
within-family and between-family means (:func:`family_means`) summarise the heatmap.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxaware.checks import check_int
from jaxaware.analysis._common import aw_rows, aw_sites, check_fraction
from jaxaware.errors import JaxawareError

__all__ = ["Overlap", "channel_overlap", "top_channels", "family_means", "overlap_matrix",
           "plan_sites", "PAPER_FRACTION"]

PAPER_FRACTION = 100 / 1536  # k = 100 of a 1,536-channel layer


@dataclasses.dataclass(frozen=True)
class Overlap:
    """``matrix`` ``[K, K]``: ``|S_i ∩ S_j| / k``; ``k`` = channels per class (summed over
    sites); ``per_site_k``: ``{site: k_s}``; ``chance``: the mean overlap of random sets."""

    matrix: np.ndarray
    classes: np.ndarray
    sites: tuple[str, ...]
    per_site_k: dict
    chance: float

    @property
    def k(self) -> int:
        return int(sum(self.per_site_k.values()))

    def to_json(self, class_names=None, families=None) -> dict:
        """Keys: ``classes``, ``class_names``, ``sites``, ``k``, ``per_site_k``, ``chance``,
        ``matrix`` ``[K, K]``, and with ``families`` the ``within_family`` and
        ``between_family`` means (:func:`family_means`)."""
        out = {"analysis": "overlap", "classes": self.classes, "class_names": class_names,
               "sites": list(self.sites), "k": self.k, "per_site_k": self.per_site_k,
               "chance": self.chance, "matrix": self.matrix}
        if families is not None:
            out.update(family_means(self.matrix, families))
        return out


def top_channels(scores, k: int, lowest: bool = False) -> np.ndarray:
    """Indices ``[K, k]`` of the ``k`` highest (or lowest) scores of each row (ties: the
    lower index first)."""
    scores = np.asarray(scores, np.float64)
    order = np.argsort(scores if lowest else -scores, axis=1, kind="stable")
    return order[:, :k]


def overlap_matrix(sets, k: int) -> np.ndarray:
    """``|S_i ∩ S_j| / k`` for sets given as index arrays ``[K, n]`` (n may exceed k when
    several sites' sets are joined)."""
    sets = [set(np.asarray(s).tolist()) for s in sets]
    n = len(sets)
    out = np.empty((n, n))
    for i in range(n):
        for j in range(i, n):
            out[i, j] = out[j, i] = len(sets[i] & sets[j]) / k
    return out


def plan_sites(names, site_offsets, sites=None, k=None, fraction=PAPER_FRACTION,
               model=None) -> dict:
    """``{site: k_s}`` for :func:`channel_overlap`: ``k`` at every site (an error if a site
    is narrower), or ``round(fraction * C_s)`` (at least 1)."""
    widths = {n: int(o[1]) - int(o[0]) for n, o in zip(names, site_offsets)}
    out = {}
    for name in aw_sites(names, sites, model):
        c = widths[name]
        if k is not None:
            ks = check_int(k, "k")
            if ks > c:
                raise JaxawareError(f"k={ks} is larger than site {name} ({c} channels); give "
                                    f"k <= {c} or choose wider sites")
        else:
            ks = max(1, int(round(check_fraction(fraction, "fraction") * c)))
        out[name] = ks
    return out


def channel_overlap(awareness, sites=None, k: int | None = None, *,
                    fraction: float = PAPER_FRACTION, classes=None, model=None) -> Overlap:
    """Overlap of the top-``k`` category-awareness channels of every pair of classes.

    Args:
      awareness: an :class:`~jaxaware.awareness.Awareness`.
      sites: CCBN sites (default: every site of the awareness file).
      k: channels per class at every site (at most the narrowest chosen site), or None for
        ``round(fraction * C_s)`` (at least 1) per site.
      classes: a subset of the awareness file's classes (indices; names with ``model``).
    """
    names = list(awareness.site_names)
    offsets = {n: tuple(map(int, o)) for n, o in zip(names, awareness.site_offsets)}
    per_site_k = plan_sites(names, awareness.site_offsets, sites, k, fraction, model)
    rows = aw_rows(awareness, classes, model)
    sets, chance = [], 0.0
    for name, ks in per_site_k.items():
        lo, hi = offsets[name]
        sets.append(lo + top_channels(awareness.category[rows, lo:hi], ks))
        chance += ks * ks / (hi - lo)
    joined = np.concatenate(sets, axis=1)
    total = sum(per_site_k.values())
    return Overlap(matrix=overlap_matrix(joined, total),
                   classes=np.asarray(awareness.classes)[rows], sites=tuple(per_site_k),
                   per_site_k=per_site_k, chance=chance / total)


def family_means(matrix, families) -> dict:
    """Mean overlap of pairs ``i != j`` in the same family and in different families.

    ``families``: one family label per row of ``matrix`` (e.g. ``WORLD.family_of(name)``).
    """
    m = np.asarray(matrix, np.float64)
    fam = np.asarray(families)
    same = fam[:, None] == fam[None, :]
    off = ~np.eye(len(fam), dtype=bool)
    within, between = m[same & off], m[~same]
    return {"within_family": float(within.mean()) if within.size else float("nan"),
            "between_family": float(between.mean()) if between.size else float("nan")}
