"""Zeroing channel groups chosen by category awareness (He et al., Sec. 3.1, Fig. 3).

For a class ``k`` and one or more CCBN sites, take at each site the ``n`` channels of
lowest category awareness ``-E_z[t]``, ``n`` channels drawn at random, and the ``n`` of
highest awareness, and zero each group (all sites at once) in the same ``M`` syntheses.
The paper's finding: zeroing the highest-awareness channels removes what makes the class
(the classifier stops seeing it), the lowest changes little, random lies in between.

What the paper leaves open, and our defaults: how many channels (``fraction = 0.25`` of
each site, at least one; or an explicit ``count`` per site), which sites (``L0``, the first
layer, as in our other analyses; ``sites=None`` zeroes at every CCBN site at once), and the
random draw (``group_seed = 0``, one draw per site).

Reported per group (``original``, ``lowest``, ``random``, ``highest``): the classifier's
probability of class ``k``, its accuracy (argmax is ``k``), and the mean absolute pixel
change from the original (images in [-1, 1]).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxaware.checks import check_int, check_seed
from jaxaware.analysis._common import (
    AWARENESS_LATENTS,
    awareness_rows,
    ccbn_sites,
    check_fraction,
    classify_batched,
    generate_batched,
    image_seed,
    latents,
    one_class,
    softmax,
)
from jaxaware.analysis.classifier import as_classifier
from jaxaware.errors import JaxawareError
from jaxaware.generate import check_model
from jaxaware.interventions import flat_zero

__all__ = ["Ablation", "ablation_groups", "plan_groups", "GROUPS", "group_channels"]

#: The channel groups, in the order of Fig. 3.
GROUPS = ("lowest", "random", "highest")


@dataclasses.dataclass(frozen=True)
class Ablation:
    """Fig. 3 for one class: the original syntheses and those with each group zeroed.

    ``images`` ``[4, M, H, W, 3]`` (original, lowest, random, highest); ``prob`` and
    ``correct`` ``[4, M]``; ``channels[group][site]``: site-local channel indices zeroed.
    """

    cls: int
    sites: tuple[str, ...]
    channels: dict
    images: np.ndarray
    prob: np.ndarray
    correct: np.ndarray
    truncation: float
    seed: int

    @property
    def names(self) -> tuple[str, ...]:
        return ("original",) + GROUPS

    def difference(self) -> np.ndarray:
        """``[3, M, H, W]``: mean over RGB of ``|edited - original|`` for each group."""
        return np.abs(self.images[1:] - self.images[:1]).mean(axis=-1)

    def summary(self) -> dict:
        """Per group: mean probability, accuracy, mean absolute pixel change."""
        change = [0.0] + [float(d.mean()) for d in self.difference()]
        return {name: {"prob": float(self.prob[i].mean()),
                       "accuracy": float(self.correct[i].mean()),
                       "pixel_change": change[i]} for i, name in enumerate(self.names)}

    def to_json(self, class_name=None) -> dict:
        """Keys: ``class``, ``class_name``, ``sites``, ``num_latents``, ``truncation``,
        ``seed``, ``summary`` (per group ``prob``, ``accuracy``, ``pixel_change``),
        ``prob`` and ``correct`` per group and latent, ``channels`` per group and site."""
        return {"analysis": "ablation", "class": self.cls, "class_name": class_name,
                "sites": list(self.sites), "num_latents": int(self.images.shape[1]),
                "truncation": self.truncation, "seed": self.seed, "summary": self.summary(),
                "prob": dict(zip(self.names, self.prob)),
                "correct": dict(zip(self.names, self.correct)), "channels": self.channels}


def group_channels(category_row, site, count: int, rng) -> dict[str, np.ndarray]:
    """``{lowest, random, highest}`` site-local channel indices (``count`` each) of a site
    from one class's category awareness over the flat axis."""
    a = np.asarray(category_row)[site.offset:site.offset + site.channels]
    order = np.argsort(a, kind="stable")
    return {"lowest": np.sort(order[:count]),
            "random": np.sort(rng.choice(site.channels, count, replace=False)),
            "highest": np.sort(order[-count:])}


def plan_groups(config, sites="L0", fraction: float = 0.25, count: int | None = None):
    """``(sites, channels per group at each)`` for :func:`ablation_groups`, checked."""
    chosen = ccbn_sites(config, sites)
    return chosen, [_count(s, fraction, count) for s in chosen]


def _count(site, fraction, count) -> int:
    if count is not None:
        n = check_int(count, "count")
        if n > site.channels:
            raise JaxawareError(f"count {n} is larger than site {site.name} ({site.channels} "
                                f"channels); give count <= {site.channels} or a fraction")
        return n
    return max(1, int(round(check_fraction(fraction, "fraction") * site.channels)))


def ablation_groups(model, classifier=None, cls=0, sites="L0", *, fraction: float = 0.25,
                    count: int | None = None, num_latents: int = 64, awareness=None,
                    awareness_latents: int = AWARENESS_LATENTS, truncation: float = 1.0,
                    seed: int = 0, group_seed: int = 0) -> Ablation:
    """Zero the lowest-, random- and highest-awareness channels of ``cls`` (Fig. 3).

    Args:
      cls: the class (index or name).
      sites: CCBN sites (names, labels, a comma-separated string; None: every site).
      fraction / count: how many channels per site: ``round(fraction * C)`` (at least 1),
        or ``count`` channels of every site (at most the narrowest site's width).
      num_latents: syntheses ``M`` (latents of ``seed + 1``; awareness from ``seed``).
      awareness: an :class:`~jaxaware.awareness.Awareness` with a row for ``cls``, or None.
      group_seed: the random group's draw.
    """
    cfg = check_model(model).config
    k = one_class(model, cls)
    chosen, counts = plan_groups(cfg, sites, fraction, count)
    clf = as_classifier(classifier, model)
    m = check_int(num_latents, "num_latents")
    category, _ = awareness_rows(model, [k], awareness, awareness_latents, truncation, seed)
    rng = np.random.default_rng(check_seed(group_seed, what="group_seed"))
    channels: dict = {g: {} for g in GROUPS}
    columns: dict = {g: [] for g in GROUPS}
    for s, n in zip(chosen, counts):
        for g, idx in group_channels(category[0], s, n, rng).items():
            channels[g][s.name] = idx
            columns[g].append(s.offset + idx)
    z = latents(model, m, truncation, image_seed(seed))
    labels = np.full(m, k)
    images = [generate_batched(model, z, labels, truncation)]
    for g in GROUPS:
        edit = flat_zero(cfg, np.concatenate(columns[g]))
        images.append(generate_batched(model, z, labels, truncation, edit))
    images = np.stack(images)
    logits = np.stack([classify_batched(clf, x) for x in images])
    prob = softmax(logits)[..., k]
    return Ablation(cls=k, sites=tuple(s.name for s in chosen), channels=channels,
                    images=images, prob=prob, correct=logits.argmax(-1) == k,
                    truncation=float(truncation), seed=int(seed))
