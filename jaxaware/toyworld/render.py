"""Render the toy world: deterministic, vectorised numpy, with exact part maps.

Image ``i`` of a call is a pure function of ``(seed, start + i)`` and its class:

* Class-independent factors (:func:`factors`) come from a random stream keyed by
  ``(seed, index)`` only: the background (a flat colour or a two-colour linear gradient),
  the lighting (gain and a linear light gradient across the object), the object's position,
  scale, a small rotation (up to 15 degrees) and a left/right mirror. The same
  ``(seed, index)`` therefore gives the same background, light and pose for any class.
* Class-specific appearance comes from a second stream keyed by ``(seed, index)``: the
  class's painter (:mod:`.drawings`) maps it to per-image proportions, and the class palette
  (:mod:`.metadata`) is jittered by a small per-image tint and brightness.

Each part is one flat colour times the lighting; nothing is anti-aliased, so the part map
says exactly which part coloured each pixel. Images are float32 NHWC in [-1, 1]; part maps
are int32 ``[N, H, W]`` over :data:`~jaxaware.toyworld.metadata.PART_NAMES`.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np

from jaxaware.errors import JaxawareError
from jaxaware.toyworld import rng
from jaxaware.toyworld.drawings import PAINTERS
from jaxaware.toyworld.geometry import Canvas
from jaxaware.toyworld.metadata import WORLD, check_resolution

_SHAPE_K = 16      # shape-jitter columns handed to the painters
_COLOUR_K = 4      # tint r, g, b and brightness
_CHUNK = 256       # images per vectorised step (keeps the working set in cache)
MAX_ROTATION = np.deg2rad(15.0)


@dataclass(frozen=True)
class Factors:
    """Class-independent factors of ``n`` images (all float32 arrays with leading ``n``).

    Attributes:
        bg_from, bg_to: [n, 3] background RGB in [0, 1] at the two ends of the gradient
            (equal for the flat backgrounds, about half of the images).
        bg_angle: [n] direction of the background gradient (radians).
        light_gain: [n] overall brightness of the object (0.8 .. 1.1).
        light_angle: [n] direction the light gradient rises towards (radians).
        light_strength: [n] slope of the light gradient across the image (0 .. 0.25).
        offset: [n, 2] object centre (x, y) in image coordinates [-1, 1].
        scale: [n] half-size of the object's frame as a fraction of the image half-size.
        rotation: [n] rotation of the object (radians, |rotation| <= 15 degrees).
        mirror: [n] bool, object mirrored left-right.
    """

    bg_from: np.ndarray
    bg_to: np.ndarray
    bg_angle: np.ndarray
    light_gain: np.ndarray
    light_angle: np.ndarray
    light_strength: np.ndarray
    offset: np.ndarray
    scale: np.ndarray
    rotation: np.ndarray
    mirror: np.ndarray

    def take(self, idx: np.ndarray) -> "Factors":
        """The factors of the images at positions ``idx``."""
        return Factors(**{k: getattr(self, k)[idx] for k in self.__dataclass_fields__})


def check_count(n, what: str = "n") -> int:
    """Return ``n`` as an int, or raise :class:`JaxawareError` if it is not a count >= 0."""
    try:
        value = operator.index(n)
    except TypeError:
        raise JaxawareError(f"{what} must be a non-negative integer, got {n!r}") from None
    if isinstance(n, (bool, np.bool_)) or value < 0:
        raise JaxawareError(f"{what} must be a non-negative integer, got {n!r}")
    return value


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV -> RGB for arrays in [0, 1]; returns [..., 3]."""
    out = []
    for n in (5.0, 3.0, 1.0):
        k = np.mod(n + h * 6.0, 6.0)
        out.append(v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0))
    return np.stack(out, axis=-1).astype(np.float32)


def factors(n: int, seed: int = 0, start: int = 0) -> Factors:
    """The class-independent factors of images ``start .. start + n - 1`` for ``seed``."""
    n = check_count(n)
    seed = check_count(seed, "seed")
    start = check_count(start, "start")
    r = rng.uniform(seed, rng.STREAM_FACTORS, np.arange(start, start + n, dtype=np.uint64), 16)
    bg_from = _hsv_to_rgb(r[:, 0], 0.05 + 0.3 * r[:, 1], 0.45 + 0.45 * r[:, 2])
    bg_other = _hsv_to_rgb(r[:, 3], 0.05 + 0.3 * r[:, 4], 0.45 + 0.45 * r[:, 5])
    flat = r[:, 6] < 0.5
    bg_to = np.where(flat[:, None], bg_from, bg_other)
    f32 = np.float32
    return Factors(
        bg_from=bg_from,
        bg_to=bg_to,
        bg_angle=(r[:, 7] * f32(2 * np.pi)).astype(f32),
        light_gain=(0.8 + 0.3 * r[:, 8]).astype(f32),
        light_angle=(r[:, 9] * f32(2 * np.pi)).astype(f32),
        light_strength=(0.25 * r[:, 10]).astype(f32),
        offset=(np.stack([r[:, 11], r[:, 12]], axis=1) * 0.3 - 0.15).astype(f32),
        scale=(0.6 + 0.22 * r[:, 13]).astype(f32),
        rotation=((2 * r[:, 14] - 1) * f32(MAX_ROTATION)).astype(f32),
        mirror=r[:, 15] < 0.5,
    )


