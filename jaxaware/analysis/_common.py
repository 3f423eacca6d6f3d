"""Plumbing the analyses share: classes, sites, latents, awareness rows, JSON files."""

from __future__ import annotations

import math

import numpy as np

from jaxaware.checks import check_int, check_seed
from jaxaware.awareness import select_site_names
from jaxaware.errors import JaxawareError
from jaxaware.outputs import class_name, softmax, to_jsonable, write_json  # noqa: F401
from jaxaware.sites import resolve_site, site_table

#: Awareness latents when an analysis computes awareness itself (the paper's N).
AWARENESS_LATENTS = 1000


def class_list(model, classes) -> list[int]:
    """Class indices from indices, names, ``'all'`` or None (every class)."""
    if classes is None:
        return list(range(model.config.num_classes))
    if isinstance(classes, np.ndarray):
        classes = classes.tolist()
    labels = model.resolve_classes(classes)
    if not labels:
        raise JaxawareError("classes is empty; give at least one class")
    return list(dict.fromkeys(int(k) for k in labels))  # in order, without repeats


def one_class(model, cls, what: str = "class") -> int:
    """One class index from an index or a name."""
    labels = model.resolve_classes(cls.tolist() if isinstance(cls, np.ndarray) else cls)
    if len(labels) != 1:
        raise JaxawareError(f"{what} must be one class; got {len(labels)}")
    return int(labels[0])




def ccbn_sites(config, sites) -> list:
    """CCBN :class:`~jaxaware.sites.Site` objects from a name, a label, a list, or None
    (or ``'all'``: every CCBN site), in forward order and without repeats."""
    if sites is None or (isinstance(sites, str) and sites.strip() == "all"):
        return list(site_table(config))
    if isinstance(sites, str):
        sites = [s for s in sites.split(",") if s.strip()] or [sites]
    chosen = [resolve_site(config, str(s).strip(), kinds=("ccbn",)) for s in sites]
    if not chosen:
        raise JaxawareError("sites is empty; give at least one CCBN site")
    seen, out = set(), []
    for s in sorted(chosen, key=lambda s: s.index):
        if s.name not in seen:
            seen.add(s.name)
            out.append(s)
    return out


def latents(model, num: int, truncation: float, seed: int) -> np.ndarray:
    """``num`` latents drawn the family's way (float32 ``[num, z_dim]``)."""
    num = check_int(num, "num_latents")
    return np.asarray(model.family.sample_latents(num, model.config, truncation,
                                                  check_seed(seed)), np.float32)


def generate_batched(model, z, labels, truncation: float, interventions=None,
                     batch: int = 16) -> np.ndarray:
    """``generate`` in batches of exactly ``batch`` (the last padded): one compilation. No
    edit is an identity :class:`~jaxaware.interventions.FlatEdit`, so edited and unedited
    syntheses share that compilation."""
    from jaxaware.generate import generate
    from jaxaware.interventions import flat_identity

    if interventions is None:
        interventions = flat_identity(model.config)
    z, labels = np.asarray(z, np.float32), np.asarray(labels)
    out = []
    for lo in range(0, len(z), batch):
        zb, yb = z[lo:lo + batch], labels[lo:lo + batch]
        n = len(zb)
        if n < batch:
            zb = np.concatenate([zb, np.repeat(zb[-1:], batch - n, axis=0)])
            yb = np.concatenate([yb, np.repeat(yb[-1:], batch - n, axis=0)])
        out.append(np.asarray(generate(model, zb, yb, truncation,
                                       interventions=interventions))[:n])
    return np.concatenate(out)


def classify_batched(clf, images, batch: int = 64) -> np.ndarray:
    """Logits ``[N, K]`` of NumPy images, in batches of exactly ``batch`` rows."""
    import jax.numpy as jnp

    out = []
    for lo in range(0, len(images), batch):
        x = images[lo:lo + batch]
        n = len(x)
        if n < batch:
            x = np.concatenate([x, np.repeat(x[-1:], batch - n, axis=0)])
        out.append(np.asarray(clf.logits(jnp.asarray(x)), np.float32)[:n])
    return np.concatenate(out)




