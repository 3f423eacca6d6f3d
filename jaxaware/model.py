"""A model as plain data (family config + variables + class names), loaded and saved.

:class:`Model` is what :func:`load` returns and every host-side function takes; the pure
generator function is :func:`jaxaware.generate.forward`. A weights directory records its
family (``config.json``'s ``family``; directories written before families existed hold
BigGAN-deep and have none). Loading checks every parameter against the family's tree
(present, exact shape, float dtype) before anything runs.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxaware.checks import check_seed
from jaxaware.classes import imagenet_class_aliases, resolve_classes
from jaxaware.errors import JaxawareError
from jaxaware.models import Family, config_from_dict, family_of
from jaxaware.weights_io import load_weights, save_weights

__all__ = ["Model", "load", "init_random", "variable_shapes", "check_variables", "check_params",
           "resolve_weights_path", "SHIPPED_MODELS", "DEFAULT_MODEL"]

_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
#: Models that ship with the package, by name (accepted wherever a weights path is).
SHIPPED_MODELS = {name: os.path.join(_DATA, name)
                  for name in ("toyworld-biggan", "toyworld-biggan-deep")}
#: The model ``load()`` and the CLI use when no weights are given: the original BigGAN
#: trained on the toy world (the paper's main family).
DEFAULT_MODEL = SHIPPED_MODELS["toyworld-biggan"]


@dataclasses.dataclass(frozen=True)
class Model:
    """A generator's architecture and weights (``variables = {'params', 'stats'}``)."""

    config: Any
    variables: dict
    model_id: str = ""
    class_names: tuple | None = None  # one entry (name or alias tuple) per class

    @property
    def family(self) -> Family:
        return family_of(self.config)

    @property
    def params(self) -> dict:
        return self.variables["params"]

    def resolve_classes(self, spec) -> list[int]:
        """Class indices from ``'207,"golden retriever"'``, a list, or ``'all'``."""
        return resolve_classes(spec, self.class_names, self.config.num_classes)

    def save(self, path: str, extra: dict | None = None, force: bool = False) -> str:
        extra = dict(extra or {})
        if self.class_names is not None and self.config.num_classes != 1000:
            extra["class_names"] = [n if isinstance(n, str) else n[0] for n in self.class_names]
        return save_weights(path, self.variables, self.config.to_dict(), self.model_id, extra,
                            family=self.family.name, force=force)


def _default_names(config, extra: dict) -> tuple | None:
    if "class_names" in extra:
        return tuple(extra["class_names"])
    if config.num_classes == 1000:
        return imagenet_class_aliases()
    return None


def resolve_weights_path(path: str | None) -> str:
    """A weights directory from a path, a shipped model's name, or None (the default)."""
    if path is None:
        path = DEFAULT_MODEL
    elif not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise JaxawareError(f"the weights path is empty or not a path ({path!r}); give a "
                            f"weights directory or a shipped model's name "
                            f"({', '.join(SHIPPED_MODELS)})")
    elif path in SHIPPED_MODELS:
        path = SHIPPED_MODELS[path]
    else:
        return path
    if not os.path.isdir(path):
        raise JaxawareError("no default model ships with this installation; give a weights "
                            "directory")
    return path


def load(path: str | None = None) -> Model:
    """Loads a weights directory (from ``jaxaware convert`` or training), or a shipped model
    by name (``toyworld-biggan-deep``); with no path, the default shipped model. The
    checksum and every parameter's presence, shape and dtype are verified."""
    path = resolve_weights_path(path)
    variables, meta = load_weights(path)
    try:
        config = config_from_dict(meta["config"], meta.get("family"))
    except JaxawareError as e:
        raise JaxawareError(f"{os.path.join(path, 'config.json')}: {e}") from None
    extra = meta.get("extra") or {}
    check_variables(config, variables, where=str(path))
    return Model(config, variables, meta.get("model_id", ""), _default_names(config, extra))


