"""Garment silhouettes drawn by vlmembed: ten clothing classes as light shapes on black.

The built-in benchmark's out-of-domain garment datasets once read Fashion-MNIST from a Debian
package; these drawings replace it so that every machine builds the same benchmark from `pip`
alone. They keep Fashion-MNIST's ten class names and its look (a light 28x28 garment on black),
with seeded jitter in every proportion, brightness and texture, so no two are alike.
"""

from __future__ import annotations

import random

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

GARMENT_CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")
SIZE = 28  # Fashion-MNIST's side
_SCALE = 4  # drawn at 112 px, then reduced: smooth edges


def _j(rng: random.Random, value: float, spread: float = 0.08) -> float:
    return value * (1 + rng.uniform(-spread, spread))


class _Canvas:
    """A greyscale drawing in unit coordinates ([0, 1] across the picture): 1 draws, 0 cuts."""

    def __init__(self) -> None:
        self.side = SIZE * _SCALE
        self.image = Image.new("F", (self.side, self.side), 0.0)
        self._draw = ImageDraw.Draw(self.image)

    def _xy(self, points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        return [(x * self.side, y * self.side) for x, y in points]

    def polygon(self, points: list[tuple[float, float]], fill: int = 1) -> None:
        self._draw.polygon(self._xy(points), fill=float(fill))

    def ellipse(self, box: tuple[float, float, float, float], fill: int = 1) -> None:
        self._draw.ellipse([c * self.side for c in box], fill=float(fill))

    def line(self, points: list[tuple[float, float]], width: float, fill: int = 1) -> None:
        self._draw.line(self._xy(points), fill=float(fill), width=max(1, round(width * self.side)))


def _top(c: _Canvas, rng: random.Random, sleeve: float, length: float, collar: bool, opening: bool) -> None:
    """A top: a torso `length` long and two sleeves reaching `sleeve` of the way down the arm,
    hanging outward so the armpits show."""
    w, top, bottom = _j(rng, 0.2), _j(rng, 0.14), min(0.97, _j(rng, length))
    c.polygon([(0.5 - w, top), (0.5 + w, top), (0.5 + w, bottom), (0.5 - w, bottom)])
    drop, reach = _j(rng, 0.7) * sleeve, _j(rng, 0.2) * (0.7 if sleeve > 0.5 else 1.0)
    for side in (-1, 1):
        shoulder = 0.5 + side * w
        out = shoulder + side * (reach + 0.06 * (1 - sleeve))
        c.polygon([(shoulder, top), (out, top + drop * 0.9 + 0.04), (out - side * 0.1, top + drop + 0.06),
                   (shoulder, top + 0.14)])
    c.ellipse((0.43, top - 0.05, 0.57, top + 0.05), fill=0)  # neckline
    if collar:
        c.polygon([(0.43, top - 0.02), (0.5, top + 0.12), (0.57, top - 0.02)], fill=0)
    if opening:
        c.line([(0.5, top + 0.05), (0.5, bottom)], width=0.02, fill=0)


def _shoe(c: _Canvas, rng: random.Random, height: float, straps: bool) -> None:
    sole, toe, heel = _j(rng, 0.78), _j(rng, 0.92, 0.03), _j(rng, 0.08)
    top = sole - _j(rng, height)
    if straps:  # a thin sole and three straps over the foot
        c.polygon([(heel, sole - 0.05), (toe, sole - 0.05), (toe, sole), (heel, sole)])
        for x in (0.3, 0.5, 0.7):
            x = _j(rng, x, 0.05)
            c.line([(x - 0.06, sole - 0.05), (x + 0.04, top)], width=0.04)
        return
    c.polygon([(heel, sole), (toe, sole), (toe, sole - 0.08), (0.62, top + 0.1), (0.42, top),
               (heel + 0.06, top), (heel, sole - 0.1)])


def _trouser(c: _Canvas, rng: random.Random) -> None:
    w, gap, top, bottom = _j(rng, 0.2), _j(rng, 0.025), _j(rng, 0.08), _j(rng, 0.95, 0.03)
    c.polygon([(0.5 - w, top), (0.5 + w, top), (0.5 + w + 0.03, bottom), (0.5 + gap, bottom), (0.5, top + 0.25),
               (0.5 - gap, bottom), (0.5 - w - 0.03, bottom)])


def _dress(c: _Canvas, rng: random.Random) -> None:
    top, bottom, waist, hem = _j(rng, 0.1), _j(rng, 0.93, 0.03), _j(rng, 0.1), _j(rng, 0.3)
    c.polygon([(0.5 - 0.12, top), (0.5 + 0.12, top), (0.5 + waist, 0.42), (0.5 + hem, bottom),
               (0.5 - hem, bottom), (0.5 - waist, 0.42)])
    c.ellipse((0.44, top - 0.04, 0.56, top + 0.04), fill=0)


def _bag(c: _Canvas, rng: random.Random) -> None:
    top, w, bottom = _j(rng, 0.38), _j(rng, 0.36), _j(rng, 0.9, 0.03)
    c.polygon([(0.5 - w, top), (0.5 + w, top), (0.5 + w, bottom), (0.5 - w, bottom)])
    c.line([(0.5 - w * 0.6, top), (0.5, _j(rng, 0.12)), (0.5 + w * 0.6, top)], width=0.05)


_DRAWERS = {
    "t-shirt": lambda c, rng: _top(c, rng, sleeve=0.28, length=0.78, collar=False, opening=False),
    "trouser": _trouser,
    "pullover": lambda c, rng: _top(c, rng, sleeve=0.95, length=0.80, collar=False, opening=False),
    "dress": _dress,
    "coat": lambda c, rng: _top(c, rng, sleeve=1.0, length=0.97, collar=True, opening=True),
    "sandal": lambda c, rng: _shoe(c, rng, height=0.22, straps=True),
    "shirt": lambda c, rng: _top(c, rng, sleeve=0.95, length=0.84, collar=True, opening=True),
    "sneaker": lambda c, rng: _shoe(c, rng, height=0.3, straps=False),
    "bag": _bag,
    "ankle boot": lambda c, rng: _shoe(c, rng, height=0.55, straps=False),
}


def draw_garment(label: str, rng: random.Random) -> np.ndarray:
    """One (28, 28) uint8 garment, light on black, with seeded proportions, tone and texture."""
    if label not in _DRAWERS:
        raise ValueError(f"unknown garment class {label!r}; use one of {GARMENT_CLASSES}")
    canvas = _Canvas()
    _DRAWERS[label](canvas, rng)
    shape = np.asarray(canvas.image, dtype=np.float32)
    texture = np.random.default_rng(rng.getrandbits(32)).normal(1.0, 0.12, shape.shape).astype(np.float32)
    tone = rng.uniform(110, 250)
    pixels = np.clip(shape * texture * tone, 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, mode="L").filter(ImageFilter.GaussianBlur(1.2))
    image = image.rotate(rng.uniform(-6, 6), resample=Image.Resampling.BICUBIC)
    return np.asarray(image.resize((SIZE, SIZE), Image.Resampling.BOX))


def garment_set(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` garments (N, 28, 28) uint8 and their class indices (N,), balanced and shuffled."""
    rng = random.Random(f"garments:{seed}")
    labels = [i % len(GARMENT_CLASSES) for i in range(count)]
    rng.shuffle(labels)
    images = np.stack([draw_garment(GARMENT_CLASSES[k], rng) for k in labels])
    return images, np.asarray(labels, dtype=np.int64)