def image_seed(seed) -> int:
    """The seed of the analysed syntheses: ``seed + 1`` (mod 2**32), independent of the
    awareness latents drawn from ``seed``."""
    from jaxaware.checks import SEED_MAX

    return (check_seed(seed) + 1) % (SEED_MAX + 1)


def awareness_rows(model, classes, awareness=None, num_latents: int = AWARENESS_LATENTS,
                   truncation: float = 1.0, seed: int = 0):
    """``(category, latent)`` awareness ``[len(classes), C_total]`` of ``classes``: rows of a
    given :class:`~jaxaware.awareness.Awareness`, or computed here."""
    if awareness is None:
        from jaxaware.awareness import compute_awareness

        awareness = compute_awareness(model, classes=list(classes), num_latents=num_latents,
                                      truncation=truncation, seed=seed)
    check_awareness(awareness, model)
    have = {int(k): i for i, k in enumerate(np.asarray(awareness.classes))}
    missing = [k for k in classes if k not in have]
    if missing:
        raise JaxawareError(f"the awareness has no row for class {missing[0]}; it has classes "
                            f"{_ranges(sorted(have))}; compute it for the classes you analyse")
    rows = [have[k] for k in classes]
    return np.asarray(awareness.category)[rows], np.asarray(awareness.latent)[rows]


def aw_sites(names, sites, model=None) -> list[str]:
    """Site names, in forward order, from names, labels or None (all of ``names``, the
    site names of an awareness file)."""
    names = list(names)
    if sites is None:
        return names
    if model is not None:
        return [s.name for s in ccbn_sites(model.config, sites)]
    return select_site_names(names, sites)


def aw_rows(awareness, classes, model=None) -> np.ndarray:
    """Rows of an awareness file for classes (None: all; names need ``model``)."""
    have = [int(c) for c in np.asarray(awareness.classes)]
    if classes is None:
        return np.arange(len(have))
    wanted = class_list(model, classes) if model is not None else \
        [int(c) for c in np.atleast_1d(classes)]
    missing = [c for c in wanted if c not in have]
    if missing:
        raise JaxawareError(f"the awareness has no row for class {missing[0]}; compute it for "
                            "the classes you analyse")
    return np.array([have.index(c) for c in wanted])


def check_awareness(aw, model) -> None:
    """Raises unless ``aw``'s columns are this model's CCBN sites."""
    want = [s.name for s in site_table(model.config)]
    if list(aw.site_names) != want:
        raise JaxawareError(f"the awareness has sites {aw.site_names[0]}..{aw.site_names[-1]} "
                            f"({len(aw.site_names)}); this model has {want[0]}..{want[-1]} "
                            f"({len(want)}): compute it with this model")


def _ranges(values) -> str:
    if not values:
        return "none"
    if values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}..{values[-1]}"
    return ", ".join(map(str, values[:8])) + (" ..." if len(values) > 8 else "")


def check_latent_pairs(m) -> int:
    """``M`` latent pairs: an integer >= 2 (a mean and its spread need two)."""
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 2:
        raise JaxawareError(f"num_latents (M latent pairs) must be an integer >= 2; got {m!r}")
    return int(m)


def check_fraction(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not math.isfinite(value) or not 0 < float(value) <= 1:
        raise JaxawareError(f"{what} must be a number in (0, 1]; got {value!r}")
    return float(value)


def pearson(a, b) -> float:
    """Pearson correlation of two vectors; NaN where either is constant."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    a, b = a - a.mean(), b - b.mean()
    den = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b / den) if den > 0 else float("nan")


def ranks(x) -> np.ndarray:
    """Average ranks (ties share their mean rank), as Spearman's correlation uses."""
    from scipy.stats import rankdata

    return rankdata(np.asarray(x, np.float64))


def spearman(a, b) -> float:
    """Spearman rank correlation (Pearson of average ranks); NaN where either is constant."""
    return pearson(ranks(a), ranks(b))



