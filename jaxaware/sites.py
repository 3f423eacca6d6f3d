"""Sites: the named places where probes are read and edits applied, for any family.

CCBN sites (``block{i}.bn{k}``, ``L0, L1, ...``) carry probes and make up the flat channel
axis of awareness files; block-output sites (``block{i}.out``) can be captured and edited.
The vocabulary is in :mod:`jaxaware.models.family`.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import numpy as np

from jaxaware.errors import JaxawareError
from jaxaware.models import family_of
from jaxaware.models.family import Site

__all__ = [
    "Site",
    "all_sites",
    "block_sites",
    "closest",
    "format_site_table",
    "resolve_site",
    "site_offsets",
    "site_table",
    "total_channels",
]


def site_table(config) -> tuple[Site, ...]:
    """All CCBN sites of a generator, in forward order (the flat channel axis)."""
    return family_of(config).ccbn_sites(config)


def block_sites(config) -> tuple[Site, ...]:
    """The block-output sites ``block{i}.out``."""
    return family_of(config).block_sites(config)


def all_sites(config) -> tuple[Site, ...]:
    """CCBN sites then block outputs."""
    return site_table(config) + block_sites(config)


def total_channels(config) -> int:
    last = site_table(config)[-1]
    return last.offset + last.channels


def site_offsets(config) -> np.ndarray:
    """``[num_sites, 2]`` int array of (start, stop) columns of each CCBN site."""
    return np.array([[s.offset, s.offset + s.channels] for s in site_table(config)], np.int64)


def closest(name, options: Sequence[str]) -> str:
    """Up to three of ``options`` closest to ``name``, for error messages."""
    return ", ".join(difflib.get_close_matches(str(name), list(options), n=3, cutoff=0.0))


def resolve_site(config, name, kinds: tuple[str, ...] = ("ccbn", "block")) -> Site:
    """Finds a site by name (``block3.bn1``, ``block3.out``) or label (``L13``)."""
    sites = [s for s in all_sites(config) if s.kind in kinds]
    if isinstance(name, str):
        for s in sites:
            if name in (s.name, s.label):
                return s
    ccbn = site_table(config)
    what = "CCBN sites" if kinds == ("ccbn",) else "sites"
    last = ccbn[-1].block
    blocks = "" if "block" not in kinds else f" and block outputs block0.out..block{last}.out"
    raise JaxawareError(
        f"unknown site {name!r}; {what} are {ccbn[0].name}..{ccbn[-1].name} "
        f"(L0..L{len(ccbn) - 1}){blocks}; closest: {closest(name, [s.name for s in sites])}"
    )


def format_site_table(config) -> str:
    """A plain-text table of the CCBN sites, for ``jaxaware sites``."""
    rows = [("site", "name", "channels", "resolution", "columns", "reference module")]
    for s in site_table(config):
        rows.append(
            (
                s.label,
                s.name,
                str(s.channels),
                f"{s.resolution}x{s.resolution}",
                f"{s.offset}:{s.offset + s.channels}",
                s.reference_name,
            )
        )
    widths = [max(len(r[j]) for r in rows) for j in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    family = family_of(config)
    lines.insert(0, f"{family.title}, {config.resolution}x{config.resolution}: CCBN sites (block "
                    f"outputs block0.out..block{config.n_blocks - 1}.out can be captured and "
                    "edited too)")
    lines.append(f"{len(rows) - 1} sites, {total_channels(config)} channels")
    return "\n".join(lines)
