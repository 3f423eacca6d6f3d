"""Checks of plain values shared by the library and the CLI: seeds, counts, memory sizes.

Each raises :class:`~jaxaware.errors.JaxawareError` with a one-line message that says what
was wrong and what is accepted. Output paths are checked in :mod:`jaxaware.atomic`
(:func:`~jaxaware.atomic.check_output_path`), next to the writers that use them.
"""

from __future__ import annotations

import math
import numbers
import os

import numpy as np

from jaxaware.errors import JaxawareError

__all__ = ["SEED_MAX", "check_seed", "check_int", "is_int", "memory_limit", "format_bytes",
           "check_fits_in_memory"]

SEED_MAX = 2**32 - 1
"""The largest seed: NumPy's ``RandomState`` (which every latent sampler uses, as the
reference packages do) takes seeds 0..2**32 - 1."""

#: The memory ceiling when the system does not report its physical memory.
FALLBACK_MEMORY_BYTES = 1 << 40


def is_int(value) -> bool:
    """Whether ``value`` is an integer (Python or NumPy), not a bool."""
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(
        value, (bool, np.bool_))


def check_seed(seed, allow_none: bool = False, what: str = "seed") -> int | None:
    """``seed`` as an int, or raises unless it is an integer in 0..2**32 - 1 (None passes
    through where ``allow_none``: fresh entropy)."""
    if seed is None and allow_none:
        return None
    if not is_int(seed) or not 0 <= int(seed) <= SEED_MAX:
        raise JaxawareError(f"{what} must be an integer in 0..{SEED_MAX}; got {seed!r}")
    return int(seed)


def check_int(value, what: str, minimum: int = 1) -> int:
    """``value`` as an int, or raises unless it is an integer >= ``minimum`` (integral floats
    such as ``4.0`` are accepted, bools and strings are not)."""
    ok = is_int(value) or (isinstance(value, (float, np.floating)) and math.isfinite(value)
                           and float(value).is_integer())
    if not ok or int(value) < minimum:
        kind = {0: "a non-negative integer", 1: "a positive integer"}.get(
            minimum, f"an integer >= {minimum}")
        raise JaxawareError(f"{what} must be {kind}; got {value!r}")
    return int(value)


def memory_limit() -> int:
    """Bytes of physical memory of this machine (``SC_PHYS_PAGES * SC_PAGE_SIZE``), or
    :data:`FALLBACK_MEMORY_BYTES` (1 TiB) where the system does not say.

    A request larger than this can never be met, so it is refused before anything is
    allocated; a request below it may still fail if other processes hold the memory (the
    operating system then reports it)."""
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return FALLBACK_MEMORY_BYTES
    return pages * size if pages > 0 and size > 0 else FALLBACK_MEMORY_BYTES


def format_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``; beyond 1024 PiB, bytes in scientific notation."""
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024:
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{float(n):.2e} bytes"


def check_fits_in_memory(nbytes: int, what: str) -> None:
    """Raises if ``what`` (e.g. ``'sampling 4 x 10 images of 256x256'``) would need more
    than this machine's physical memory (:func:`memory_limit`)."""
    limit = memory_limit()
    if nbytes > limit:
        raise JaxawareError(f"{what} would need {format_bytes(nbytes)} of memory, more than "
                            f"this machine's {format_bytes(limit)}; ask for less")


# -- model config fields -------------------------------------------------------------------


def config_int(value, name: str, minimum: int = 1) -> int:
    """A config field that must be an integer (not a bool, string or float) >= ``minimum``."""
    if not is_int(value) or int(value) < minimum:
        raise JaxawareError(f"config {name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def config_bool(value, name: str) -> bool:
    """A config field that must be true or false."""
    if not isinstance(value, (bool, np.bool_)):
        raise JaxawareError(f"config {name} must be true or false; got {value!r}")
    return bool(value)


def config_fraction(value, name: str) -> float:
    """A config field that must be a finite number in the open interval (0, 1) (e.g. eps)."""
    ok = isinstance(value, (numbers.Real, np.floating, np.integer)) and not isinstance(
        value, (bool, np.bool_))
    if not ok or not 0 < float(value) < 1:  # NaN fails the comparison
        raise JaxawareError(f"config {name} must be a number in (0, 1); got {value!r}")
    return float(value)