def _pixel_grid(resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Image coordinates x (right), y (down) of the pixel centres, each [1, R, R] in (-1, 1)."""
    t = ((np.arange(resolution, dtype=np.float32) + 0.5) / resolution * 2.0 - 1.0)
    return t[None, None, :], t[None, :, None]


def _gradient(f: Factors, resolution: int) -> np.ndarray:
    """Position along the background gradient, 0 (``bg_from``) .. 1 (``bg_to``): [n, R, R]."""
    x, y = _pixel_grid(resolution)
    ca, sa = np.cos(f.bg_angle)[:, None, None], np.sin(f.bg_angle)[:, None, None]
    return 0.5 + (ca * x + sa * y) * np.float32(0.5 / np.sqrt(2.0))


def background(f: Factors, resolution: int) -> np.ndarray:
    """Background RGB in [0, 1] of images with factors ``f``: ``[n, R, R, 3]`` float32.

    Every pixel whose part label is 0 shows exactly this colour (mapped to [-1, 1])."""
    t = _gradient(f, resolution)
    return f.bg_from[:, None, None, :] + (f.bg_to - f.bg_from)[:, None, None, :] * t[..., None]


def light(f: Factors, resolution: int) -> np.ndarray:
    """Multiplicative lighting of the object, ``[n, R, R]`` float32: an object pixel of
    part colour ``c`` is ``clip(c * light, 0, 1)`` (then mapped to [-1, 1])."""
    x, y = _pixel_grid(resolution)
    ca, sa = np.cos(f.light_angle)[:, None, None], np.sin(f.light_angle)[:, None, None]
    return f.light_gain[:, None, None] * (1.0 + f.light_strength[:, None, None] * (ca * x + sa * y))


def object_coords(f: Factors, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Object-local coordinates (u, v) of every pixel centre, each ``[n, R, R]`` float32."""
    x, y = _pixel_grid(resolution)
    dx = x - f.offset[:, 0, None, None]
    dy = y - f.offset[:, 1, None, None]
    c = (np.cos(f.rotation) / f.scale)[:, None, None]
    s = (np.sin(f.rotation) / f.scale)[:, None, None]
    u = c * dx + s * dy
    v = c * dy - s * dx
    u = np.where(f.mirror[:, None, None], -u, u)
    return u.astype(np.float32), v.astype(np.float32)


def class_colours(classes: np.ndarray, jitter: np.ndarray) -> np.ndarray:
    """Per-image part colours ``[n, num_parts, 3]``: the palette with tint and brightness."""
    base = WORLD.palettes[classes]
    tint = 0.1 * (jitter[:, None, 0:3] - 0.5)
    bright = 0.92 + 0.16 * jitter[:, None, 3:4]
    return np.clip(base * bright + tint, 0.0, 1.0).astype(np.float32)


def as_class_indices(classes) -> np.ndarray:
    """Class indices ``int64 [N]`` from an int array or a sequence of names and/or indices."""
    if isinstance(classes, (str, bytes)) or np.ndim(classes) == 0:
        raise JaxawareError(
            f"classes must be a 1-D sequence of class names or indices, got {classes!r}")
    try:
        arr = np.asarray(classes)
    except ValueError:  # ragged nesting
        arr = np.asarray(classes, dtype=object)
    if arr.ndim != 1:
        raise JaxawareError(f"classes must be 1-D, got shape {arr.shape}")
    if arr.dtype.kind in "iu":
        bad = (arr < 0) | (arr >= WORLD.num_classes)
        if bad.any():
            WORLD.class_index(int(arr[bad][0]))
        return arr.astype(np.int64)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    items = classes.tolist() if isinstance(classes, np.ndarray) else list(classes)
    return np.array([WORLD.class_index(c.item() if isinstance(c, np.generic) else c)
                     for c in items], dtype=np.int64)


def render(classes, seed: int = 0, start: int = 0, resolution: int = 32):
    """Render one image per entry of ``classes``.

    Args:
        classes: 1-D int array of class indices, or a sequence of class names/indices.
        seed: non-negative world seed.
        start: index of the first image; image ``i`` is the world's image ``start + i``.
        resolution: 32 or 64 (the same scene at either size).

    Returns:
        ``(images, part_maps)``: float32 ``[N, R, R, 3]`` in [-1, 1] and int32 ``[N, R, R]``
        part labels (0 = background).
    """
    resolution = check_resolution(resolution)
    cls = as_class_indices(classes)
    n = len(cls)
    f = factors(n, seed, start)
    index = np.arange(start, start + n, dtype=np.uint64)
    jit = rng.uniform(seed, rng.STREAM_SHAPE, index, _SHAPE_K + _COLOUR_K)
    labels = np.empty((n, resolution, resolution), dtype=np.uint8)
    # Shapes: one vectorised painter call per class and chunk.
    order = np.argsort(cls, kind="stable")
    bounds = np.searchsorted(cls[order], np.arange(WORLD.num_classes + 1))
    for c in range(WORLD.num_classes):
        members = order[bounds[c]:bounds[c + 1]]
        for lo in range(0, len(members), _CHUNK):
            idx = members[lo:lo + _CHUNK]
            u, v = object_coords(f.take(idx), resolution)
            canvas = Canvas(u, v, jit[idx, :_SHAPE_K])
            PAINTERS[WORLD.class_names[c]](canvas)
            labels[idx] = canvas.labels
    # Colours: the same for every class, in contiguous chunks, one colour plane at a time
    # (numpy is much faster on same-shape planes than when broadcasting over channels).
    images = np.empty((n, resolution, resolution, 3), dtype=np.float32)
    for lo in range(0, n, _CHUNK):
        sl = slice(lo, min(n, lo + _CHUNK))
        _compose(labels[sl], class_colours(cls[sl], jit[sl, _SHAPE_K:]),
                 f.take(sl), images[sl])
    return images, labels.astype(np.int32)


def _compose(labels: np.ndarray, colours: np.ndarray, f: Factors, out: np.ndarray) -> None:
    """Write the images with part maps ``labels`` and part colours ``colours`` to ``out``."""
    m, res = labels.shape[0], labels.shape[1]
    num_parts = colours.shape[1]
    flat = labels.astype(np.intp)
    flat += (np.arange(m, dtype=np.intp) * num_parts)[:, None, None]
    table = np.ascontiguousarray(colours.transpose(2, 0, 1)).reshape(3, -1)
    shade = light(f, res)
    is_bg = labels == 0
    t = _gradient(f, res)
    planes = np.empty((3, m, res, res), dtype=np.float32)
    for ch in range(3):
        plane = planes[ch]
        np.take(table[ch], flat, out=plane, mode="clip")
        plane *= shade
        bg = t * (f.bg_to[:, ch] - f.bg_from[:, ch])[:, None, None]
        bg += f.bg_from[:, ch, None, None]
        np.copyto(plane, bg, where=is_bg)
    np.clip(planes, 0.0, 1.0, out=planes)
    planes *= 2.0
    planes -= 1.0
    out[...] = planes.transpose(1, 2, 3, 0)


def balanced_classes(n: int, seed: int = 0, start: int = 0) -> np.ndarray:
    """Class indices of images ``start .. start + n - 1`` of a balanced data set.

    Every aligned block of 16 consecutive indices holds each class once, in an order that
    is a hash of ``(seed, block)``; so any ``n`` images starting at a multiple of 16 are
    balanced to within one image per class.
    """
    n = check_count(n)
    seed = check_count(seed, "seed")
    start = check_count(start, "start")
    k = WORLD.num_classes
    first, last = start // k, (start + n + k - 1) // k
    blocks = np.arange(first, last, dtype=np.uint64)
    keys = rng.hash_u64(seed, rng.STREAM_CLASSES, blocks, k)
    perm = np.argsort(keys, axis=1).reshape(-1)
    return perm[start - first * k: start - first * k + n].astype(np.int64)


def sample_dataset(n: int, seed: int = 0, resolution: int = 32, start: int = 0):
    """``n`` images with balanced classes: ``(images, classes, part_maps)``.

    Deterministic from ``(seed, start)``; see :func:`balanced_classes` and :func:`render`.
    """
    resolution = check_resolution(resolution)
    classes = balanced_classes(n, seed, start)
    images, part_maps = render(classes, seed=seed, start=start, resolution=resolution)
    return images, classes, part_maps
