"""How each of the 16 classes is drawn, in object-local coordinates (u right, v down).

Classes of one family share a layout: critters are side-view animals facing right with the
head at the upper right; vehicles stand on wheels along the bottom; plants grow up from a
stem at the bottom centre; buildings stand on the bottom edge. Within a family the classes
differ in proportions and details (pointed vs long vs round ears, a row vs a grid of
windows, ...). ``c.jit(k, lo, hi)`` draws per-image proportions from the class-specific
shape stream, so two images of a class are never identical in shape.

Each painter labels only the parts its palette in :mod:`.metadata` lists; the tests check
that the rendered parts and the metadata agree.
"""

from __future__ import annotations

from typing import Callable

from jaxaware.toyworld.geometry import Canvas

PAINTERS: dict[str, Callable[[Canvas], None]] = {}


def _painter(fn: Callable[[Canvas], None]) -> Callable[[Canvas], None]:
    PAINTERS[fn.__name__] = fn
    return fn


# ---------------------------------------------------------- critters: body head ears tail

@_painter
def cat(c: Canvas) -> None:
    """Orange cat: slim body on four legs, pointed ears, a long tail curling up."""
    tip = c.jit(0, -0.55, -0.25)
    c.paint("tail", c.capsule(-0.5, 0.15, -0.85, tip, 0.075))
    ear = c.jit(1, -0.66, -0.52)
    c.paint("ears", c.polygon((0.24, -0.25), (0.42, -0.3), (0.26, ear)))
    c.paint("ears", c.polygon((0.50, -0.3), (0.68, -0.25), (0.64, ear)))
    bl = c.jit(2, 0.44, 0.54)
    body = c.ellipse(-0.08, 0.22, bl, 0.26)
    for x in (-0.46, -0.30, 0.10, 0.26):
        body |= c.rect(x, 0.25, x + 0.11, 0.75)
    c.paint("body", body)
    c.paint("head", c.circle(0.46, -0.08, c.jit(3, 0.25, 0.3)))


@_painter
def bunny(c: Canvas) -> None:
    """Pale bunny: round body, very long upright ears, a white puff tail."""
    body = c.ellipse(-0.12, 0.38, c.jit(0, 0.38, 0.46), 0.36)
    body |= c.ellipse(0.12, 0.72, 0.24, 0.09)
    c.paint("body", body)
    c.paint("tail", c.circle(-0.55, 0.32, c.jit(1, 0.12, 0.16)))
    top = c.jit(2, -0.95, -0.75)
    lean = c.jit(3, -0.1, 0.1)
    c.paint("ears", c.capsule(0.36, -0.15, 0.26 + lean, top, 0.085)
            | c.capsule(0.52, -0.15, 0.62 + lean, top + 0.05, 0.085))
    c.paint("head", c.circle(0.44, -0.02, c.jit(4, 0.24, 0.28)))


@_painter
def mouse(c: Canvas) -> None:
    """Grey mouse: low long body, pointed snout, big round pink ears, a thin long tail."""
    curl = c.jit(0, -0.35, 0.05)
    c.paint("tail", c.capsule(-0.45, 0.5, -0.92, 0.35, 0.055)
            | c.capsule(-0.92, 0.35, -0.8, curl, 0.055))
    c.paint("body", c.ellipse(-0.12, 0.45, c.jit(1, 0.42, 0.5), 0.26))
    er = c.jit(2, 0.16, 0.2)
    c.paint("ears", c.circle(0.28, 0.05, er))
    head = c.ellipse(0.4, 0.34, 0.24, 0.2)
    head |= c.polygon((0.4, 0.16), (0.4, 0.52), (c.jit(3, 0.82, 0.9), 0.42))
    c.paint("head", head)


@_painter
def bear(c: Canvas) -> None:
    """Brown bear: big heavy body on thick legs, round head with snout, small round ears."""
    er = c.jit(0, 0.1, 0.13)
    c.paint("ears", c.circle(0.32, -0.42, er) | c.circle(0.64, -0.44, er))
    body = c.ellipse(-0.12, 0.2, c.jit(1, 0.55, 0.63), c.jit(2, 0.36, 0.42))
    body |= c.rect(-0.55, 0.3, -0.3, 0.82) | c.rect(0.08, 0.3, 0.33, 0.82)
    c.paint("body", body)
    c.paint("head", c.circle(0.48, -0.14, 0.29) | c.ellipse(0.74, -0.04, 0.17, 0.12))


# ---------------------------------------------------------- vehicles: chassis wheels windows

