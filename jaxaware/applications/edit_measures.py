"""What a single-channel edit changes, measured on the toy world (He et al., Sec. 4.1).

For an :class:`~jaxaware.applications.editing.EditSweep` (channel ``e``, strength ``s``,
latent ``b``):

* the change map ``m[e, s, b] = mean_rgb |x'[e, s, b] - x[b]|`` (images in [-1, 1]);
* its share on part ``p`` of the reference segmenter's map of the *unedited* image ``x[b]``,
  pooled over images and edits, ``sum_{pixels in p} m / sum m``, next to the area ``p``
  covers: a share above the area means the edit concentrates there. The background (label
  0) is the class-independent factor; the object is every other label;
* identity: the reference classifier's probability of the conditioning class after the
  edit (``p_class``) and the share of edited images it still assigns to that class
  (``kept``);
* pose and shape: the IoU of the object masks (label > 0) the segmenter finds before and
  after the edit (1: the object did not move or change outline).

The paper's claim (Sec. 4.1, Fig. 6, 7) is qualitative: class-oriented channels edit
attributes of the object, latent-oriented (class-shared) channels edit factors every class
shares. :func:`edit_report` measures both kinds on every class and reports what comes out.
"""

from __future__ import annotations

import math

import numpy as np

from jaxaware.applications._common import (
    awareness_for,
    class_list,
    class_name,
    latents,
    softmax,
    world_references,
)
from jaxaware.applications.editing import (
    DEFAULT_STRENGTHS,
    EditSweep,
    category_channels,
    edit_sweep,
    parse_channels,
    shared_latent_channels,
)
from jaxaware.errors import JaxawareError

__all__ = ["change_maps", "score_edits", "summarize_edits", "edit_report", "CHANNEL_KINDS"]

CHANNEL_KINDS = ("category", "latent", "both")


def change_maps(sweep: EditSweep) -> np.ndarray:
    """``[E, S, B, H, W]``: mean over RGB of ``|edited - input|`` (image range [-1, 1])."""
    return np.abs(sweep.images - sweep.inputs[None, None]).mean(axis=-1)


def score_edits(sweep: EditSweep, *, parts=None, classifier=None, segmenter=None,
                num_labels: int | None = None) -> dict:
    """What every edit changed, per channel ``e`` and strength ``s`` (arrays ``[E, S]``).

    Args:
      parts: part labels ``[B, H, W]`` of the unedited images (0 = background); default:
        ``segmenter.predict`` of them when a segmenter is given.
      classifier: anything with ``logits(images) -> [N, K]`` (the world's classifier).
      segmenter: anything with ``predict(images) -> [N, H, W]`` labels.
      num_labels: part labels (default: the world's 14).

    Returns:
      ``magnitude`` (mean change per pixel); with parts: ``change`` ``[E, S, L]`` (summed
      change per label), ``area`` ``[E, L]`` (pixel share of each label in the unedited
      images); with a classifier: ``p_class``, ``kept``, and for the unedited images
      ``p_class_input``, ``kept_input`` (scalars); with a segmenter: ``object_iou``.
    """
    change = change_maps(sweep)
    e, s, b = change.shape[:3]
    out = {"magnitude": change.mean(axis=(2, 3, 4))}
    if parts is None and segmenter is not None:
        parts = np.asarray(segmenter.predict(sweep.inputs))
    if parts is not None:
        from jaxaware.toyworld import PART_NAMES

        parts = np.asarray(parts, np.int64)
        if parts.shape != change.shape[2:]:
            raise JaxawareError(f"part maps must be [B, H, W] = {list(change.shape[2:])}; got "
                                f"{list(parts.shape)}")
        n_lab = num_labels or len(PART_NAMES)
        onehot = (parts[..., None] == np.arange(n_lab)).astype(np.float64)
        out["change"] = np.einsum("esbhw,bhwl->esl", change, onehot)
        out["area"] = np.broadcast_to(onehot.mean(axis=(0, 1, 2)), (e, n_lab)).copy()
    flat = sweep.images.reshape((-1,) + sweep.images.shape[3:])
    if classifier is not None:
        probs = softmax(np.asarray(classifier.logits(flat))).reshape(e, s, b, -1)
        p = np.take_along_axis(probs, sweep.classes[None, None, :, None], axis=-1)[..., 0]
        out["p_class"] = p.mean(-1)
        out["kept"] = (probs.argmax(-1) == sweep.classes[None, None]).mean(-1)
        out["p_class_input"] = float(p[0, sweep.input_index].mean())
        out["kept_input"] = float(out["kept"][0, sweep.input_index])
    if segmenter is not None:
        seg = np.asarray(segmenter.predict(flat)).reshape(change.shape) > 0
        before = seg[0, sweep.input_index][None, None]
        inter = np.logical_and(seg, before).sum(axis=(3, 4))
        union = np.logical_or(seg, before).sum(axis=(3, 4))
        out["object_iou"] = np.where(union > 0, inter / np.maximum(union, 1), 1.0).mean(-1)
    return out


