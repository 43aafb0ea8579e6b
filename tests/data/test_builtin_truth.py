"""The built-in benchmark's ground truth is exact: questions, answers, descriptions and edits
are checked against the scene data they were drawn from (the drawing is swapped for the data)."""

import random
import re
from types import SimpleNamespace

import numpy as np
import pytest

from pipeline.data.builtin import vqa
from pipeline.data.builtin.garments import GARMENT_CLASSES
from pipeline.data.builtin.retrieval import edit_scene
from pipeline.data.builtin.scenes import POSITIONS, Obj, Scene, random_scene, variant

COUNT = {w: i for i, w in enumerate(vqa.COUNTS)}


def test_description_is_row_major_with_articles():
    scene = Scene((Obj("star", "orange", "small", 8), Obj("circle", "red", "large", 0)))
    assert scene.describe() == "a large red circle at the top left and a small orange star at the bottom right"
    assert Obj("circle", "orange", "small", 4).phrase(with_size=False) == "an orange circle"


def test_variants_always_describe_something_else():
    rng = random.Random(0)
    for _ in range(300):
        s = random_scene(rng, 1, 4)
        assert variant(s, rng).describe() != s.describe()


def _find(scene: Scene, color: str, shape: str) -> list[Obj]:
    return [o for o in scene.objects if (o.color, o.shape) == (color, shape)]


def test_scene_edits_do_what_their_text_says():
    rng = random.Random(1)
    for _ in range(400):
        ref = random_scene(rng, 1, 4)
        text, target = edit_scene(ref, rng)
        n_ref, n_tgt = len(ref.objects), len(target.objects)
        if m := re.fullmatch(r"make the (\w+) (\w+) (small|large)", text):
            (o,) = _find(target, m[1], m[2])
            assert o.size == m[3] and n_ref == n_tgt
        elif m := re.fullmatch(r"make the (\w+) (\w+) (\w+)", text):
            (old,) = _find(ref, m[1], m[2])
            assert any(o.cell == old.cell and o.color == m[3] and o.shape == m[2] for o in target.objects)
        elif m := re.fullmatch(r"turn the (\w+) (\w+) into a (\w+)", text):
            (old,) = _find(ref, m[1], m[2])
            assert any(o.cell == old.cell and o.shape == m[3] for o in target.objects)
        elif m := re.fullmatch(r"move the (\w+) (\w+) to the (.+)", text):
            (o,) = _find(target, m[1], m[2])
            assert o.position == m[3] and n_ref == n_tgt
        elif m := re.fullmatch(r"remove the (\w+) (\w+)", text):
            assert n_tgt == n_ref - 1 and not _find(target, m[1], m[2])
        else:
            assert text.startswith("add ") and n_tgt == n_ref + 1
            new = (set(target.objects) - set(ref.objects)).pop()
            assert text == f"add {new.phrase()} " + ("in the center" if new.position == "center" else
                                                     f"on the {new.position}" if new.position in ("left", "right")
                                                     else f"at the {new.position}")
        assert target.key() != ref.key()


@pytest.fixture
def scene_as_image(monkeypatch):
    """Questions come back with the scene itself in place of its picture."""
    monkeypatch.setattr(vqa, "render_scene", lambda scene, side=64: scene)


def test_shape_answers_match_the_scene(scene_as_image):
    rng = random.Random(2)
    for _ in range(500):
        qa = vqa.shapes_question(rng, 64)
        objs, q = qa.image.objects, qa.question
        if m := re.fullmatch(r"What color is the (\w+)\?", q):
            assert [o.color for o in objs if o.shape == m[1]] == [qa.answer]
        elif m := re.fullmatch(r"What shape is the (\w+) object\?", q):
            assert [o.shape for o in objs if o.color == m[1]] == [qa.answer]
        elif m := re.fullmatch(r"How many (\w+) shapes are there\?", q):
            assert sum(o.color == m[1] for o in objs) == COUNT[qa.answer]
        elif m := re.fullmatch(r"How many (\w+) are there\?", q):
            assert sum(vqa._plural(o.shape) == m[1] for o in objs) == COUNT[qa.answer]
        elif m := re.fullmatch(r"Where is the (\w+) (\w+)\?", q):
            assert [o.position for o in _find(qa.image, m[1], m[2])] == [qa.answer]
        else:
            m = re.fullmatch(r"Is the (\w+) (\w+) small or large\?", q)
            assert [o.size for o in _find(qa.image, m[1], m[2])] == [qa.answer]


def test_relation_answers_match_the_scene(scene_as_image):
    rng = random.Random(3)
    for _ in range(500):
        qa = vqa.relation_question(rng, 64)
        objs, q = qa.image.objects, qa.question
        if m := re.fullmatch(r"What color is the shape to the left of the (\w+) (\w+)\?", q):
            (b,) = _find(qa.image, m[1], m[2])
            assert [o.color for o in objs if o.row == b.row and o.col < b.col] == [qa.answer]
        elif m := re.fullmatch(r"What shape is above the (\w+) (\w+)\?", q):
            (b,) = _find(qa.image, m[1], m[2])
            assert [o.shape for o in objs if o.col == b.col and o.row < b.row] == [qa.answer]
        elif m := re.fullmatch(r"Is the (\w+) (\w+) to the left of the (\w+) (\w+)\?", q):
            (a,), (b,) = _find(qa.image, m[1], m[2]), _find(qa.image, m[3], m[4])
            assert qa.answer == ("yes" if a.col < b.col else "no")
        elif m := re.fullmatch(r"Are the (\w+) (\w+) and the (\w+) (\w+) in the same row\?", q):
            (a,), (b,) = _find(qa.image, m[1], m[2]), _find(qa.image, m[3], m[4])
            assert qa.answer == ("yes" if a.row == b.row else "no")
        else:
            m = re.fullmatch(r"Are there more (\w+) shapes than (\w+) shapes\?", q)
            more = sum(o.color == m[1] for o in objs) > sum(o.color == m[2] for o in objs)
            assert qa.answer == ("yes" if more else "no")


