"""Input checks shared by the metrics: every failure is one ``JaxawareError`` line that says
what was wrong and what is accepted."""

from __future__ import annotations

import numbers

import numpy as np

from jaxaware.errors import JaxawareError


def as_real_array(x, name: str) -> np.ndarray:
    """``x`` as a numpy array of real numbers (bool and integers become float64)."""
    try:
        a = np.asarray(x)
    except (TypeError, ValueError):
        raise JaxawareError(f"{name} must be an array of real numbers; got {type(x).__name__}")
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise JaxawareError(f"{name} must be an array of real numbers; got dtype {a.dtype}")
    if np.iscomplexobj(a):
        raise JaxawareError(f"{name} must be an array of real numbers; got dtype {a.dtype}")
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    return a


def check_finite(a: np.ndarray, name: str, what: str) -> None:
    if not np.all(np.isfinite(a)):
        raise JaxawareError(f"{name} contain NaN or inf values; {what} must be finite")


def features(x, name: str) -> np.ndarray:
    """A finite 2-D ``[samples, features]`` float array with at least one column."""
    a = as_real_array(x, name)
    if a.ndim != 2:
        raise JaxawareError(
            f"{name} must be a 2-D array [samples, features]; got shape {tuple(a.shape)}"
        )
    if a.shape[1] == 0:
        raise JaxawareError(f"{name} have no feature columns; got shape {tuple(a.shape)}")
    check_finite(a, name, "features")
    return a


def same_width(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise JaxawareError(
            f"{name_a} and {name_b} have different widths ({a.shape[1]} and {b.shape[1]}); "
            "both must have the same feature dimension"
        )


def positive_int(value, name: str, minimum: int = 1, allow_none: bool = False):
    """An integer ``>= minimum`` (bool is not an integer here)."""
    if value is None and allow_none:
        return None
    ok = isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
    if not ok or value < minimum:
        also = " or None" if allow_none else ""
        raise JaxawareError(f"{name} must be an integer >= {minimum}{also}; got {value!r}")
    return int(value)
