"""What a result was computed on: the CPU model and the numerical software.

Training is bit-for-bit reproducible from a config's seeds only on the same CPU model with
the same software: XLA compiles for the host's instruction set (AVX-512 on one machine,
AVX2 on another), float sums come out in different last bits, and a GAN's training
amplifies those bits until two runs of one seed are two different draws of the recipe.
So every training run records where each of its sittings ran (:func:`environment`), and
the benchmarks name the CPU with :func:`cpu_model`.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

__all__ = ["cpu_model", "environment", "environment_differences"]

_PACKAGES = ("jax", "jaxlib", "flax", "optax", "numpy")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux; else what ``platform`` knows)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict:
    """The CPU, core count, JAX backend and device, Python and numerical packages' versions."""
    import jax

    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    device = jax.devices()[0]
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "backend": jax.default_backend(),
        "device": device.device_kind,
        "python": platform.python_version() or sys.version.split()[0],
        **versions,
    }


def environment_differences(a: dict, b: dict) -> list[str]:
    """``"key: a -> b"`` for every field of :func:`environment` that differs (a record's
    ``from_step``, which says when a sitting began, aside)."""
    keys = [k for k in dict.fromkeys([*a, *b]) if k != "from_step"]
    return [f"{k}: {a.get(k)} -> {b.get(k)}" for k in keys if a.get(k) != b.get(k)]
