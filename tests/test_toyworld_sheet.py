"""The toy world's PNG contact sheet and the command that writes it."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxaware.errors import JaxawareError
from jaxaware.toyworld import WORLD, make_sheet, render, write_sheet
from jaxaware.toyworld.sheet import PART_COLOURS, overlay

ROOT = Path(__file__).resolve().parent.parent


def test_overlay_tints_parts_and_dims_background():
    images, maps = render([0, 4], seed=0)
    out = overlay(images, maps).astype(float) / 255
    rgb = (images + 1) / 2
    bg = maps == 0
    np.testing.assert_allclose(out[bg], 0.35 * rgb[bg], atol=1 / 255)
    # a part's pixels move towards that part's colour
    for p in np.unique(maps[maps > 0]):
        m = maps == p
        assert (np.abs(out[m] - PART_COLOURS[p]).mean() < np.abs(rgb[m] - PART_COLOURS[p]).mean())


def test_part_colours_are_distinct():
    d = np.abs(PART_COLOURS[:, None] - PART_COLOURS[None]).sum(-1)
    assert (d + 10 * np.eye(len(PART_COLOURS))).min() > 0.2
    assert len(PART_COLOURS) == WORLD.num_parts


def test_sheet_layout():
    sheet = make_sheet(samples=2, resolution=32, zoom=2)
    assert sheet.height >= 16 * 64 and sheet.width >= 4 * 64
    arr = np.asarray(sheet)
    # row of the first class: its first tile is the rendered cat
    cat = np.asarray(Image.fromarray(((render([0], seed=0)[0][0] + 1) * 127.5).round()
                                     .astype(np.uint8)).resize((64, 64), Image.NEAREST))
    found = any(np.array_equal(arr[0:64, x:x + 64], cat) for x in range(0, arr.shape[1] - 63))
    assert found
    with pytest.raises(JaxawareError, match="resolution 16 is not supported"):
        make_sheet(resolution=16)
    with pytest.raises(JaxawareError, match=r"^samples must be a non-negative integer, got -1$"):
        make_sheet(samples=-1)


def test_write_sheet_and_command(tmp_path):
    out = write_sheet(str(tmp_path / "a" / "s.png"), samples=1, resolution=32)
    with Image.open(out) as im:
        assert im.format == "PNG"
    target = tmp_path / "cmd.png"
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "toyworld_sheet.py"),
                           "--out", str(target), "--samples", "1", "--resolution", "32"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    with Image.open(target) as im:
        assert im.size[1] > 16 * 32
    bad = subprocess.run([sys.executable, str(ROOT / "experiments" / "toyworld_sheet.py"),
                          "--out", str(target), "--resolution", "48"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: resolution 48 is not supported; use 32 or 64"
