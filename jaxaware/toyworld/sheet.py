"""A PNG contact sheet of the toy world: samples of every class and their part masks.

Each row is one class (grouped by family): ``samples`` rendered images, then the same
images with their part maps overlaid in a fixed colour per part; a legend at the bottom
names the part colours.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from jaxaware.atomic import atomic_write
from jaxaware.toyworld.metadata import WORLD, check_resolution
from jaxaware.toyworld.render import check_count, render

#: A distinct overlay colour for each part of the global vocabulary (0 = background).
PART_COLOURS = np.array([
    (0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200),
    (245, 130, 48), (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60),
    (250, 190, 212), (0, 128, 128), (220, 190, 255), (170, 110, 40),
], dtype=np.float32) / 255.0
assert len(PART_COLOURS) == WORLD.num_parts


def to_uint8(images: np.ndarray) -> np.ndarray:
    """float images in [-1, 1] -> uint8 in [0, 255]."""
    return np.round((np.clip(images, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def overlay(images: np.ndarray, part_maps: np.ndarray, alpha: float = 0.65) -> np.ndarray:
    """Images in [-1, 1] with each part tinted in its :data:`PART_COLOURS` colour (uint8);
    the background is dimmed so that the parts stand out."""
    rgb = (np.clip(images, -1.0, 1.0) + 1.0) / 2.0
    tint = PART_COLOURS[part_maps]
    obj = (part_maps > 0)[..., None]
    out = np.where(obj, (1 - alpha) * rgb + alpha * tint, 0.35 * rgb)
    return np.round(out * 255.0).astype(np.uint8)


def make_sheet(samples: int = 6, seed: int = 0, resolution: int = 64,
               zoom: int = 1) -> Image.Image:
    """The sheet as a PIL image: one row per class, ``samples`` images then their masks."""
    samples = check_count(samples, "samples")
    resolution = check_resolution(resolution)
    zoom = check_count(zoom, "zoom") or 1
    classes = np.repeat(np.arange(WORLD.num_classes), samples)
    images, part_maps = render(classes, seed=seed, start=0, resolution=resolution)
    return sheet_image(images, part_maps, samples, zoom)


def sheet_image(images: np.ndarray, part_maps: np.ndarray, samples: int,
                zoom: int = 1) -> Image.Image:
    """A sheet of any world-class images (rendered or generated) and their part maps:
    ``images`` ``[16 * samples, R, R, 3]`` in [-1, 1], class-major (row ``c`` holds images
    ``c * samples ...``), ``part_maps`` ``[16 * samples, R, R]`` (e.g. the reference
    segmenter's labels for generated images)."""
    k = WORLD.num_classes
    resolution = images.shape[1]
    cell = resolution * zoom
    pad, label_w, legend_h = 2, 96, 40
    width = label_w + 2 * samples * (cell + pad) + 8
    height = k * (cell + pad) + legend_h + 4
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    plain, masked = to_uint8(images), overlay(images, part_maps)
    for c in range(k):
        y = c * (cell + pad)
        draw.text((4, y + cell // 2 - 12), WORLD.class_names[c], fill=(0, 0, 0))
        draw.text((4, y + cell // 2 + 2), WORLD.family_names[WORLD.class_family[c]],
                  fill=(110, 110, 110))
        for j in range(samples):
            for col, arr in ((j, plain), (samples + j, masked)):
                tile = Image.fromarray(arr[c * samples + j])
                if zoom > 1:
                    tile = tile.resize((cell, cell), Image.NEAREST)
                x = label_w + col * (cell + pad) + (8 if col >= samples else 0)
                sheet.paste(tile, (x, y))
    x, y = 4, k * (cell + pad) + 6
    for p in range(1, WORLD.num_parts):
        name = WORLD.part_names[p]
        colour = tuple(int(v) for v in np.round(PART_COLOURS[p] * 255))
        draw.rectangle((x, y, x + 10, y + 10), fill=colour)
        draw.text((x + 14, y), name, fill=(0, 0, 0))
        x += 20 + 7 * len(name)
        if x > width - 90:
            x, y = 4, y + 16
    return sheet


def write_sheet(path: str, samples: int = 6, seed: int = 0, resolution: int = 64,
                zoom: int = 1) -> str:
    """Write :func:`make_sheet` to ``path`` as PNG (atomically); returns the path."""
    sheet = make_sheet(samples=samples, seed=seed, resolution=resolution, zoom=zoom)
    with atomic_write(path) as fh:
        sheet.save(fh, format="PNG", optimize=True)
    return path