@_painter
def car(c: Canvas) -> None:
    """Red car: low body with a trapezoid cabin, two side windows, two big wheels."""
    roof = c.jit(0, -0.5, -0.38)
    ch = c.rect(-0.82, -0.05, 0.82, 0.38)
    ch |= c.polygon((-0.5, -0.04), (-0.3, roof), (0.3, roof), (0.55, -0.04))
    c.paint("chassis", ch)
    c.paint("windows", c.rect(-0.32, roof + 0.07, -0.04, -0.1)
            | c.rect(0.04, roof + 0.07, 0.34, -0.1))
    r = c.jit(1, 0.19, 0.23)
    c.paint("wheels", c.circle(-0.48, 0.4, r) | c.circle(0.48, 0.4, r))


@_painter
def bus(c: Canvas) -> None:
    """Yellow bus: a long tall box, a row of dark windows, two small wheels."""
    top = c.jit(0, -0.6, -0.45)
    c.paint("chassis", c.rect(-0.94, top, 0.94, 0.42))
    c.paint("windows", c.grid(-0.82, top + 0.1, 0.86, top + 0.38, 0.42, 1.0, 0.72, 1.0))
    r = c.jit(1, 0.15, 0.18)
    c.paint("wheels", c.circle(-0.58, 0.44, r) | c.circle(0.58, 0.44, r))


@_painter
def truck(c: Canvas) -> None:
    """Blue truck: tall cargo box behind a short cab with one window, three wheels."""
    top = c.jit(0, -0.7, -0.5)
    ch = c.rect(-0.92, top, 0.3, 0.34) | c.rect(0.36, -0.28, 0.9, 0.34)
    ch |= c.rect(0.2, 0.1, 0.5, 0.34)
    c.paint("chassis", ch)
    c.paint("windows", c.rect(0.5, -0.2, 0.82, 0.04))
    r = c.jit(1, 0.15, 0.18)
    c.paint("wheels", c.circle(-0.66, 0.42, r) | c.circle(-0.3, 0.42, r)
            | c.circle(0.62, 0.42, r))


@_painter
def boat(c: Canvas) -> None:
    """Navy boat: a hull tapering down, a cabin and funnel on deck, round portholes."""
    deck = c.jit(0, -0.02, 0.1)
    ch = c.polygon((-0.95, deck), (0.95, deck), (0.68, 0.52), (-0.72, 0.52))
    ch |= c.rect(-0.42, -0.32, 0.3, deck) | c.rect(-0.2, c.jit(1, -0.7, -0.5), -0.04, -0.3)
    c.paint("chassis", ch)
    w = c.rect(-0.32, -0.24, 0.2, -0.08)
    for x in (-0.55, -0.18, 0.19, 0.56):
        w |= c.circle(x, 0.27, 0.085)
    c.paint("windows", w)


# ---------------------------------------------------------- plants: stem leaves blossom

@_painter
def appletree(c: Canvas) -> None:
    """Apple tree: thick brown trunk, a cloud-like round crown, red apples."""
    c.paint("stem", c.rect(-0.12, 0.0, 0.12, 0.9))
    cr = c.jit(0, 0.46, 0.54)
    c.paint("leaves", c.circle(0.0, -0.36, cr) | c.circle(-0.38, -0.1, 0.34)
            | c.circle(0.38, -0.1, 0.34))
    dy = c.jit(1, -0.06, 0.06)
    apples = None
    for x, y in ((-0.26, -0.45), (0.22, -0.55), (0.05, -0.16), (-0.45, -0.02), (0.44, -0.06)):
        m = c.circle(x, y + dy, 0.095)
        apples = m if apples is None else apples | m
    c.paint("blossom", apples)


@_painter
def pine(c: Canvas) -> None:
    """Pine: short trunk under three stacked dark-green triangles, no blossom."""
    c.paint("stem", c.rect(-0.09, 0.5, 0.09, 0.92))
    w = c.jit(0, 0.5, 0.64)
    top = c.jit(1, -0.95, -0.8)
    c.paint("leaves", c.polygon((-w, 0.6), (w, 0.6), (0.0, -0.05))
            | c.polygon((-0.82 * w, 0.22), (0.82 * w, 0.22), (0.0, -0.45))
            | c.polygon((-0.64 * w, -0.18), (0.64 * w, -0.18), (0.0, top)))


@_painter
def sunflower(c: Canvas) -> None:
    """Sunflower: thin green stem with two leaves, a big yellow flower head with petals."""
    c.paint("stem", c.rect(-0.05, -0.25, 0.05, 0.92))
    c.paint("leaves", c.capsule(0.0, 0.45, 0.36, c.jit(0, 0.12, 0.28), 0.085)
            | c.capsule(0.0, 0.6, -0.36, c.jit(1, 0.3, 0.45), 0.085))
    cy = c.jit(2, -0.5, -0.4)
    head = c.circle(0.0, cy, 0.26)
    for dx, dy in ((0.34, 0.0), (0.24, 0.24), (0.0, 0.34), (-0.24, 0.24), (-0.34, 0.0),
                   (-0.24, -0.24), (0.0, -0.34), (0.24, -0.24)):
        head |= c.circle(dx, cy + dy, 0.11)
    c.paint("blossom", head)


