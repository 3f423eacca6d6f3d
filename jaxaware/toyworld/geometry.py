"""Vectorised 2-D shape primitives that paint part labels onto a batch of canvases.

A :class:`Canvas` holds, for ``n`` images of one class, the object-local coordinates
``u`` (right) and ``v`` (down) of every pixel centre (``[n, H, W]`` float32; the object is
drawn inside roughly ``[-1, 1]^2``) and a label map. Primitives return boolean masks and
``paint`` writes a part label where a mask is set, later paints covering earlier ones
(painter's algorithm). Shape parameters may be Python floats or per-image ``[n, 1, 1]``
arrays from :meth:`Canvas.jit`, which is how classes get per-image shape variation.

There is no anti-aliasing: each pixel gets exactly one part, so the part map is the exact
ground truth of which part coloured which pixel.
"""

from __future__ import annotations

import numpy as np

from jaxaware.toyworld.metadata import PART_NAMES

_PART_ID = {name: np.uint8(i) for i, name in enumerate(PART_NAMES)}


class Canvas:
    """Object-local pixel coordinates, per-image shape jitter and the label map being painted.

    Args:
        u, v: float32 ``[n, H, W]`` object-local coordinates of the pixel centres.
        jitter: float32 ``[n, K]`` uniforms in [0, 1) driving per-image shape variation.
    """

    def __init__(self, u: np.ndarray, v: np.ndarray, jitter: np.ndarray):
        self.u = u
        self.v = v
        self.jitter = jitter
        self.labels = np.zeros(u.shape, dtype=np.uint8)

    def jit(self, k: int, lo: float, hi: float) -> np.ndarray:
        """Per-image value in ``[lo, hi)`` from jitter column ``k``, shaped ``[n, 1, 1]``."""
        return (lo + (hi - lo) * self.jitter[:, k]).astype(np.float32)[:, None, None]

    def paint(self, part: str, mask: np.ndarray) -> None:
        """Label the pixels of ``mask`` with ``part`` (covering what was painted before)."""
        np.putmask(self.labels, mask, _PART_ID[part])

    # -- primitives: each returns a bool mask of shape [n, H, W] -------------------------

    def ellipse(self, cx, cy, rx, ry) -> np.ndarray:
        """Axis-aligned ellipse with centre ``(cx, cy)`` and radii ``rx``, ``ry``."""
        a = (self.u - cx) / rx
        b = (self.v - cy) / ry
        return a * a + b * b <= 1.0

    def circle(self, cx, cy, r) -> np.ndarray:
        """Disc with centre ``(cx, cy)`` and radius ``r``."""
        a = self.u - cx
        b = self.v - cy
        return a * a + b * b <= r * r

    def rect(self, x0, y0, x1, y1) -> np.ndarray:
        """Axis-aligned rectangle ``[x0, x1] x [y0, y1]``."""
        m = self.u >= x0
        m &= self.u <= x1
        m &= self.v >= y0
        m &= self.v <= y1
        return m

    def polygon(self, *points) -> np.ndarray:
        """Convex polygon through ``points`` ``(x, y)`` in either winding order."""
        pts = list(points)
        area = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1]))
        sign = np.where(np.asarray(area) > 0, np.float32(1.0), np.float32(-1.0))
        m = None
        for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1]):
            edge = (x1 - x0) * (self.v - y0) - (y1 - y0) * (self.u - x0)
            inside = edge * sign >= 0.0
            m = inside if m is None else (m & inside)
        return m

    def capsule(self, ax, ay, bx, by, r) -> np.ndarray:
        """Thick line segment from ``(ax, ay)`` to ``(bx, by)`` with round caps, radius ``r``."""
        dx = bx - ax
        dy = by - ay
        pu = self.u - ax
        pv = self.v - ay
        t = np.clip((pu * dx + pv * dy) / (dx * dx + dy * dy), 0.0, 1.0)
        eu = pu - t * dx
        ev = pv - t * dy
        return eu * eu + ev * ev <= r * r

    def grid(self, x0, y0, x1, y1, px, py, fill_x, fill_y) -> np.ndarray:
        """Grid of rectangles in ``[x0, x1] x [y0, y1]`` with periods ``px``, ``py``; each
        cell's first ``fill_x``/``fill_y`` fraction is inside (rows of windows, battlements)."""
        m = self.rect(x0, y0, x1, y1)
        m &= np.mod(self.u - x0, px) < fill_x * px
        m &= np.mod(self.v - y0, py) < fill_y * py
        return m
