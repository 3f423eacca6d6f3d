"""Counter-based random numbers keyed by ``(seed, stream, index)``.

Every random quantity of image ``index`` is a hash of ``(seed, stream, index, k)``, so it
does not depend on how images are batched, on which other images are rendered, or (for the
class-independent stream) on the image's class. The hash is SplitMix64's finaliser applied
to a chained key, which is vectorised in numpy and fast enough for >10^7 draws per second.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)

#: Stream ids: independent families of draws for the same (seed, index).
STREAM_FACTORS = 1   # class-independent factors: background, lighting, pose
STREAM_SHAPE = 2     # class-specific appearance jitter (proportions, palette)
STREAM_CLASSES = 3   # class assignment of balanced data sets


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser (a bijection on uint64 with good avalanche)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def hash_u64(seed: int, stream: int, index: np.ndarray, k: int) -> np.ndarray:
    """uint64 hashes of shape ``[len(index), k]`` for ``(seed, stream, index, 0..k-1)``."""
    index = np.asarray(index, dtype=np.uint64)
    base = _mix(np.array([seed], dtype=np.uint64) * _GOLDEN + np.uint64(stream))
    h = _mix(base ^ (index * _GOLDEN))
    cols = np.arange(1, k + 1, dtype=np.uint64) * _GOLDEN
    return _mix(h[:, None] + cols[None, :])


def uniform(seed: int, stream: int, index: np.ndarray, k: int) -> np.ndarray:
    """float32 ``[len(index), k]`` uniform in [0, 1), a pure function of its arguments."""
    h = hash_u64(seed, stream, index, k)
    return ((h >> np.uint64(40)).astype(np.float32) * np.float32(2.0 ** -24))
