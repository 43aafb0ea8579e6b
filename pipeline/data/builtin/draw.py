"""Pictures other than shape scenes: emoji cards, digits, garments, charts, signs, photo
crops, grids, and the perturbations of near-duplicate retrieval. All seeded, all PIL."""

from __future__ import annotations

import random

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

from pipeline.data.builtin.scenes import BACKGROUNDS, COLORS

LIGHT_BACKGROUNDS = (*BACKGROUNDS, (255, 255, 255), (236, 246, 236), (248, 236, 240))


def emoji_card(glyph: Image.Image, rng: random.Random | None, side: int = 64) -> Image.Image:
    """A glyph on a light background; with `rng`, at a random scale, offset and background."""
    if rng is None:
        scale, background, jx, jy = 0.9, (255, 255, 255), 0, 0
    else:
        scale, background = rng.uniform(0.62, 0.95), rng.choice(LIGHT_BACKGROUNDS)
        jx, jy = rng.randint(-4, 4), rng.randint(-4, 4)
    card = Image.new("RGB", (side, side), background)
    paste_glyph(card, glyph, (side // 2 + jx, side // 2 + jy), int(side * scale))
    return card


def paste_glyph(canvas: Image.Image, glyph: Image.Image, center: tuple[int, int], box: int) -> None:
    g = glyph.copy()
    g.thumbnail((box, box), Image.Resampling.LANCZOS)
    canvas.paste(g, (center[0] - g.width // 2, center[1] - g.height // 2), g)


def grid2x2(tiles: list[Image.Image], side: int = 64, background=(255, 255, 255)) -> Image.Image:
    """Four tiles in reading order: top left, top right, bottom left, bottom right."""
    canvas = Image.new("RGB", (side, side), background)
    half = side // 2
    for i, tile in enumerate(tiles):
        t = tile.convert("RGB").resize((half - 2, half - 2), Image.Resampling.LANCZOS)
        canvas.paste(t, ((i % 2) * half + 1, (i // 2) * half + 1))
    return canvas


def handwritten_digit(values: np.ndarray, rng: random.Random | None, side: int = 64) -> Image.Image:
    """An 8x8 scikit-learn digit (0..16 ink) as dark ink on a light card, upscaled smoothly."""
    ink = (values / 16.0 * 255).clip(0, 255).astype(np.uint8)
    small = Image.fromarray(255 - ink, mode="L").resize((side - 12, side - 12), Image.Resampling.BICUBIC)
    card = Image.new("L", (side, side), 255)
    jx, jy = (rng.randint(-4, 4), rng.randint(-4, 4)) if rng else (0, 0)
    card.paste(small, (6 + jx, 6 + jy))
    return card.convert("RGB")


def printed_digit(digit: int, font_path: str, rng: random.Random, side: int = 64) -> Image.Image:
    """A digit set in a DejaVu face, in a random colour and size, slightly rotated."""
    size = rng.randint(30, 48)
    font = ImageFont.truetype(font_path, size)
    color = COLORS[rng.choice(("red", "blue", "green", "purple", "black", "brown", "orange"))]
    background = rng.choice(LIGHT_BACKGROUNDS)
    big = Image.new("RGB", (side * 2, side * 2), background)
    ImageDraw.Draw(big).text((side, side), str(digit), font=font, fill=color, anchor="mm")
    big = big.rotate(rng.uniform(-15, 15), resample=Image.Resampling.BICUBIC, fillcolor=background)
    return big.crop((side // 2, side // 2, side // 2 + side, side // 2 + side))


def garment(pixels: np.ndarray, side: int = 64) -> Image.Image:
    """A 28x28 garment (light on black, see garments.py), upscaled, RGB."""
    return Image.fromarray(pixels, mode="L").resize((side, side), Image.Resampling.BICUBIC).convert("RGB")


def grey_to_rgb(pixels: np.ndarray, side: int = 64) -> Image.Image:
    return Image.fromarray(pixels.astype(np.uint8), mode="L").resize((side, side), Image.Resampling.BICUBIC).convert("RGB")


def photo_crop(photo: np.ndarray, box: tuple[int, int, int, int], side: int = 64) -> Image.Image:
    """A square crop (x0, y0, size) of an RGB array, scaled to `side`."""
    x0, y0, w, h = box
    return Image.fromarray(photo[y0:y0 + h, x0:x0 + w]).resize((side, side), Image.Resampling.LANCZOS)


def random_square(rng: random.Random, height: int, width: int, min_frac: float, max_frac: float) -> tuple[int, int, int, int]:
    short = min(height, width)
    size = max(8, int(short * rng.uniform(min_frac, max_frac)))
    return rng.randint(0, width - size), rng.randint(0, height - size), size, size


def box_iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    return inter / float(aw * ah + bw * bh - inter)


def perturb(image: Image.Image, rng: random.Random) -> Image.Image:
    """A near-duplicate: shifted a few pixels, brightness and contrast nudged, lightly blurred
    or noised. The seeded `rng` makes the same copy on every machine."""
    side = image.width
    dx, dy = rng.randint(-3, 3), rng.randint(-3, 3)
    edge = image.getpixel((0, 0))
    shifted = Image.new("RGB", image.size, edge)
    shifted.paste(image, (dx, dy))
    out = ImageEnhance.Brightness(shifted).enhance(rng.uniform(0.85, 1.15))
    out = ImageEnhance.Contrast(out).enhance(rng.uniform(0.85, 1.15))
    if rng.random() < 0.5:
        out = out.filter(ImageFilter.GaussianBlur(radius=0.6))
    else:
        noise = np.random.default_rng(rng.getrandbits(32)).normal(0, 6, (side, side, 3))
        out = Image.fromarray((np.asarray(out, dtype=np.float32) + noise).clip(0, 255).astype(np.uint8))
    return out


def mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16)).mean())


def bar_chart(values: list[int], colors: list[str], side: int = 64, max_value: int = 8) -> Image.Image:
    """Bars on a grid with one line per unit, so values can be read off by counting."""
    big = side * 4
    image = Image.new("RGB", (big, big), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    left, bottom, top, right = 24, big - 16, 16, big - 12
    unit = (bottom - top) / max_value
    for v in range(max_value + 1):
        y = bottom - v * unit
        draw.line((left, y, right, y), fill=(215, 215, 215), width=2)
    draw.line((left, top, left, bottom), fill=(0, 0, 0), width=4)
    draw.line((left, bottom, right, bottom), fill=(0, 0, 0), width=4)
    slot = (right - left) / len(values)
    for i, (v, c) in enumerate(zip(values, colors, strict=True)):
        x0 = left + slot * i + slot * 0.18
        draw.rectangle((x0, bottom - v * unit, x0 + slot * 0.64, bottom - 2), fill=COLORS[c])
    return image.reduce(4)


def sign(word: str, sign_color: str, text_color: tuple[int, int, int], font_path: str, rng: random.Random,
         side: int = 64) -> Image.Image:
    """A coloured sign with a short word on it, on a plain background with a post."""
    big = side * 4
    image = Image.new("RGB", (big, big), rng.choice(LIGHT_BACKGROUNDS))
    draw = ImageDraw.Draw(image)
    w, h = int(big * rng.uniform(0.8, 0.92)), int(big * rng.uniform(0.36, 0.46))
    x0 = (big - w) // 2 + rng.randint(-8, 8)
    y0 = int(big * 0.14) + rng.randint(-8, 8)
    draw.rectangle((big // 2 - 8, y0 + h, big // 2 + 8, big), fill=(110, 110, 110))
    draw.rectangle((x0, y0, x0 + w, y0 + h), fill=COLORS[sign_color])
    size = 64
    font = ImageFont.truetype(font_path, size)
    while size > 20 and draw.textlength(word, font=font) > w * 0.88:
        size -= 4
        font = ImageFont.truetype(font_path, size)
    draw.text((x0 + w / 2, y0 + h / 2), word, font=font, fill=text_color, anchor="mm")
    return image.reduce(4)


def edit_garment(image: Image.Image, edit: str) -> Image.Image:
    """Apply a FashionIQ-style change to a garment picture (light garment on black)."""
    if edit.startswith("make it ") and edit[8:] in COLORS:
        grey = image.convert("L")
        return Image.merge("RGB", [grey.point(lambda v, c=c: v * c // 255) for c in COLORS[edit[8:]]])
    if edit == "make it darker":
        return ImageEnhance.Brightness(image).enhance(0.45)
    if edit == "turn it upside down":
        return image.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    if edit == "mirror it":
        return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if edit == "make it smaller":
        side = image.width
        small = image.resize((side * 3 // 5, side * 3 // 5), Image.Resampling.LANCZOS)
        canvas = Image.new("RGB", image.size, (0, 0, 0))
        canvas.paste(small, ((side - small.width) // 2, (side - small.height) // 2))
        return canvas
    raise ValueError(f"unknown garment edit {edit!r}")


GARMENT_EDITS = ("make it red", "make it blue", "make it green", "make it yellow", "make it purple", "make it darker",
                 "turn it upside down", "mirror it", "make it smaller")
