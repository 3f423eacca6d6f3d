"""The old, private name of :mod:`jaxaware.checks`: use that module.

Kept only while ``jaxaware/model.py`` (being edited elsewhere) still imports from here;
delete this file once it imports from :mod:`jaxaware.checks`.
"""

from jaxaware.checks import (
    SEED_MAX,
    check_fits_in_memory,
    check_int,
    check_seed,
    format_bytes,
    is_int,
    memory_limit,
)

__all__ = [
    "SEED_MAX",
    "check_fits_in_memory",
    "check_int",
    "check_seed",
    "format_bytes",
    "is_int",
    "memory_limit",
]
