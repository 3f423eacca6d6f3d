"""CCBN sites: the named places where probes are read and interventions applied.

A site is one class-conditional batch norm, named ``block{i}.bn{k}`` and numbered
``L0, L1, ...`` in forward order (see :mod:`jaxaware.config` for the vocabulary).
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Sequence

import numpy as np

from jaxaware.config import BigGANConfig
from jaxaware.errors import JaxawareError


@dataclasses.dataclass(frozen=True)
class Site:
    name: str  # block{i}.bn{k}
    index: int  # the L number
    block: int
    bn: int
    channels: int
    resolution: int  # spatial size of the feature map the CCBN normalises
    offset: int  # first column of this site in the concatenated channel axis
    reference_name: str  # module path in pytorch_pretrained_biggan

    @property
    def label(self) -> str:
        return f"L{self.index}"


def block_widths(config: BigGANConfig, i: int) -> tuple[int, int, int]:
    """(input, middle, output) channels of ``block{i}``; the middle width is ``input // 4``."""
    _, cin, cout = config.layers[i]
    c_in = config.width(cin)
    return c_in, c_in // 4, config.width(cout)


def reference_block_index(config: BigGANConfig, i: int) -> int:
    """Index ``m`` of ``block{i}`` in the reference ``generator.layers`` list."""
    return i if i < config.attention_layer_position else i + 1


def site_table(config: BigGANConfig) -> tuple[Site, ...]:
    """All CCBN sites of a generator, in forward order."""
    sites = []
    res, offset = 4, 0
    for i, (up, _, _) in enumerate(config.layers):
        c_in, mid, _ = block_widths(config, i)
        out_res = res * 2 if up else res
        for k, (channels, r) in enumerate(
            [(c_in, res), (mid, res), (mid, out_res), (mid, out_res)]
        ):
            m = reference_block_index(config, i)
            sites.append(
                Site(
                    name=f"block{i}.bn{k}",
                    index=len(sites),
                    block=i,
                    bn=k,
                    channels=channels,
                    resolution=r,
                    offset=offset,
                    reference_name=f"generator.layers.{m}.bn_{k}",
                )
            )
            offset += channels
        res = out_res
    return tuple(sites)


def total_channels(config: BigGANConfig) -> int:
    last = site_table(config)[-1]
    return last.offset + last.channels


def site_offsets(config: BigGANConfig) -> np.ndarray:
    """``[num_sites, 2]`` int array of (start, stop) columns of each site's channels."""
    return np.array([[s.offset, s.offset + s.channels] for s in site_table(config)], np.int64)


def _closest(name: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, options, n=3, cutoff=0.0)
    return ", ".join(close)


def resolve_site(config: BigGANConfig, name: str) -> Site:
    """Finds a site by name (``block3.bn1``) or label (``L13``)."""
    sites = site_table(config)
    for s in sites:
        if name in (s.name, s.label):
            return s
    raise JaxawareError(
        f"unknown site {name!r}; sites are {sites[0].name}..{sites[-1].name} "
        f"(L0..L{len(sites) - 1}); closest: {_closest(name, [s.name for s in sites])}"
    )


def format_site_table(config: BigGANConfig) -> str:
    """A plain-text table of the sites, for ``jaxaware sites``."""
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
    lines.append(f"{len(rows) - 1} sites, {total_channels(config)} channels")
    return "\n".join(lines)