@functools.lru_cache(maxsize=32)
def variable_shapes(config) -> dict:
    """``{'params', 'stats'}`` of ``jax.ShapeDtypeStruct`` for a config (nothing computed)."""
    family = family_of(config)
    blend = tuple(map(jnp.asarray, family.stats_blend(config, 1.0)))
    z = jnp.zeros((1, config.z_dim))
    y = jnp.zeros((1, config.num_classes))
    return jax.eval_shape(family.generator(config).init, jax.random.PRNGKey(0), z, y, blend)


def check_variables(config, variables, where: str = "variables") -> None:
    """Raises unless ``variables`` has exactly the family's leaves, shapes and float dtypes."""
    if not isinstance(variables, dict):
        raise JaxawareError(f"{where}: variables must be a dict {{'params', 'stats'}}")
    _check_tree(config, variable_shapes(config), variables, where)


def check_params(config, params, where: str = "model") -> None:
    """:func:`check_variables` for the ``params`` collection alone (what awareness reads)."""
    if not isinstance(params, dict):
        raise JaxawareError(f"{where}: params must be a dict of arrays; got "
                            f"{type(params).__name__}")
    _check_tree(config, {"params": variable_shapes(config)["params"]}, {"params": params}, where)


def _check_tree(config, shapes, variables, where: str) -> None:
    want = {jax.tree_util.keystr(p): s for p, s in jax.tree_util.tree_leaves_with_path(shapes)}
    got = {jax.tree_util.keystr(p): v for p, v in jax.tree_util.tree_leaves_with_path(variables)}
    title = family_of(config).title
    for key, spec in want.items():
        if key not in got:
            raise JaxawareError(f"{where} lacks parameter {_path(key)} of shape "
                                f"{list(spec.shape)}; it does not match its {title} config")
        leaf = got[key]
        shape = np.shape(leaf)
        dtype = leaf.dtype if isinstance(getattr(leaf, "dtype", None), np.dtype) \
            else np.asarray(leaf).dtype  # jax arrays: no copy to the host
        if tuple(shape) != tuple(spec.shape):
            raise JaxawareError(f"{where}: parameter {_path(key)} has shape {list(shape)}; its "
                                f"{title} config expects {list(spec.shape)}")
        if dtype.kind != "f":
            raise JaxawareError(f"{where}: parameter {_path(key)} has dtype {dtype}; parameters "
                                "must be floating point")
    extra = sorted(set(got) - set(want))
    if extra:
        raise JaxawareError(f"{where} has unexpected parameter {_path(extra[0])}; it does not "
                            f"match its {title} config")


def _path(keystr: str) -> str:
    """``"['params']['block0']['bn0']"`` -> ``params/block0/bn0``."""
    return "/".join(part.strip("'\"") for part in keystr.strip("[]").split("]["))


def init_random(config, seed: int = 0, class_names=None) -> Model:
    """A model with random weights: for tests, demos and as a training start.

    Kernels and embeddings are ``normal(0, 0.02)``, biases 0, the output BN scale 1,
    statistics mean 0 / variance 1 in every row, attention gamma 0 (as Flax's initialisers
    would give). Filled from NumPy on the host: Flax's own ``init`` compiles a random
    kernel per parameter, which takes tens of seconds on a CPU even for a tiny model.
    """
    rng = np.random.default_rng(check_seed(seed))

    def fill(path, leaf):
        name = jax.tree_util.keystr(path)
        if "'stats'" in name:
            return np.full(leaf.shape, 1.0 if "'var'" in name else 0.0, np.float32)
        if name.endswith("['bias']") or name.endswith("['gamma']"):
            return np.zeros(leaf.shape, np.float32)
        if name.endswith("['bn']['scale']"):
            return np.ones(leaf.shape, np.float32)
        return (0.02 * rng.standard_normal(leaf.shape)).astype(np.float32)

    variables = jax.tree_util.tree_map_with_path(fill, variable_shapes(config))
    names = class_names if class_names is not None else _default_names(config, {})
    return Model(config, variables, f"random-{seed}", names)