def test_chart_answers_match_the_bars(monkeypatch):
    monkeypatch.setattr(vqa, "bar_chart", lambda values, colors, side=64: dict(zip(colors, values, strict=True)))
    rng = random.Random(4)
    for _ in range(500):
        qa = vqa.chart_question(rng, 64)
        bars, q = qa.image, qa.question
        if m := re.fullmatch(r"Which color is the (tallest|shortest) bar\?", q):
            best = (max if m[1] == "tallest" else min)(bars.values())
            assert [c for c, v in bars.items() if v == best] == [qa.answer]
        elif m := re.fullmatch(r"What is the value of the (\w+) bar\?", q):
            assert str(bars[m[1]]) == qa.answer
        elif q == "How many bars are there?":
            assert COUNT[qa.answer] == len(bars)
        elif m := re.fullmatch(r"Is the (\w+) bar taller than the (\w+) bar\?", q):
            assert qa.answer == ("yes" if bars[m[1]] > bars[m[2]] else "no")
        else:
            m = re.fullmatch(r"How many bars are taller than the (\w+) bar\?", q)
            assert COUNT[qa.answer] == sum(v > bars[m[1]] for v in bars.values())


def test_sign_and_fashion_grid_answers_match_what_was_drawn(monkeypatch):
    monkeypatch.setattr(vqa, "sign", lambda word, color, *a, **k: (word.lower(), color))
    rng = random.Random(5)
    for _ in range(200):
        qa = vqa.sign_question(rng, 64, "font.ttf")
        assert qa.answer == (qa.image[0] if qa.question == "What is written on the sign?" else qa.image[1])

    # Fake garments whose pixels carry their class, so the grid comes back as class indices.
    images = np.repeat(np.arange(10, dtype=np.uint8)[:, None, None], 28, 1).repeat(28, 2)
    ctx = SimpleNamespace(side=64, resources=SimpleNamespace(garments=(images, np.arange(10))))
    monkeypatch.setattr(vqa, "garment", lambda pixels, side: int(pixels[0, 0]))
    monkeypatch.setattr(vqa, "grid2x2", lambda tiles, side, background=None: [GARMENT_CLASSES[t] for t in tiles])
    for _ in range(300):
        qa = vqa.garment_grid_question(ctx, rng)
        names, q = qa.image, qa.question
        if m := re.fullmatch(r"What is in the (.+)\?", q):
            assert names[vqa.CORNERS.index(m[1])] == qa.answer
        elif m := re.fullmatch(r"Is there a (.+) in the picture\?", q):
            assert qa.answer == ("yes" if m[1] in names else "no")
        else:
            m = re.fullmatch(r"How many (.+) are there\?", q)
            cls = next(c for c in GARMENT_CLASSES if vqa.GARMENT_PLURAL.get(c, c + "s") == m[1])
            assert COUNT[qa.answer] == names.count(cls)


def test_positions_cover_the_grid():
    assert len(POSITIONS) == 9 and Obj("circle", "red", "small", 4).position == "center"


def test_emoji_grid_answers_match_the_tiles(monkeypatch):
    from pipeline.data.builtin.emoji import GROUP_PHRASES, GROUP_PLURALS, Emoji

    pool = [Emoji(chr(0x1F600 + i), f"thing {i}", group, "sub") for i, group in enumerate(list(GROUP_PHRASES) * 2)]
    by_chars = {e.chars: e for e in pool}
    ctx = SimpleNamespace(side=64, resources=SimpleNamespace(glyphs=SimpleNamespace(glyph=lambda c: c)))
    monkeypatch.setattr(vqa, "emoji_card", lambda glyph, rng, side: by_chars[glyph])
    monkeypatch.setattr(vqa, "grid2x2", lambda tiles, side, background=None: tiles)
    rng = random.Random(6)
    for _ in range(300):
        qa = vqa.emoji_grid_question(ctx, pool, rng)
        tiles, q = qa.image, qa.question
        if m := re.fullmatch(r"What is in the (.+)\?", q):
            assert tiles[vqa.CORNERS.index(m[1])].name == qa.answer
        elif m := re.fullmatch(r"Where is the (.+)\?", q):
            assert [vqa.CORNERS[i] for i, t in enumerate(tiles) if t.name == m[1]] == [qa.answer]
        elif m := re.fullmatch(r"What kind of thing is in the (.+)\?", q):
            assert GROUP_PHRASES[tiles[vqa.CORNERS.index(m[1])].group] == qa.answer
        else:
            m = re.fullmatch(r"How many (.+) are there\?", q)
            group = next(g for g, p in GROUP_PLURALS.items() if p == m[1])
            assert COUNT[qa.answer] == sum(t.group == group for t in tiles)
