"""Applying a channel found for one class to other classes (He et al., Sec. 3.1, Fig. 5b).

Take the channel ``c`` of highest category awareness of a *source* class at a CCBN site and
edit it in syntheses of *target* classes. The paper's finding: the edit changes the
source's similar classes (or classes showing the same semantic) and leaves unrelated
classes alone.

The edit (our parametrisation; the paper edits by "multiplying or adding a constant",
Sec. 4.1, magnitudes unstated), with a signed ``strength``:

* ``op = "add"`` (default): ``h_c <- h_c + strength * r_c`` with ``r_c`` the root mean
  square of the channel's post-ReLU map over the source class's syntheses, so the size of
  the edit does not depend on the model's feature scale;
* ``op = "multiply"``: ``h_c <- (1 + strength) * h_c`` (``strength = -1`` zeroes it).

Default ``strength = 3``, site ``L0``, ``M = 16`` latents (the same for every target).
Reported per target: the mean absolute pixel change, and the classifier's probability of
the target's own class and of the source class before and after the edit; on a world
model, their means over same-family and other-family targets (the source left out).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxaware.checks import check_int
from jaxaware.analysis._common import (
    AWARENESS_LATENTS,
    awareness_rows,
    ccbn_sites,
    class_list,
    classify_batched,
    generate_batched,
    image_seed,
    latents,
    one_class,
    softmax,
)
from jaxaware.analysis.classifier import as_classifier
from jaxaware.errors import JaxawareError
from jaxaware.generate import check_model, generate
from jaxaware.interventions import flat_add, flat_multiply
from jaxaware.models.layers import Capture

__all__ = ["Transfer", "channel_transfer", "plan_transfer", "OPS"]

OPS = ("add", "multiply")


@dataclasses.dataclass(frozen=True)
class Transfer:
    """One channel of ``source`` edited in every target: ``original``/``edited`` images
    ``[T, M, H, W, 3]``; per target ``pixel_change`` and the probabilities ``[T]``."""

    source: int
    site: str
    channel: int  # site-local
    op: str
    strength: float
    amount: float  # the factor (multiply) or the added constant (add)
    targets: np.ndarray
    original: np.ndarray
    edited: np.ndarray
    prob_target: np.ndarray  # [T, 2]: before, after
    prob_source: np.ndarray  # [T, 2]

    @property
    def pixel_change(self) -> np.ndarray:
        return np.abs(self.edited - self.original).mean(axis=(1, 2, 3, 4))

    def family_summary(self, families) -> dict:
        """Means over same-family and other-family targets (the source itself excluded) of
        ``pixel_change``, ``target_drop`` (fall of the target's own probability) and
        ``source_gain`` (rise of the source's probability). ``families``: one label per
        class index of the model."""
        fam = np.asarray(families)
        others = self.targets != self.source
        same = (fam[self.targets] == fam[self.source]) & others
        diff = fam[self.targets] != fam[self.source]
        values = {"pixel_change": self.pixel_change,
                  "target_drop": self.prob_target[:, 0] - self.prob_target[:, 1],
                  "source_gain": self.prob_source[:, 1] - self.prob_source[:, 0]}
        out = {}
        for name, mask in (("same_family", same), ("other_family", diff),
                           ("source", self.targets == self.source)):
            out[name] = {k: (float(v[mask].mean()) if mask.any() else None)
                         for k, v in values.items()}
            out[name]["targets"] = int(mask.sum())
        return out

    def to_json(self, class_names=None, families=None) -> dict:
        """Keys: ``source``, ``site``, ``channel``, ``op``, ``strength``, ``amount``,
        ``targets``, ``class_names``, per target ``pixel_change``, ``prob_target`` and
        ``prob_source`` (``[before, after]``), and with ``families`` the ``summary``
        (:meth:`family_summary`)."""
        out = {"analysis": "transfer", "source": self.source, "site": self.site,
               "channel": self.channel, "op": self.op, "strength": self.strength,
               "amount": self.amount, "num_latents": int(self.original.shape[1]),
               "targets": self.targets, "class_names": class_names,
               "pixel_change": self.pixel_change, "prob_target": self.prob_target,
               "prob_source": self.prob_source}
        if families is not None:
            out["summary"] = self.family_summary(families)
        return out


def plan_transfer(config, site="L0", channel=None, op="add", strength=3.0):
    """Checks the settings of :func:`channel_transfer`; returns the site."""
    (s,) = ccbn_sites(config, [site])
    if op not in OPS:
        raise JaxawareError(f"op must be one of {', '.join(OPS)}; got {op!r}")
    if isinstance(strength, bool) or not isinstance(strength, (int, float, np.number)) \
            or not np.isfinite(strength):
        raise JaxawareError(f"strength must be a finite number; got {strength!r}")
    if channel is not None and not (isinstance(channel, (int, np.integer))
                                    and not isinstance(channel, bool)
                                    and 0 <= channel < s.channels):
        raise JaxawareError(f"channel {channel!r} is out of range; {s.name} has channels "
                            f"0..{s.channels - 1}")
    return s


def channel_transfer(model, classifier=None, source=0, targets=None, site="L0", *,
                     channel: int | None = None, op: str = "add", strength: float = 3.0,
                     num_latents: int = 16, awareness=None,
                     awareness_latents: int = AWARENESS_LATENTS, truncation: float = 1.0,
                     seed: int = 0) -> Transfer:
    """Edit the source's top channel (or ``channel``) at ``site`` in syntheses of ``targets``.

    ``targets``: classes (default: every class). ``channel``: a site-local index (default:
    the source's highest category awareness at the site). See the module doc for ``op``
    and ``strength``. Latents come from ``seed + 1``; awareness from ``seed``.
    """
    cfg = check_model(model).config
    src = one_class(model, source, "source")
    tgts = class_list(model, targets)
    s = plan_transfer(cfg, site, channel, op, strength)
    clf = as_classifier(classifier, model)
    m = check_int(num_latents, "num_latents")
    if channel is None:
        category, _ = awareness_rows(model, [src], awareness, awareness_latents, truncation,
                                     seed)
        channel = int(np.argmax(category[0, s.offset:s.offset + s.channels]))
    z = latents(model, m, truncation, image_seed(seed))
    col = s.offset + int(channel)
    if op == "add":
        _, cap = generate(model, z, np.full(m, src), truncation,
                          capture=Capture(probes=False, features=True, sites=(s.name,)))
        rms = float(np.sqrt(np.mean(np.square(np.asarray(cap[s.name]["features"])[..., channel]))))
        if rms == 0:
            raise JaxawareError(f"channel {channel} of {s.name} is never active for the source; "
                                "op 'add' scales by its activity: use op 'multiply' or another "
                                "channel")
        amount = float(strength) * rms
        edit = flat_add(cfg, [col], amount)
    else:
        amount = 1.0 + float(strength)
        edit = flat_multiply(cfg, [col], amount)
    original, edited, p_t, p_s = [], [], [], []
    for t in tgts:
        labels = np.full(m, t)
        before = generate_batched(model, z, labels, truncation)
        after = generate_batched(model, z, labels, truncation, edit)
        probs = softmax(classify_batched(clf, np.concatenate([before, after])))
        original.append(before)
        edited.append(after)
        p_t.append([probs[:m, t].mean(), probs[m:, t].mean()])
        p_s.append([probs[:m, src].mean(), probs[m:, src].mean()])
    return Transfer(source=src, site=s.name, channel=int(channel), op=op,
                    strength=float(strength), amount=amount, targets=np.asarray(tgts),
                    original=np.stack(original), edited=np.stack(edited),
                    prob_target=np.asarray(p_t), prob_source=np.asarray(p_s))