def summarize_edits(groups, strengths, scores: dict, part_names=None) -> dict:
    """Means per channel group and direction over the edits with ``s != 0``.

    Args:
      groups: the group (``category``, ``latent``, ``given``) of every row ``e``.
      strengths: ``[S]``; scores: :func:`score_edits` arrays (rows of several sweeps may be
        concatenated along ``e``).

    Returns:
      ``{group: {'channels': n, 'negative' | 'positive' | 'both': {...}}}`` with the mean
      ``magnitude``; the pooled ``background_share`` (= 1 - ``object_share``) and per-part
      ``part_share`` of the change next to ``background_area`` (mean over rows); the mean
      ``p_class``, ``kept``, ``object_iou``.
    """
    groups = np.asarray(groups)
    strengths = np.asarray(strengths)
    out = {}
    for group in dict.fromkeys(groups.tolist()):
        rows = groups == group
        entry = {"channels": int(rows.sum())}
        for direction, cols in (("negative", strengths < 0), ("positive", strengths > 0),
                                ("both", strengths != 0)):
            if not cols.any():
                continue
            sel = np.ix_(rows, cols)
            d = {"magnitude": float(scores["magnitude"][sel].mean())}
            if "change" in scores:
                change = scores["change"][sel].sum(axis=(0, 1))
                total = change.sum()
                area = scores["area"][rows].mean(axis=0)
                d["background_share"] = float(change[0] / total) if total > 0 else math.nan
                d["object_share"] = 1 - d["background_share"]
                d["background_area"] = float(area[0])
                if part_names is not None:
                    d["part_share"] = {part_names[i]: float(change[i] / total) if total > 0
                                       else math.nan for i in range(len(change))
                                       if area[i] > 0 or change[i] > 0}
                    d["part_area"] = {part_names[i]: float(area[i]) for i in range(len(area))
                                      if area[i] > 0 or change[i] > 0}
            for key in ("p_class", "kept", "object_iou"):
                if key in scores:
                    d[key] = float(scores[key][sel].mean())
            entry[direction] = d
        out[group] = entry
    return out


def _channels_for(model, aw, cls, kind, n, sites, shared):
    if kind == "category":
        return category_channels(aw, cls, n, sites)
    if kind == "latent":
        return list(shared)
    if kind == "both":
        return category_channels(aw, cls, n, sites) + list(shared)
    return parse_channels(model.config, kind)


