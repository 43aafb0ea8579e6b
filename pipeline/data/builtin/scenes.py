"""Scenes the project draws itself: coloured shapes on a 3x3 grid, with exact ground truth.

A :class:`Scene` is data (which shape, colour, size, cell); its picture and its description
are functions of that data, so questions, captions and edits are always right. Drawing is
done at 4x and scaled down, which anti-aliases the same way on every machine.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace

from PIL import Image, ImageDraw

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40), "orange": (245, 140, 20), "yellow": (235, 205, 20), "green": (40, 160, 60),
    "blue": (40, 80, 220), "purple": (140, 60, 190), "pink": (240, 120, 180), "brown": (125, 80, 40),
    "black": (25, 25, 25), "gray": (135, 135, 135),
}
SHAPES = ("circle", "square", "triangle", "star", "diamond", "cross")
SIZES = ("small", "large")
POSITIONS = ("top left", "top", "top right", "left", "center", "right", "bottom left", "bottom", "bottom right")
_PHRASE = {"top left": "at the top left", "top": "at the top", "top right": "at the top right", "left": "on the left",
           "center": "in the center", "right": "on the right", "bottom left": "at the bottom left",
           "bottom": "at the bottom", "bottom right": "at the bottom right"}
BACKGROUNDS = ((250, 250, 250), (244, 238, 226), (232, 240, 246))
SCALE = 4  # draw at 4x, then downsample


@dataclass(frozen=True)
class Obj:
    shape: str
    color: str
    size: str
    cell: int  # 0..8, row-major over the 3x3 grid
    dx: int = 0  # small offsets (px at output size) so objects do not sit on a lattice
    dy: int = 0

    @property
    def position(self) -> str:
        return POSITIONS[self.cell]

    @property
    def row(self) -> int:
        return self.cell // 3

    @property
    def col(self) -> int:
        return self.cell % 3

    def phrase(self, with_size: bool = True) -> str:
        return with_article(" ".join([self.size, self.color, self.shape] if with_size else [self.color, self.shape]))

    def name(self) -> str:
        return f"the {self.color} {self.shape}"


@dataclass(frozen=True)
class Scene:
    objects: tuple[Obj, ...]
    background: int = 0

    def __post_init__(self) -> None:
        cells = [o.cell for o in self.objects]
        if len(set(cells)) != len(cells):
            raise ValueError("two objects in one cell")

    def describe(self) -> str:
        """'a large red circle at the top left and a small blue star in the center' (row-major)."""
        parts = [f"{o.phrase()} {_PHRASE[o.position]}" for o in sorted(self.objects, key=lambda o: o.cell)]
        if not parts:
            return "an empty picture"
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]

    def key(self) -> tuple:
        """What a picture shows (offsets and background aside): equal keys, same description."""
        return tuple(sorted((o.cell, o.shape, o.color, o.size) for o in self.objects))

    def free_cells(self) -> list[int]:
        used = {o.cell for o in self.objects}
        return [c for c in range(9) if c not in used]

    def with_object(self, index: int, **changes: object) -> Scene:
        objs = list(self.objects)
        objs[index] = replace(objs[index], **changes)
        return replace(self, objects=tuple(objs))


def with_article(words: str) -> str:
    return ("an " if words[:1] in "aeiou" else "a ") + words


def random_object(rng: random.Random, cell: int, shapes=SHAPES, colors=tuple(COLORS)) -> Obj:
    return Obj(rng.choice(shapes), rng.choice(colors), rng.choice(SIZES), cell, rng.randint(-2, 2), rng.randint(-2, 2))


def random_scene(rng: random.Random, n_min: int = 1, n_max: int = 4, unique_shapes: bool = False,
                 unique_colors: bool = False) -> Scene:
    n = rng.randint(n_min, n_max)
    cells = rng.sample(range(9), n)
    shapes = rng.sample(SHAPES, n) if unique_shapes else [rng.choice(SHAPES) for _ in range(n)]
    colors = rng.sample(tuple(COLORS), n) if unique_colors else [rng.choice(tuple(COLORS)) for _ in range(n)]
    objs = tuple(Obj(s, c, rng.choice(SIZES), cell, rng.randint(-2, 2), rng.randint(-2, 2))
                 for s, c, cell in zip(shapes, colors, cells, strict=True))
    return Scene(objs, rng.randrange(len(BACKGROUNDS)))


def render_scene(scene: Scene, side: int = 64) -> Image.Image:
    big = side * SCALE
    image = Image.new("RGB", (big, big), BACKGROUNDS[scene.background])
    draw = ImageDraw.Draw(image)
    cell = big / 3
    for o in scene.objects:
        cx = (o.col + 0.5) * cell + o.dx * SCALE
        cy = (o.row + 0.5) * cell + o.dy * SCALE
        radius = cell * (0.22 if o.size == "small" else 0.42)
        draw_shape(draw, o.shape, cx, cy, radius, COLORS[o.color])
    return image.reduce(SCALE)  # box-filter downsampling: anti-aliased and fast


def draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, fill: tuple[int, int, int]) -> None:
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif shape == "square":
        s = r * 0.85
        draw.rectangle((cx - s, cy - s, cx + s, cy + s), fill=fill)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx + r * 0.95, cy + r * 0.8), (cx - r * 0.95, cy + r * 0.8)], fill=fill)
    elif shape == "diamond":
        draw.polygon([(cx, cy - r), (cx + r * 0.75, cy), (cx, cy + r), (cx - r * 0.75, cy)], fill=fill)
    elif shape == "star":
        points = []
        for i in range(10):
            angle = -math.pi / 2 + i * math.pi / 5
            rad = r if i % 2 == 0 else r * 0.45
            points.append((cx + rad * math.cos(angle), cy + rad * math.sin(angle)))
        draw.polygon(points, fill=fill)
    elif shape == "cross":
        w = r * 0.35
        draw.rectangle((cx - r, cy - w, cx + r, cy + w), fill=fill)
        draw.rectangle((cx - w, cy - r, cx + w, cy + r), fill=fill)
    else:
        raise ValueError(f"unknown shape {shape!r}; use one of {SHAPES}")


def variant(scene: Scene, rng: random.Random) -> Scene:
    """The scene with one attribute of one object changed: a hard negative whose
    description differs from the original's."""
    i = rng.randrange(len(scene.objects))
    o = scene.objects[i]
    kind = rng.choice(("color", "shape", "size", "cell") if scene.free_cells() else ("color", "shape", "size"))
    if kind == "color":
        return scene.with_object(i, color=rng.choice([c for c in COLORS if c != o.color]))
    if kind == "shape":
        return scene.with_object(i, shape=rng.choice([s for s in SHAPES if s != o.shape]))
    if kind == "size":
        return scene.with_object(i, size="small" if o.size == "large" else "large")
    return scene.with_object(i, cell=rng.choice(scene.free_cells()))
