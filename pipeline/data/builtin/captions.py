"""Image-caption pairs for pretraining the demo's tiny VLMs (train split only).

Drawn only from material the benchmark trains on: in-domain (training-side) emoji with
their names, rendered scenes with their descriptions, single shapes, training-side
handwritten digits, and scikit-image photos with their docstring captions. Nothing from an
eval split or an out-of-domain source (the drawn garments, the Symbols and Flags emoji groups,
DejaVu digits) is captioned, so OOD evaluation stays out of distribution.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from PIL import Image

from pipeline.data.builtin.classification import DIGIT_WORDS
from pipeline.data.builtin.context import (
    TRAIN_DIR,
    BuildContext,
    Built,
    builtin_dataset,
    make_info,
    make_side,
    train_row,
)
from pipeline.data.builtin.draw import emoji_card, handwritten_digit, photo_crop, random_square
from pipeline.data.builtin.scenes import Scene, random_object, random_scene, render_scene

CAPTION_INSTRUCTION = "Describe the given image."
Maker = Callable[[random.Random], tuple[Image.Image, str]]


def _makers(ctx: BuildContext) -> list[tuple[float, Maker]]:
    """(weight, maker) for every kind of caption."""
    r = ctx.resources

    def scene(rng: random.Random) -> tuple[Image.Image, str]:
        s = random_scene(rng, 1, 4)
        return render_scene(s, ctx.side), s.describe()

    def shape(rng: random.Random) -> tuple[Image.Image, str]:
        o = random_object(rng, rng.randrange(9))
        return render_scene(Scene((o,), rng.randrange(3)), ctx.side), o.phrase()

    train, _ = r.emoji_split()
    images, targets = r.digits
    train_idx, _ = r.digit_split

    def emoji(rng: random.Random) -> tuple[Image.Image, str]:
        e = rng.choice(train)
        return emoji_card(r.glyphs.glyph(e.chars), rng, ctx.side), f"the {e.name} emoji, of the kind {e.label}"

    def digit(rng: random.Random) -> tuple[Image.Image, str]:
        k = rng.choice(train_idx)
        return handwritten_digit(images[k], rng, ctx.side), f"a handwritten digit {DIGIT_WORDS[int(targets[k])]}"

    def photo(rng: random.Random) -> tuple[Image.Image, str]:
        _, caption, array = rng.choice(r.photos)
        box = random_square(rng, array.shape[0], array.shape[1], 0.7, 1.0)
        return photo_crop(array, box, ctx.side), caption

    return [(0.3, scene), (0.1, shape), (0.35, emoji), (0.1, digit), (0.15, photo)]


@builtin_dataset(make_info(
    "Captions", "retrieval", "I", "T", True, None, CAPTION_INSTRUCTION,
    "Image-caption pairs for pretraining tiny VLMs: training-side emoji with names, scenes with descriptions, single "
    "shapes, training-side handwritten digits, scikit-image photos with docstring captions. Train split only.",
    "all in-domain sources", "as each source", role="pretraining"),
    sources=("emoji_font", "emoji_names", "sklearn_digits", "skimage_photos"))
def captions(ctx: BuildContext) -> Built:
    makers = _makers(ctx)
    weights = [w for w, _ in makers]
    rng, built = ctx.rng("captions"), Built()
    for _ in range(ctx.n_train):
        _, make = rng.choices(makers, weights=weights)[0]
        image, caption = make(rng)
        built.train.append(train_row(make_side(CAPTION_INSTRUCTION, image=ctx.save(image, TRAIN_DIR)), make_side(text=caption)))
    return built
