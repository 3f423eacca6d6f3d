"""Channel awareness (He et al., *Interpreting Class Conditional GANs with Channel Awareness*,
Sec. 2.2) for every CCBN channel of a generator of any family and a set of classes.

For class ``k``, latent ``z`` and channel ``c``, the probe is ``t = -beta / gamma``. Over
``N`` latents (the same latents for every class):

* category-oriented awareness ``-E_z[t]`` (high: the class keeps more of this channel);
* latent-oriented awareness ``Var_z[t]`` (population variance, ``ddof = 0``);
* ``flip_fraction``: the fraction of latents with ``gamma <= 0``. There the ReLU keeps the
  normalised inputs *below* ``t`` and the paper's reading of ``t`` is inverted; the paper
  ignores this case, we report it.

Cost. Both maps are affine in the latent and the class features (the family's
:class:`~jaxaware.models.family.AffineMaps`): ``gamma = (1 + z @ S_z) + e @ S_e`` and
``beta = z @ O_z + e @ O_e``. We compute the latent parts ``[N, C]`` and the class parts
``[K, C]`` once with matmuls,
``O((N + K) * D * C)``, and then only add, divide and accumulate, ``O(N * K * C)``. The
accumulation runs over latents in a ``fori_loop`` on a block of ``class_chunk`` classes x
all channels, 8 latents per step in one fused kernel, summing ``t - s`` and ``(t - s)^2``
in float32 with a per-(class, channel) shift ``s`` near the mean (numerically stable);
peak memory is ``O((N + K) * C)`` whatever ``N * K``. The flip fraction uses
``gamma <= 0`` iff ``a_n <= -b_k`` (exact in float32), counted in the same kind of loop.
"""

from __future__ import annotations

import dataclasses
import zipfile
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxaware import parallel
from jaxaware.checks import SEED_MAX, check_fits_in_memory, check_int, check_seed
from jaxaware.atomic import atomic_write
from jaxaware.errors import JaxawareError
from jaxaware.models import family_of
from jaxaware.sites import site_offsets, site_table, total_channels
from jaxaware.truncation import check_truncation

