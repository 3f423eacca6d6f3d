"""Class-shared channels (He et al., Sec. 3.2, Tab. 1).

At every CCBN site, select ``k`` channels per class under a criterion and intersect the
selections of all classes, one class after another. Three criteria:

* ``category_high``: highest category awareness ``-E_z[t]``;
* ``category_low``: lowest category awareness;
* ``latent_high``: highest latent awareness ``Var_z[t]``.

The paper (k = 10, 1,000 ImageNet classes, BigGAN layers L0-L11) finds nothing left under
the two category criteria and 0-5 channels per layer under the latent one: channels every
class hands to the latent. Its Tab. 1 row ``latent_high`` reads 3 3 3 1 3 3 0 4 2 1 5 4.

If the ``K`` selections were independent uniform draws, a channel would survive with
probability ``(k / C)^K``; ``chance`` reports the expected count ``C (k / C)^K``. A site
narrower than ``k`` channels cannot be asked (an error when named; skipped, and listed in
``skipped``, when every site is taken by default), and ``k = C`` selects the whole site.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxaware.checks import check_int
from jaxaware.analysis._common import aw_rows, aw_sites
from jaxaware.analysis.overlap import top_channels
from jaxaware.errors import JaxawareError

__all__ = ["SharedChannels", "shared_channels", "plan_sites", "CRITERIA", "PAPER_TABLE"]

CRITERIA = ("category_high", "category_low", "latent_high")

#: Tab. 1 of the paper (BigGAN, 1,000 classes, k = 10), layers L0..L11.
PAPER_TABLE = {"category_high": [0] * 12, "category_low": [0] * 12,
               "latent_high": [3, 3, 3, 1, 3, 3, 0, 4, 2, 1, 5, 4]}


@dataclasses.dataclass(frozen=True)
class SharedChannels:
    """``channels[criterion][site]``: site-local indices in every class's selection;
    ``survivors[criterion][site]``: ``[K]`` how many are left after intersecting the first
    1, 2, ..., K classes; ``chance[site]``: expected count for random selections."""

    k: int
    classes: np.ndarray
    sites: tuple[str, ...]
    labels: tuple[str, ...]
    channels: dict
    survivors: dict
    chance: dict
    skipped: tuple[str, ...]

    def counts(self, criterion: str) -> list[int]:
        return [len(self.channels[criterion][s]) for s in self.sites]

    def table(self) -> str:
        """Tab. 1 as text: one row per criterion, one column per site (counts)."""
        head = ["criterion"] + list(self.labels)
        rows = [[c] + [str(n) for n in self.counts(c)] for c in CRITERIA]
        rows.append(["chance"] + [f"{self.chance[s]:.2g}" for s in self.sites])
        widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
        return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip()
                         for r in [head] + rows)

    def to_json(self, class_names=None) -> dict:
        """Keys: ``k``, ``classes``, ``class_names``, ``sites``, ``labels``, ``counts``
        (per criterion, one per site), ``channels`` and ``survivors`` (per criterion and
        site), ``chance`` (per site), ``skipped`` (sites narrower than k)."""
        return {"analysis": "shared", "k": self.k, "classes": self.classes,
                "class_names": class_names, "sites": list(self.sites),
                "labels": list(self.labels),
                "counts": {c: self.counts(c) for c in CRITERIA},
                "channels": self.channels, "survivors": self.survivors,
                "chance": self.chance, "skipped": list(self.skipped)}


def plan_sites(names, site_offsets, k, sites=None, model=None):
    """``(chosen, skipped)`` site names for :func:`shared_channels`: the named sites (an
    error if one is narrower than ``k``), or every site wider than ``k``."""
    k = check_int(k, "k")
    widths = {n: int(o[1]) - int(o[0]) for n, o in zip(names, site_offsets)}
    chosen, skipped = aw_sites(names, sites, model), []
    if sites is None:
        skipped = [n for n in chosen if widths[n] <= k]
        chosen = [n for n in chosen if n not in skipped]
        if not chosen:
            raise JaxawareError(f"every site has at most k={k} channels; give a smaller k")
    for n in chosen:
        if k > widths[n]:
            raise JaxawareError(f"k={k} is larger than site {n} ({widths[n]} channels); give "
                                f"k <= {widths[n]} or choose wider sites")
    return chosen, skipped


def shared_channels(awareness, k: int = 10, sites=None, *, classes=None,
                    model=None) -> SharedChannels:
    """Channels in the top-``k`` of every class, per site and criterion (Tab. 1).

    ``awareness``: an :class:`~jaxaware.awareness.Awareness`; ``sites``: CCBN sites
    (default: every site wider than ``k``); ``classes``: a subset of its classes (names
    with ``model``).
    """
    names = list(awareness.site_names)
    offsets = {n: tuple(map(int, o)) for n, o in zip(names, awareness.site_offsets)}
    rows = aw_rows(awareness, classes, model)
    if len(rows) < 2:
        raise JaxawareError(f"shared channels need at least 2 classes to intersect; got "
                            f"{len(rows)}")
    chosen, skipped = plan_sites(names, awareness.site_offsets, k, sites, model)
    k = int(k)
    channels = {c: {} for c in CRITERIA}
    survivors = {c: {} for c in CRITERIA}
    chance = {}
    for n in chosen:
        lo, hi = offsets[n]
        cat = np.asarray(awareness.category)[rows, lo:hi]
        lat = np.asarray(awareness.latent)[rows, lo:hi]
        picks = {"category_high": top_channels(cat, k),
                 "category_low": top_channels(cat, k, lowest=True),
                 "latent_high": top_channels(lat, k)}
        for crit, sel in picks.items():
            left, curve = set(sel[0].tolist()), []
            for row in sel:
                left &= set(row.tolist())
                curve.append(len(left))
            channels[crit][n] = np.array(sorted(left), np.int64)
            survivors[crit][n] = np.array(curve, np.int64)
        chance[n] = (hi - lo) * (k / (hi - lo)) ** len(rows)
    labels = tuple(f"L{names.index(n)}" for n in chosen)
    return SharedChannels(k=k, classes=np.asarray(awareness.classes)[rows],
                          sites=tuple(chosen), labels=labels, channels=channels,
                          survivors=survivors, chance=chance, skipped=tuple(skipped))
