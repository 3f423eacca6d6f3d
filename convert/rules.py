"""What every converter shares: a reader that hands out checkpoint tensors by key, and the
layout transforms from PyTorch to Flax.

A converter is a rule table driven by the *target* tree: for every Flax parameter it names
the checkpoint tensors it is made from and one transform. :class:`Reader` checks each
tensor's shape and finiteness, refuses to hand one out twice, and :meth:`Reader.finish`
refuses leftovers, so every checkpoint tensor is used exactly once.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from jaxaware.errors import JaxawareError
from jaxaware.weights_io import unflatten_params


class Reader:
    """Hands out checkpoint tensors by key, checking shapes and recording what was used.

    ``family``: the checkpoint kind for error messages (``BigGAN-deep``, ``BigGAN``).
    """

    def __init__(self, state: dict[str, np.ndarray], family: str):
        self.state = state
        self.family = family
        self.used: set[str] = set()

    def take(self, key: str, shape: tuple[int, ...]) -> np.ndarray:
        if key not in self.state:
            raise JaxawareError(
                f"checkpoint is missing {key!r} (expected shape {list(shape)}); "
                f"is it a {self.family} checkpoint of this config?"
            )
        if key in self.used:
            raise JaxawareError(f"conversion rule uses {key!r} twice")
        value = self.state[key]
        if tuple(np.shape(value)) != tuple(shape):
            raise JaxawareError(
                f"checkpoint tensor {key!r} has shape {list(np.shape(value))}; "
                f"this config expects {list(shape)}"
            )
        self.used.add(key)
        value = np.asarray(value, np.float32)
        if not np.isfinite(value).all():
            raise JaxawareError(f"checkpoint tensor {key!r} holds NaN or infinity; the "
                                "checkpoint is damaged")
        return value

    def has(self, key: str) -> bool:
        return key in self.state

    def leftovers(self) -> list[str]:
        return sorted(set(self.state) - self.used)

    def finish(self) -> None:
        extra = self.leftovers()
        if extra:
            more = f" and {len(extra) - 1} more" if len(extra) > 1 else ""
            raise JaxawareError(
                f"checkpoint has unexpected key {extra[0]!r}{more}; it does not fit this config"
            )


Rule = Callable[[Reader], np.ndarray]


def apply_rules(rules: dict[str, Rule], state: dict[str, np.ndarray], family: str) -> dict:
    """Runs a rule table over a state dict; returns the nested ``{'params', 'stats'}``."""
    reader = Reader(state, family)
    flat = {path: rule(reader) for path, rule in rules.items()}
    reader.finish()
    return unflatten_params(flat)


def linear(w):  # [out, in] -> [in, out]
    return np.ascontiguousarray(w.T)


def conv(w):  # [O, I, kh, kw] -> [kh, kw, I, O]
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0))


def conv1x1(w):  # [O, I, 1, 1] -> [I, O]
    return np.ascontiguousarray(w[:, :, 0, 0].T)
