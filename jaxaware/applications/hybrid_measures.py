"""Category hybrids scored by the toy world's classifier (He et al., Sec. 4.2).

For ordered class pairs ``(a, b)`` (input, reference) and the same latents for every pair,
:func:`hybrid_report` makes style-mixing and channel-mixing hybrids at several sites and
``k`` and scores each with :func:`~jaxaware.applications.hybridization.hybrid_scores`:
probability mass on the two classes, reference share, evenness of the split, and the share
of plausible hybrids (``max(p_a, p_b) >= 0.5``). ``k`` is given as a share of the site's
channels (``k = round(share * C)``, at least 1), so one list serves sites of any width.

The two ends are known: ``k = 0`` is style mixing from the block after the site's block;
``k = C`` at a block output is the reference synthesis itself (mass on ``b`` alone). A hybrid
"fuses" the two classes when the mass stays high and the split is even; the paper's claim
(Fig. 8) is that channel mixing fuses better than style mixing. We report what comes out.
"""

from __future__ import annotations

import numpy as np

from jaxaware.applications._common import (
    awareness_for,
    class_name,
    latents,
    one_class,
    world_references,
)
from jaxaware.applications.hybridization import (
    BATCH,
    channel_mixing,
    classify,
    hybrid_scores,
    style_mixing,
    summarize_hybrids,
)
from jaxaware.errors import JaxawareError
from jaxaware.sites import resolve_site

__all__ = ["DEFAULT_SHARES", "default_sites", "hybrid_report", "all_pairs"]

#: Shares of a site's channels transplanted by channel mixing.
DEFAULT_SHARES = (0.125, 0.25, 0.5, 1.0)


def default_sites(config) -> list[str]:
    """Every block output but the last, and the first CCBN of every block but the first (it
    reads the previous block's output): the places where Fig. 8's transplant can happen
    with a block left to continue."""
    from jaxaware.sites import block_sites, site_table

    outs = [s.name for s in block_sites(config)][:-1]
    firsts = []
    for block in range(1, config.n_blocks):
        firsts.append(next(s.name for s in site_table(config) if s.block == block))
    return outs + firsts


def all_pairs(model, classes=None) -> list[tuple[int, int]]:
    """Every ordered pair of distinct classes (of ``classes``, default all)."""
    from jaxaware.applications._common import class_list

    labels = list(range(model.config.num_classes)) if classes is None \
        else class_list(model, classes)
    return [(a, b) for a in labels for b in labels if a != b]


def _k_for(share: float, channels: int) -> int:
    share = float(share)
    if not 0 <= share <= 1:
        raise JaxawareError(f"k shares must be in [0, 1]; got {share}")
    return max(1, int(round(share * channels))) if share > 0 else 0


def hybrid_report(model, pairs, *, sites=None, shares=DEFAULT_SHARES, per_pair: int = 4,
                  truncation: float = 1.0, seed: int = 0, awareness=None, classifier=None,
                  batch: int = BATCH, progress: bool = False) -> dict:
    """Scores of style and channel mixing for every site and share (JSON-ready).

    Args:
      pairs: ``(input, reference)`` class pairs (indices or names).
      sites: sites to transplant at (default :func:`default_sites`).
      shares: shares of the site's channels to transplant.
      per_pair: latents per pair (the same latents, from ``seed``, for every pair).
      classifier: anything with ``logits``; default: the toy world's (an error if the model
        is not a world model).

    Returns:
      ``{'settings', 'input', 'reference', 'rows'}``: the input and reference syntheses'
      own scores, and one row per (site, method, k) with the means of
      :func:`~jaxaware.applications.hybridization.hybrid_scores`.
    """
    cfg = model.config
    pairs = [(one_class(model, a, "input class"), one_class(model, b, "reference class"))
             for a, b in pairs]
    if not pairs:
        raise JaxawareError("give at least one (input, reference) class pair")
    if classifier is None:
        classifier, _, notes = world_references(model)
        if classifier is None:
            why = notes.get("scores") or notes.get("classifier")
            raise JaxawareError(f"no classifier to score hybrids with ({why})")
    sites = default_sites(cfg) if sites is None else [resolve_site(cfg, s).name for s in sites]
    z1 = latents(model, per_pair, truncation, seed)
    z = np.tile(z1, (len(pairs), 1))
    a = np.repeat([p[0] for p in pairs], per_pair)
    b = np.repeat([p[1] for p in pairs], per_pair)
    aw = awareness_for(model, sorted(set(b.tolist())), awareness, truncation)
    kw = dict(truncation=truncation, batch=batch)

    def score(images):
        return summarize_hybrids(hybrid_scores(classify(classifier, images), a, b))

    out = {"input": score(style_mixing(model, z, a, b, cfg.n_blocks, **kw)),
           "reference": score(style_mixing(model, z, a, b, 0, **kw))}
    rows = []
    todo = sites
    if progress:
        from tqdm.auto import tqdm

        todo = tqdm(sites, desc="hybridize", unit="site")
    for name in todo:
        site = resolve_site(cfg, name)
        j = site.block + 1
        rows.append({"site": name, "method": "style", "k": 0, "share": 0.0, "style_from": j,
                     **score(style_mixing(model, z, a, b, j, **kw))})
        for share in shares:
            k = _k_for(share, site.channels)
            images, _ = channel_mixing(model, z, a, b, name, k, awareness=aw, **kw)
            rows.append({"site": name, "method": "channel", "k": k, "share": float(share),
                         "style_from": j, **score(images)})
    out["rows"] = rows
    out["settings"] = {
        "model_id": model.model_id, "pairs": pairs,
        "pair_names": [[class_name(model, p), class_name(model, q)] for p, q in pairs],
        "sites": list(sites), "shares": list(shares), "per_pair": per_pair,
        "truncation": truncation, "seed": seed,
        "awareness": {"num_latents": aw.num_latents, "seed": aw.seed},
    }
    return out