@_painter
def cactus(c: Canvas) -> None:
    """Cactus: a fat green column with two bent arms and a pink flower on top, no leaves."""
    top = c.jit(0, -0.6, -0.45)
    stem = c.capsule(0.0, top, 0.0, 0.9, 0.19)
    la = c.jit(1, -0.35, -0.15)
    stem |= c.capsule(-0.46, la, -0.46, 0.2, 0.11) | c.capsule(-0.46, 0.2, 0.0, 0.2, 0.11)
    ra = c.jit(2, -0.5, -0.3)
    stem |= c.capsule(0.44, ra, 0.44, 0.0, 0.11) | c.capsule(0.44, 0.0, 0.0, 0.0, 0.11)
    c.paint("stem", stem)
    c.paint("blossom", c.circle(0.0, top - 0.16, 0.14))


# ---------------------------------------------------------- buildings: walls roof door windows

@_painter
def house(c: Canvas) -> None:
    """House: beige walls, a red triangular roof with chimney, a door, two windows."""
    eave = c.jit(0, -0.16, -0.04)
    c.paint("walls", c.rect(-0.56, eave, 0.56, 0.88))
    ridge = c.jit(1, -0.85, -0.7)
    c.paint("roof", c.polygon((-0.78, eave + 0.04), (0.78, eave + 0.04), (0.0, ridge))
            | c.rect(0.28, -0.66, 0.44, -0.25))
    c.paint("door", c.rect(-0.14, 0.42, 0.14, 0.88))
    c.paint("windows", c.rect(-0.44, 0.1, -0.2, 0.32) | c.rect(0.2, 0.1, 0.44, 0.32))


@_painter
def skyscraper(c: Canvas) -> None:
    """Skyscraper: a tall narrow grey-blue tower with a grid of lit windows, flat top."""
    w = c.jit(0, 0.32, 0.42)
    c.paint("walls", c.rect(-w, -0.92, w, 0.92) | c.rect(-0.04, -1.0, 0.04, -0.9))
    c.paint("windows", c.grid(-w + 0.07, -0.82, w - 0.05, 0.55, (2 * w - 0.12) / 3, 0.2,
                              0.6, 0.55))
    c.paint("door", c.rect(-0.1, 0.64, 0.1, 0.92))


@_painter
def barn(c: Canvas) -> None:
    """Barn: wide red walls, a grey gambrel roof, a big white door and a hay-loft door."""
    c.paint("walls", c.rect(-0.72, -0.05, 0.72, 0.88))
    ridge = c.jit(0, -0.78, -0.62)
    c.paint("roof", c.polygon((-0.84, 0.02), (-0.62, -0.42), (0.0, ridge), (0.62, -0.42),
                              (0.84, 0.02)))
    dw = c.jit(1, 0.22, 0.3)
    c.paint("door", c.rect(-dw, 0.28, dw, 0.88) | c.rect(-0.12, -0.36, 0.12, -0.12))


@_painter
def castle(c: Canvas) -> None:
    """Castle: stone walls with battlements between two towers with blue cone roofs,
    an arched door and narrow window slits."""
    tw = c.jit(0, 0.26, 0.32)
    walls = c.rect(-0.56, -0.15, 0.56, 0.88)
    walls |= c.grid(-0.56, -0.32, 0.56, -0.14, 0.224, 1.0, 0.5, 1.0)
    walls |= c.rect(-0.56 - tw, -0.42, -0.56, 0.88) | c.rect(0.56, -0.42, 0.56 + tw, 0.88)
    c.paint("walls", walls)
    tip = c.jit(1, -0.95, -0.82)
    c.paint("roof", c.polygon((-0.62 - tw, -0.4), (-0.5, -0.4), (-0.56 - tw / 2, tip))
            | c.polygon((0.5, -0.4), (0.62 + tw, -0.4), (0.56 + tw / 2, tip)))
    c.paint("door", c.rect(-0.17, 0.48, 0.17, 0.88) | c.circle(0.0, 0.48, 0.17))
    c.paint("windows", c.rect(-0.6 - tw / 2, -0.25, -0.52 - tw / 2, 0.05)
            | c.rect(0.52 + tw / 2, -0.25, 0.6 + tw / 2, 0.05)
            | c.rect(-0.33, 0.05, -0.25, 0.3) | c.rect(0.25, 0.05, 0.33, 0.3))