FILE_KEYS = (
    "category", "latent", "flip_fraction", "classes", "site_names", "site_offsets",
    "num_latents", "truncation", "seed", "model_id",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Awareness:
    """Awareness of ``K`` classes over all sites; channel columns are grouped by site."""

    category: np.ndarray  # [K, total_channels]  -E_z[t]
    latent: np.ndarray  # [K, total_channels]  Var_z[t]
    flip_fraction: np.ndarray  # [K, total_channels]  P_z(gamma <= 0)
    classes: np.ndarray  # [K] class indices
    site_names: tuple[str, ...]
    site_offsets: np.ndarray  # [num_sites, 2] (start, stop) columns
    num_latents: int
    truncation: float
    seed: int  # -1 when the caller gave the latents
    model_id: str

    def site(self, name: str) -> slice:
        """The columns of one site: ``aw.category[:, aw.site('block3.bn1')]``."""
        try:
            i = self.site_names.index(name)
        except ValueError:
            raise JaxawareError(
                f"unknown site {name!r}; this file has {self.site_names[0]}.."
                f"{self.site_names[-1]}"
            ) from None
        return slice(*map(int, self.site_offsets[i]))

    def save(self, path: str) -> str:
        """Writes an ``.npz`` (no pickles) atomically: temp file in the same folder, rename."""
        arrays = {
            "category": self.category,
            "latent": self.latent,
            "flip_fraction": self.flip_fraction,
            "classes": np.asarray(self.classes, np.int64),
            "site_names": np.asarray(self.site_names, dtype=np.str_),
            "site_offsets": np.asarray(self.site_offsets, np.int64),
            "num_latents": np.int64(self.num_latents),
            "truncation": np.float64(self.truncation),
            "seed": np.int64(self.seed),
            "model_id": np.str_(self.model_id),
        }
        with atomic_write(path) as f:
            np.savez(f, **arrays)
        return path

    @classmethod
    def load(cls, path: str) -> Awareness:
        d = read_npz_arrays(path, FILE_KEYS)
        _check_file(d, path)
        return cls(
            category=d["category"],
            latent=d["latent"],
            flip_fraction=d["flip_fraction"],
            classes=d["classes"],
            site_names=tuple(str(s) for s in d["site_names"]),
            site_offsets=d["site_offsets"],
            num_latents=int(d["num_latents"]),
            truncation=float(d["truncation"]),
            seed=int(d["seed"]),
            model_id=str(d["model_id"]),
        )


def _check_file(d: dict, path) -> None:
    """Every array of an awareness file against the sites it declares: ``site_names`` str
    ``[S]`` (distinct), ``site_offsets`` int ``[S, 2]`` running contiguously from 0 to
    ``C_total``, ``classes`` int ``[K]``, the three maps float ``[K, C_total]``, and the
    scalars; so :meth:`Awareness.site` never returns a wrong or empty slice."""

    def bad(key, want):
        a = d[key]
        raise JaxawareError(f"{path} is not a valid awareness file: {key} is {a.dtype} "
                            f"{list(a.shape)}; expected {want}; re-create it")

    names, offsets, classes = d["site_names"], d["site_offsets"], d["classes"]
    if names.dtype.kind != "U" or names.ndim != 1 or names.size < 1 or len(
            set(names.tolist())) != names.size:
        bad("site_names", "distinct strings [S] with S >= 1")
    s = names.size
    want = f"integers [{s}, 2] whose [start, stop) columns run contiguously from 0"
    if offsets.dtype.kind not in "iu" or offsets.shape != (s, 2):
        bad("site_offsets", want)
    for i, (start, stop) in enumerate(offsets.tolist()):
        expect = 0 if i == 0 else int(offsets[i - 1, 1])
        if start != expect or stop <= start:
            where = "" if i == 0 else f", where row {i - 1} stops"
            reason = (f"it must start at {expect}{where}" if start != expect
                      else "it must be a non-empty [start, stop) range")
            raise JaxawareError(f"{path} is not a valid awareness file: site_offsets row {i} "
                                f"is {[start, stop]}; {reason}; re-create it")
    total = int(offsets[-1, 1])
    if classes.dtype.kind not in "iu" or classes.ndim != 1 or classes.size < 1 or (
            classes < 0).any():
        bad("classes", "non-negative integers [K] with K >= 1")
    k = classes.size
    for key in ("category", "latent", "flip_fraction"):
        if d[key].dtype.kind != "f" or d[key].shape != (k, total):
            bad(key, f"floats [{k}, {total}] ({k} classes x the {total} columns of its "
                     f"{s} sites)")
    scalars = {
        "num_latents": ("iu", lambda v: v >= 1, "an integer >= 1"),
        "truncation": ("f", lambda v: 0 < v <= 1, "a number in (0, 1]"),
        "seed": ("iu", lambda v: -1 <= v <= SEED_MAX, f"an integer in -1..{SEED_MAX}"),
        "model_id": ("U", lambda v: True, "a string"),
    }
    for key, (kinds, ok, what) in scalars.items():
        a = d[key]
        if a.ndim != 0:
            bad(key, what)
        if a.dtype.kind not in kinds or not ok(a[()]):
            raise JaxawareError(f"{path} is not a valid awareness file: {key} is "
                                f"{a.tolist()!r} ({a.dtype}); expected {what}; re-create it")


def probes(config, params: dict, z, classes) -> dict[str, dict]:
    """Probes-only path: ``{site: {t, gamma, beta}}`` ``[B, C]`` with no convolution.

    A pure function (jit it with ``config`` static, vmap it, differentiate it): ``z``
    ``[B, z_dim]``; ``classes`` integer labels ``[B]``, class vectors ``[B, num_classes]``
    or per-block class vectors ``[B, n_blocks, num_classes]``.
    """
    family = family_of(config)
    hint = f"give the params of a {family.title} model of this config (model.params)"
    if not isinstance(params, Mapping):
        raise JaxawareError(f"params must be a dict of arrays; got {type(params).__name__}; "
                            f"{hint}")
    try:
        affine = family.affine_maps(params, config)
    except KeyError as e:
        raise JaxawareError(f"params lack {e.args[0]!r}; {hint}") from None
    y = jnp.asarray(classes)
    if jnp.issubdtype(y.dtype, jnp.integer):
        y = jax.nn.one_hot(y, config.num_classes, dtype=jnp.float32)
    if y.ndim not in (2, 3) or y.shape[-1] != config.num_classes:
        raise JaxawareError(
            f"classes must be labels [B], class vectors [B, {config.num_classes}] or "
            f"[B, {config.n_blocks}, {config.num_classes}]; got {list(y.shape)}")
    if jnp.ndim(z) != 2 or jnp.shape(z)[1] != config.z_dim:
        raise JaxawareError(f"latents must have shape [B, {config.z_dim}]; got "
                            f"{list(jnp.shape(z))}")
    gain_z, bias_z = z @ affine.gain_latent, z @ affine.bias_latent
    out = {}
    e_all = affine.embed(y) if y.ndim == 2 else None
    for s in site_table(config):
        cols = slice(s.offset, s.offset + s.channels)
        e = e_all if e_all is not None else affine.embed(y[:, s.block])
        gamma = 1 + gain_z[:, cols] + e @ affine.gain_class[:, cols]
        beta = bias_z[:, cols] + e @ affine.bias_class[:, cols]
        out[s.name] = {"t": -beta / gamma, "gamma": gamma, "beta": beta}
    return out


# Latents per loop step of the kernels below: the body is one elementwise fusion over a
# [K, C] block that reads ``_ROWS`` latent rows, so the class block and the accumulator are
# loaded and stored once per ``_ROWS`` latents instead of once per latent.
_ROWS = 8


def _row_blocks(n: int):
    """``(steps, rem)``: ``steps`` loop steps of ``_ROWS`` rows, then ``rem`` trailing rows."""
    return n // _ROWS, n % _ROWS


def awareness_moments(a_s, a_o, b_s, b_o):
    """Mean and M2 of ``t = -(a_o + b_o) / (a_s + b_s)`` over the rows of ``a``.

    ``a_*``: ``[N, C]`` latent parts; ``b_*``: ``[K, C]`` class parts. Returns ``(mean, m2)``
    ``[K, C]`` with ``var = m2 / N``.

    One ``fori_loop`` over latents, ``_ROWS`` latents per step, whose body is a single fused
    elementwise kernel over ``[K, C]`` (XLA splits it over the CPU threads). It accumulates
    shifted sums ``sum(d)`` and ``sum(d^2)`` of ``d = t - s`` as the real and imaginary parts
    of one complex64 carry, so both sums come out of the same fusion (two separate float
    carries make XLA materialise ``t`` and run several passes per step). The shift ``s`` is
    the mean of ``t`` over the first (up to 8) latents, so ``|mean - s|`` is a fraction of
    the standard deviation and ``sum(d^2)/N - mean(d)^2`` loses no accuracy to cancellation.
    """
    n = a_s.shape[0]
    m0 = min(n, 8)
    shift = sum(-(a_o[i] + b_o) / (a_s[i] + b_s) for i in range(m0)) / m0

    def block(rows):  # [K, C] complex64: sum over these latents of (d, d^2)
        s1 = s2 = 0.0
        for xs, xo in rows:
            d = -(xo + b_o) / (xs + b_s) - shift
            s1, s2 = s1 + d, s2 + d * d
        return jax.lax.complex(s1, s2)

    def body(j, acc):
        rows = [
            (jax.lax.dynamic_index_in_dim(a_s, j * _ROWS + i, keepdims=False),
             jax.lax.dynamic_index_in_dim(a_o, j * _ROWS + i, keepdims=False))
            for i in range(_ROWS)
        ]  # fmt: skip
        return acc + block(rows)

    steps, rem = _row_blocks(n)
    acc = jax.lax.fori_loop(0, steps, body, jnp.zeros(b_s.shape, jnp.complex64))
    if rem:
        acc = acc + block([(a_s[i], a_o[i]) for i in range(steps * _ROWS, n)])
    mean_d = acc.real / n
    m2 = jnp.maximum(acc.imag - acc.real * mean_d, 0.0)
    return shift + mean_d, m2


def flip_counts(a_s, b_s):
    """``#{n : a_s[n] + b_s[k] <= 0}`` per class and channel (int32 ``[K, C]``).

    In float32 ``a + b <= 0`` is exactly ``a <= -b`` (rounding is monotone and keeps the
    sign), so this counts ``a_s[n] <= -b_s`` with a ``fori_loop`` of ``_ROWS`` latents per
    step, one fused compare-and-add over ``[K, C]`` per step. (A sorted search per channel
    does fewer comparisons, but XLA's CPU gathers make it about 30x slower.)
    """
    n = a_s.shape[0]
    neg_b = -b_s

    def block(rows):
        return sum((x <= neg_b).astype(jnp.int32) for x in rows)

    def body(j, count):
        rows = [jax.lax.dynamic_index_in_dim(a_s, j * _ROWS + i, keepdims=False)
                for i in range(_ROWS)]  # fmt: skip
        return count + block(rows)

    steps, rem = _row_blocks(n)
    count = jax.lax.fori_loop(0, steps, body, jnp.zeros(b_s.shape, jnp.int32))
    if rem:
        count = count + block([a_s[i] for i in range(steps * _ROWS, n)])
    return count


@jax.jit
def chunk_awareness(a_s, a_o, b_s, b_o):
    """``(category, latent, flip count)`` ``[K, C]`` for one chunk of classes, from the
    latent parts ``a_s = 1 + z @ S_z``, ``a_o = z @ O_z`` ``[N, C]`` and the class parts
    ``b_s``, ``b_o`` ``[K, C]`` (pure; what :func:`compute_awareness` runs per chunk)."""
    mean, m2 = awareness_moments(a_s, a_o, b_s, b_o)
    return -mean, m2 / a_s.shape[0], flip_counts(a_s, b_s)


def chunk_awareness_rows(rows, a_s, a_o):
    """:func:`chunk_awareness` with the class parts ``rows = (b_s, b_o)`` as the mapped rows
    and the latent parts shared: the form :func:`jaxaware.parallel.map_rows` maps (rows
    first, shared arguments after), what :func:`compute_awareness` shards over classes."""
    b_s, b_o = rows
    return chunk_awareness(a_s, a_o, b_s, b_o)


def compute_awareness(
    model,
    classes=None,
    num_latents: int = 1000,
    truncation: float = 1.0,
    seed: int = 0,
    latents=None,
    class_chunk: int = 100,
    progress: bool = False,
    devices=None,
) -> Awareness:
    """Category and latent awareness of every CCBN channel of ``model`` for ``classes``
    (default all).

    Latents are drawn from ``seed`` with the family's sampler at ``truncation`` (BigGAN-deep:
    ``truncation * truncnorm(-2, 2)`` as the reference package; BigGAN: ``truncation *
    N(0, 1)``), the same for every class; or pass ``latents`` ``[N, z_dim]`` yourself
    (``seed`` is then recorded as -1). Truncation only scales the latents: probes do not
    depend on the batch-norm statistics. Classes are processed ``class_chunk`` at a time per
    device, so memory is ``O((N + class_chunk) * C)`` per device.

    ``devices``: None (every device JAX sees), the first ``N`` local devices (an int) or a
    1-D ``Mesh`` (:mod:`jaxaware.parallel`). Classes are sharded over them (a class count
    that does not divide is padded); each device runs :func:`chunk_awareness` on its own
    classes, so the result is bit-identical on any number of devices and processes.
    """
    from jaxaware.generate import check_model
    from jaxaware.model import check_params

    config = check_model(model).config
    family = family_of(config)
    truncation = check_truncation(truncation)
    classes = _check_classes(classes, config)
    class_chunk = check_int(class_chunk, "class_chunk")
    devices = parallel.check_devices(devices)
    total = total_channels(config)
    if latents is None:
        num_latents = check_int(num_latents, "num_latents")
        seed = check_seed(seed)
        check_fits_in_memory(awareness_bytes(config, num_latents, len(classes), class_chunk),
                             f"awareness of {len(classes)} classes x {total} channels over "
                             f"{num_latents} latents")
        z = family.sample_latents(num_latents, config, truncation, seed)
    else:
        try:
            z = np.asarray(latents)
        except (TypeError, ValueError):  # ragged lists and such
            z = np.asarray(latents, dtype=object)
        if z.ndim != 2 or z.shape[1] != config.z_dim or z.shape[0] < 1:
            raise JaxawareError(
                f"latents must have shape [N, {config.z_dim}] with N >= 1; got {z.shape}"
            )
        if z.dtype.kind not in "biuf":
            raise JaxawareError(f"latents must be real numbers; got dtype {z.dtype}")
        check_fits_in_memory(awareness_bytes(config, z.shape[0], len(classes), class_chunk),
                             f"awareness of {len(classes)} classes x {total} channels over "
                             f"{z.shape[0]} latents")
        z = z.astype(np.float32)
        seed = -1
    if not np.isfinite(z).all():
        raise JaxawareError("latents contain NaN or infinity; give finite values")
    variables = model.variables
    check_params(config, variables.get("params") if isinstance(variables, Mapping) else None)
    n = z.shape[0]
    affine = family.affine_maps(model.params, config)
    # Latent parts [N, C] and class parts [K, C]: the only matmuls.
    a_s = 1.0 + jnp.asarray(z) @ affine.gain_latent
    a_o = jnp.asarray(z) @ affine.bias_latent
    b_s, b_o = affine.class_parts(classes)

    bar = None
    if progress and parallel.is_main_process():
        from tqdm.auto import tqdm

        bar = tqdm(total=len(classes), desc="awareness", unit="class")
    try:
        # Classes sharded over the mesh axis, class_chunk (or fewer) per device per step;
        # every device runs chunk_awareness on its own classes, whose per-class arithmetic
        # does not depend on how many classes share a chunk: bit-identical on any devices.
        out = parallel.map_rows(chunk_awareness_rows, (b_s, b_o), a_s, a_o, block=class_chunk,
                                devices=devices, progress=bar.update if bar else None)
    finally:
        if bar is not None:
            bar.close()
    category, latent = out[0], out[1]
    flips = (out[2].astype(np.int64) / np.float64(n)).astype(np.float32)
    sites = site_table(config)
    return Awareness(
        category=category,
        latent=latent,
        flip_fraction=flips,
        classes=np.asarray(classes, np.int64),
        site_names=tuple(s.name for s in sites),
        site_offsets=site_offsets(config),
        num_latents=n,
        truncation=truncation,
        seed=int(seed),
        model_id=model.model_id,
    )


def awareness_bytes(config, num_latents: int, num_classes: int, class_chunk: int) -> int:
    """Bytes :func:`compute_awareness` holds at its peak, roughly: the latents (float64 as
    drawn, then float32), the latent parts ``[N, C]`` x 2, the results ``[K, C]`` and the
    per-chunk blocks."""
    c = total_channels(config)
    return (num_latents * config.z_dim * 12 + 2 * num_latents * c * 4 + num_classes * c * 28
            + 8 * min(class_chunk, num_classes) * c * 4)


def _check_classes(classes, config) -> np.ndarray:
    if classes is None:
        return np.arange(config.num_classes)
    arr = np.atleast_1d(np.asarray(classes))
    if arr.size == 0 or arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise JaxawareError(
            f"classes must be a non-empty list of class indices 0..{config.num_classes - 1}"
        )
    bad = arr[(arr < 0) | (arr >= config.num_classes)]
    if bad.size:
        raise JaxawareError(
            f"class index {int(bad[0])} is out of range; this model has classes "
            f"0..{config.num_classes - 1}"
        )
    return arr


def read_npz_arrays(path: str, keys) -> dict:
    """The arrays ``keys`` of an awareness ``.npz`` (no pickles), or a one-line
    :class:`JaxawareError` naming the path: missing file, missing keys, unreadable archive."""
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as f:
            missing = [k for k in keys if k not in f.files]
            if missing:
                raise JaxawareError(
                    f"{path} is not an awareness file: it lacks {', '.join(missing)}")
            return {k: f[k] for k in keys}
    except JaxawareError:
        raise
    except FileNotFoundError:
        raise JaxawareError(f"awareness file {path} does not exist") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise JaxawareError(
            f"cannot read {path} as an awareness .npz ({type(e).__name__}); "
            "is the file complete?"
        ) from None


def select_site_names(names, sites) -> list[str]:
    """Site names chosen from ``names`` (an awareness file's, in forward order) by name or
    label (``L3``), given as a list or comma-separated; None chooses all. Returned in
    forward order without repeats; an unknown site is a one-line error."""
    names = list(names)
    if sites is None:
        return names
    if isinstance(sites, str):
        sites = [s.strip() for s in sites.split(",") if s.strip()]
    labels = {f"L{i}": n for i, n in enumerate(names)}
    chosen = []
    for s in sites:
        name = labels.get(s, s)
        if name not in names:
            raise JaxawareError(f"unknown site {s!r}; CCBN sites are {names[0]}..{names[-1]} "
                                f"(L0..L{len(names) - 1})")
        chosen.append(name)
    return sorted(dict.fromkeys(chosen), key=names.index)