def edit_report(model, classes, *, channels: str = "both", num_channels: int = 3, sites=None,
                strengths=DEFAULT_STRENGTHS, modes=("add",), units: str = "std",
                per_class: int = 4, truncation: float = 1.0, seed: int = 0, awareness=None,
                references=None, progress: bool = False) -> tuple[list, dict]:
    """Sweeps and their scores for every class (and mode).

    Args:
      classes: class indices or names; channels: ``category`` (the class's top
        ``num_channels``), ``latent`` (the ``num_channels`` most class-shared latent
        channels, the same for every class), ``both``, or a ``SITE:CHANNEL`` list.
      sites: restrict the chosen channels to these CCBN sites.
      per_class: latents per class (the same latents, from ``seed``, for every class).
      awareness: rows for every class of the model (``latent``/``both``) or for ``classes``;
        computed with 1000 latents at ``truncation``, seed 0, if not given.
      references: ``(classifier, segmenter, notes)``; default: the toy world's, when the
        model is a world model (:func:`~jaxaware.applications._common.world_references`).

    Returns:
      ``(sweeps, payload)``: the :class:`EditSweep` of every (mode, class) and a JSON-ready
      dict (settings; ``summary`` per mode over all classes; ``results`` per mode and class).
    """
    from jaxaware.toyworld import PART_NAMES

    labels = class_list(model, classes)
    kind = channels
    need_all = kind in ("latent", "both")
    pool = list(range(model.config.num_classes)) if need_all else labels
    aw = None
    if kind in CHANNEL_KINDS:
        aw = awareness_for(model, pool, awareness, truncation)
    shared = shared_latent_channels(aw, num_channels, sites) if need_all else []
    clf, segm, notes = references if references is not None else world_references(model)
    z = latents(model, per_class, truncation, seed)
    sweeps, per_class_out, summaries = [], [], {}
    for mode in modes:
        rows_groups, rows_scores = [], []
        steps = labels
        if progress:
            from tqdm.auto import tqdm

            steps = tqdm(labels, desc=f"edit ({mode})", unit="class")
        for cls in steps:
            chans = _channels_for(model, aw, cls, kind, num_channels, sites, shared)
            sw = edit_sweep(model, z, cls, chans, strengths, mode=mode, units=units,
                            truncation=truncation)
            sc = score_edits(sw, classifier=clf, segmenter=segm)
            sweeps.append(sw)
            rows_groups += [ch.group for ch in sw.channels]
            rows_scores.append(sc)
            per_class_out.append({
                "mode": mode, "class": cls, "class_name": class_name(model, cls),
                "channels": [{"site": ch.site, "channel": ch.channel, "column": ch.column,
                              "group": ch.group, "score": ch.score} for ch in sw.channels],
                "amounts": sw.amounts,
                "summary": summarize_edits([ch.group for ch in sw.channels], sw.strengths,
                                           sc, PART_NAMES),
                **{k: v for k, v in sc.items() if k in ("magnitude", "p_class", "kept",
                                                          "object_iou", "p_class_input",
                                                          "kept_input")},
            })
        pooled = {k: np.concatenate([s[k] for s in rows_scores])
                  for k in rows_scores[0] if k not in ("p_class_input", "kept_input")}
        summaries[mode] = summarize_edits(rows_groups, sweeps[-1].strengths, pooled,
                                          PART_NAMES)
    payload = {
        "model_id": model.model_id, "classes": labels,
        "class_names": [class_name(model, k) for k in labels],
        "channels": kind, "num_channels": num_channels, "sites": sites,
        "strengths": sweeps[0].strengths, "modes": list(modes), "units": units,
        "per_class": per_class, "truncation": truncation, "seed": seed,
        "awareness": None if aw is None else {"num_latents": aw.num_latents,
                                              "seed": aw.seed},
        "shared_latent_channels": [{"site": ch.site, "channel": ch.channel,
                                    "worst_rank_share": ch.score} for ch in shared],
        "references": {"classifier": clf is not None, "segmenter": segm is not None,
                       "notes": notes},
        "summary": summaries, "results": per_class_out,
        "unedited": {k: float(np.mean([r[k] for r in per_class_out if k in r]))
                     for k in ("p_class_input", "kept_input")
                     if any(k in r for r in per_class_out)},
    }
    return sweeps, payload
