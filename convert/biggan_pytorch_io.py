"""Read a BigGAN-PyTorch checkpoint directory safely (no arbitrary code from pickles).

``utils.save_weights`` of BigGAN-PyTorch writes, per experiment directory, ``G.pth``,
``G_ema.pth`` (the EMA generator, the one to interpret), ``D.pth``, the optimisers and
``state_dict.pth`` (``{itr, epoch, save_num, save_best_num, best_IS, best_FID, config}``),
each optionally with a suffix (``G_ema_best0.pth``, ``state_dict_best0.pth``).
``TFHub/converter.py`` writes a lone ``biggan-{res}.pth`` (G state dict, no ``sv`` keys).

:func:`read_checkpoint_dir` returns the generator state dict as float32 numpy arrays and
the training config as plain Python values.

Safety. Every file is read with ``torch.load(..., map_location='cpu', weights_only=True)``;
there is no fallback to ``weights_only=False``. The G file needs no extra globals.
``state_dict.pth`` holds ``nn.ReLU`` objects (``config['G_activation']``,
``config['D_activation']``) and usually numpy scalars (``best_IS``), so exactly these are
allow-listed, scoped with ``torch.serialization.safe_globals``: ``torch.nn.ReLU``,
numpy's scalar constructor (under its numpy 1 and numpy 2 names), ``numpy.dtype`` and
the float64 / float32 dtype classes.

One case ``torch.load`` cannot read even so: a ``state_dict.pth`` in torch's pre-1.6
(non-zip) format, which is what the 2019 release files are. That format pickles each
``nn.Module`` class with its source code as a ``'module'`` persistent record, which the
weights-only unpickler rejects whatever is allow-listed. Only for that case, this module
reads the pickle with its own restricted unpickler: ``find_class`` resolves exactly the
same allow-list (the ReLU becoming an inert record that keeps only ``inplace``), the only
persistent records accepted are such class records, and anything else -- another
global, a tensor storage -- is refused before it is touched. No code from the file runs.

Errors are one-line :class:`~jaxaware.errors.JaxawareError`\\ s that say what was wrong and
what is accepted.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import os
import pickle
import re
import tarfile
import zipfile
from collections import OrderedDict

import numpy as np
import torch

from jaxaware.errors import JaxawareError

__all__ = ["read_checkpoint_dir", "load_weights_file", "load_train_state", "WEIGHT_NAMES"]

WEIGHT_NAMES = ("G_ema.pth", "G.pth")
STATE_NAME = "state_dict.pth"

try:  # numpy >= 2
    from numpy._core.multiarray import scalar as _np_scalar
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import scalar as _np_scalar


def _state_globals() -> list:
    """The allow-list for ``state_dict.pth``: exactly what its pickle needs."""
    return [
        torch.nn.ReLU,
        (_np_scalar, "numpy.core.multiarray.scalar"),
        (_np_scalar, "numpy._core.multiarray.scalar"),
        np.dtype,
        # The dtype instance a float scalar carries is of these classes (numpy.dtypes.
        # Float64DType / Float32DType); the unpickler checks its type when it sets state.
        type(np.dtype(np.float64)),
        type(np.dtype(np.float32)),
    ]


class _ReLURecord:
    """Inert stand-in for a pickled ``torch.nn.ReLU`` (legacy-format reader only)."""

    def __init__(self, *args, **kwargs):
        self.inplace = False

    def __setstate__(self, state):
        self.inplace = bool(state.get("inplace", False)) if isinstance(state, dict) else False


class _Refused(Exception):
    pass


def _no_backend(*args):
    """Stand-in for ``torch.nn.backends.thnn._get_thnn_function_backend``: torch <= 1.0
    modules pickle their ``_backend`` attribute as a call to it (it returns None now)."""
    return None


_LEGACY_ALLOWED = {
    ("torch.nn.modules.activation", "ReLU"): _ReLURecord,
    ("torch.nn.backends.thnn", "_get_thnn_function_backend"): _no_backend,
    ("numpy.core.multiarray", "scalar"): _np_scalar,
    ("numpy._core.multiarray", "scalar"): _np_scalar,
    ("numpy", "dtype"): np.dtype,
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set,  # nn.Module._non_persistent_buffers_set
    ("builtins", "frozenset"): frozenset,
    ("_codecs", "encode"): codecs.encode,  # bytes under pickle protocol 2
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        # Python 2 names of protocol < 3 pickles (__builtin__.set -> builtins.set), as
        # pickle's own find_class maps them.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        try:
            return _LEGACY_ALLOWED[(module, name)]
        except KeyError:
            raise _Refused(f"{module}.{name}") from None

    def persistent_load(self, pid):
        kind = pid[0] if isinstance(pid, tuple) and pid else None
        if isinstance(kind, bytes):
            kind = kind.decode("ascii", "replace")
        if kind == "module" and len(pid) > 1 and pid[1] is _ReLURecord:
            return _ReLURecord
        if kind == "storage":
            raise _Refused("a tensor storage (tensors are not expected in state_dict.pth)")
        raise _Refused(f"a persistent record {kind!r}")


def _restricted_legacy_load(path: str):
    """Read a pre-1.6 torch file (magic, protocol, sys info, object, storage keys)."""
    from torch.serialization import MAGIC_NUMBER, PROTOCOL_VERSION

    with open(path, "rb") as f:
        if _RestrictedUnpickler(f).load() != MAGIC_NUMBER:
            raise ValueError("bad magic number")
        if _RestrictedUnpickler(f).load() != PROTOCOL_VERSION:
            raise ValueError("bad protocol version")
        _RestrictedUnpickler(f).load()  # sys info
        result = _RestrictedUnpickler(f).load()
        if _RestrictedUnpickler(f).load():  # storage keys: none without tensors
            raise _Refused("tensor storages")
    return result


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _refusal(path: str, e: Exception, extra: str, what_file: str) -> JaxawareError:
    """Map a weights-only ``UnpicklingError``: a refused global / object is a safety
    refusal; anything else (an unknown opcode in a damaged file) means unreadable."""
    text = str(e)
    glob = re.search(r"GLOBAL ([\w.]+)", text)
    built = re.search(r"Can only build .* but got <class '([^']+)'>", text)
    if glob:
        what = f"its pickle needs {glob.group(1)}, which is not on the allow-list"
    elif built:
        what = f"its pickle builds a {built.group(1)}, which is not on the allow-list"
    elif "persistent_load" in text:
        what = "its pickle holds Python objects other than tensors (persistent records)"
    else:
        detail = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
        return _unreadable(path, ValueError(detail.group(1) if detail else text), what_file)
    return JaxawareError(
        f"{path} was refused for safety: {what}; accepted are tensors and plain Python "
        f"values{extra} (weights-only loading, never weights_only=False)"
    )


def _unreadable(path: str, e: Exception, what: str) -> JaxawareError:
    return JaxawareError(
        f"cannot read {path} ({_first_line(e)}); it is truncated or not a PyTorch file, "
        f"expected {what} saved with torch.save"
    )


def load_weights_file(path: str) -> dict[str, np.ndarray]:
    """A generator state dict file -> ``{key: float32 numpy}`` (weights-only loading).

    Every value must be a tensor of a real dtype: float16/bfloat16/float64 and integer
    tensors become float32; non-finite values, non-tensor entries, bool/complex tensors,
    non-string keys and an empty dict are errors naming the key.
    """
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise _refusal(path, e, "", "a generator state dict") from None
    except Exception as e:  # truncated zip, bad magic, EOF, ...
        raise _unreadable(path, e, "a generator state dict") from None
    if not isinstance(obj, dict):
        raise JaxawareError(
            f"{path} holds a {type(obj).__name__}, not a state dict; expected the dict of "
            "G.state_dict() (G_ema.pth / G.pth as utils.save_weights writes them)"
        )
    if not obj:
        raise JaxawareError(f"{path} holds an empty state dict; expected generator tensors")
    out: dict[str, np.ndarray] = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise JaxawareError(f"{path} has a non-string key {key!r}; expected parameter names")
        if not isinstance(value, torch.Tensor):
            raise JaxawareError(
                f"{path} entry {key!r} is a {type(value).__name__}, not a tensor; a "
                "generator state dict holds only tensors"
            )
        if value.dtype == torch.bool or value.is_complex():
            raise JaxawareError(
                f"{path} entry {key!r} has dtype {value.dtype}; expected a real "
                "floating-point (or integer) tensor"
            )
        arr = value.detach().to(torch.float32).numpy().copy()
        if not np.all(np.isfinite(arr)):
            raise JaxawareError(
                f"{path} entry {key!r} has non-finite values (nan or inf); "
                "the file is damaged or the model diverged"
            )
        out[key] = arr
    return out


def _plain(obj):
    """Torch/numpy objects of a loaded config -> plain Python values."""
    if isinstance(obj, (torch.nn.ReLU, _ReLURecord)):
        return "inplace_relu" if obj.inplace else "relu"
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, torch.Tensor):
        return obj.item() if obj.dim() == 0 else obj.tolist()
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_plain(v) for v in obj)
    return obj


def load_train_state(path: str) -> dict:
    """``state_dict.pth`` -> its dict with plain values (see :func:`read_checkpoint_dir`)."""
    extra = " (and, here, torch.nn.ReLU and numpy scalars)"
    try:
        with torch.serialization.safe_globals(_state_globals()):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        legacy = not zipfile.is_zipfile(path) and "persistent_load" in str(e)
        if not legacy:
            raise _refusal(path, e, extra, "the training-state dict") from None
        try:
            obj = _restricted_legacy_load(path)
        except _Refused as r:
            raise JaxawareError(
                f"{path} was refused for safety: its pickle needs {r}, which is not on the "
                f"allow-list; accepted are plain Python values{extra} (restricted "
                "unpickler for torch's pre-1.6 format, nothing from the file is executed)"
            ) from None
        except Exception as e2:
            raise _unreadable(path, e2, "the training-state dict") from None
    except Exception as e:
        cause = e
        if not zipfile.is_zipfile(path) and _is_tar(path):
            cause = ValueError("torch's pre-0.4 tar format is not supported")
        raise _unreadable(path, cause, "the training-state dict") from None
    if not isinstance(obj, dict):
        raise JaxawareError(
            f"{path} holds a {type(obj).__name__}; expected the dict utils.save_weights "
            "writes ({itr, epoch, save_num, save_best_num, best_IS, best_FID, config})"
        )
    return _plain(obj)


def _is_tar(path: str) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def _listing(directory: str) -> str:
    names = sorted(n for n in os.listdir(directory) if n.endswith(".pth"))
    return ", ".join(names) if names else "no .pth files"


def read_checkpoint_dir(
    path: str | os.PathLike,
    weights: str | None = None,
    *,
    require_config: bool = False,
) -> tuple[dict[str, np.ndarray], dict | None, str]:
    """Read a BigGAN-PyTorch checkpoint directory.

    ``path``: a directory holding ``G_ema.pth`` (preferred) or ``G.pth``; ``weights`` names
    another file in it instead (``G_ema_best0.pth``, ``G_copy1.pth``, a TF-Hub conversion
    ``biggan-128.pth``). ``path`` may also be the weights file itself (then ``weights``
    must be None and the directory is its parent).

    Returns ``(state, config, weights_path)``:

    * ``state``: ``{key: np.ndarray float32}`` in file order (float16/bfloat16/float64 and
      integer tensors upcast/cast to float32; TF-Hub files have no ``sv`` keys);
    * ``config``: the ``config`` entry of the matching training state -- for
      ``G_ema_<suffix>.pth`` / ``G_<suffix>.pth`` ``state_dict_<suffix>.pth`` if present,
      else ``state_dict.pth`` -- as plain Python values: ``G_activation`` /
      ``D_activation`` (``nn.ReLU`` objects in the file) become the ``utils.activation_dict``
      names ``'relu'`` / ``'inplace_relu'``, numpy scalars become Python numbers.
      ``None`` when there is no training-state file or it has no ``config`` entry, unless
      ``require_config`` is set, which makes both an error. A training-state file that is
      present but unreadable, unsafe or not a dict is always an error;
    * ``weights_path``: the file the state was read from.

    Raises :class:`JaxawareError` (one line) for: a missing path, no ``G_ema.pth`` /
    ``G.pth`` (or no ``weights`` file), an unreadable or truncated file, a pickle needing
    a global that is not allow-listed (refused for safety; nothing from it is executed),
    a non-dict or empty state, a non-tensor entry (named with its type), a non-finite
    tensor (named).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise JaxawareError(
            f"{path} does not exist; expected a BigGAN-PyTorch checkpoint directory holding "
            "G_ema.pth or G.pth (and optionally state_dict.pth)"
        )
    if os.path.isfile(path):
        if weights is not None:
            raise JaxawareError(
                f"{path} is a file; give weights= only with a checkpoint directory"
            )
        directory, weights_path = os.path.dirname(path) or ".", path
    elif weights is not None:
        directory, weights_path = path, os.path.join(path, weights)
        if not os.path.isfile(weights_path):
            raise JaxawareError(
                f"{path} has no {weights} (found: {_listing(path)}); weights= names a "
                "generator file in the directory, e.g. G_ema_best0.pth"
            )
    else:
        directory = path
        found = [n for n in WEIGHT_NAMES if os.path.isfile(os.path.join(path, n))]
        if not found:
            raise JaxawareError(
                f"{path} has neither G_ema.pth nor G.pth (found: {_listing(path)}); pass "
                "weights= for another file such as G_ema_best0.pth or biggan-128.pth"
            )
        weights_path = os.path.join(path, found[0])
    state = load_weights_file(weights_path)

    m = re.fullmatch(r"(?:G_ema|G)(?:_(.+))?\.pth", os.path.basename(weights_path))
    candidates = ([f"state_dict_{m.group(1)}.pth"] if m and m.group(1) else []) + [STATE_NAME]
    state_file = next((os.path.join(directory, c) for c in candidates
                       if os.path.isfile(os.path.join(directory, c))), None)
    config = None
    if state_file is None:
        if require_config:
            raise JaxawareError(
                f"{directory} has no {' or '.join(candidates)}; the config is read from the "
                "training state that utils.save_weights writes next to the weights"
            )
    else:
        train_state = load_train_state(state_file)
        config = train_state.get("config")
        if not isinstance(config, dict):
            if require_config:
                raise JaxawareError(
                    f"{state_file} has no 'config' dict (keys: "
                    f"{', '.join(map(str, train_state)) or 'none'}); expected the training "
                    "arguments under 'config'"
                )
            config = None
    return state, config, weights_path
