"""Total channel awareness of each class (He et al., Sec. 4.4), the paper's own score of
class-wise synthesis quality (high) and diversity (low)."""

from __future__ import annotations

import os

import numpy as np

from jaxaware.errors import JaxawareError
from jaxaware.metrics import _checks


def total_awareness(awareness) -> np.ndarray:
    """``a_e = sum_c |E_z[t_c^e]|`` over all channels ``c`` of all layers, per class ``e``.

    He et al., *Interpreting Class Conditional GANs with Channel Awareness*, Sec. 4.4: "the
    absolute values of category-oriented channel awareness summed over all layers". Our
    category awareness is ``-E_z[t]`` (:mod:`jaxaware.awareness`), so its absolute value is
    the same. The sum runs in float64.

    Args:
        awareness: a ``[K, C]`` array of category awareness (classes x channels), an object
            with such a ``.category`` (e.g. :class:`jaxaware.awareness.Awareness`; duck-typed,
            so this module imports no model code), or the path of an awareness ``.npz``
            written by ``jaxaware awareness`` (its ``category`` array).

    Returns:
        float64 ``[K]``, one value per row (class) in the input's order (``.classes`` of an
        awareness object or file).
    """
    if isinstance(awareness, (str, os.PathLike)):
        category = _from_file(os.fspath(awareness))
    elif hasattr(awareness, "category"):
        category = awareness.category
    else:
        category = awareness
    a = _checks.as_real_array(category, "awareness category")
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise JaxawareError(
            f"awareness category must be a non-empty 2-D array [classes, channels]; got "
            f"shape {tuple(a.shape)}"
        )
    if not np.all(np.isfinite(a)):
        raise JaxawareError("awareness category has NaN or inf values; it must be finite")
    return np.abs(a.astype(np.float64)).sum(axis=1)


def _from_file(path: str) -> np.ndarray:
    from jaxaware.awareness import read_npz_arrays

    return read_npz_arrays(path, ("category",))["category"]
