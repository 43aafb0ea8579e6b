"""Built-in text-to-text retrieval (meta-task 'text', DiffEmbed's setting; not in the paper).

SceneParaphrase: a scene description ('a large red circle at the top left and a small blue star
in the center', objects in reading order) -> the paraphrase of the same facts among 50, written
in another order (last object first) with other words for sizes and places ('In the middle there
is a little blue star; in the upper left corner, a big red circle.'). Hard negatives are
paraphrases of one-attribute variants of the scene (a colour, shape, size or place changed), so
word overlap alone does not find the gold: the model has to bind each attribute to its object,
where DiffEmbed expects bidirectional attention to help. Built from the scenes drawn in code
(scenes.py): no source package, no images, evaluation only (no training split).
"""

from __future__ import annotations

import random

from pipeline.data.builtin.context import (
    BuildContext,
    Built,
    builtin_dataset,
    eval_row,
    make_info,
    make_side,
    pick,
)
from pipeline.data.builtin.retrieval import _distinct_scenes  # the same draw as the scene retrieval sets
from pipeline.data.builtin.scenes import Scene, variant

TEXT = "text"
PARAPHRASE_QUERY = "Find a paraphrase of the given scene description:"
PARAPHRASE_TARGET = "Represent the given scene description:"
SCENE_SRC, SCENE_LIC = "written by vlmembed from the drawn scenes' facts", "Apache-2.0 (generated)"
HARD_NEGATIVES = 4  # one-attribute variants among the candidates

# Other words for the same facts: what makes the target a paraphrase rather than a copy.
SIZE_WORDS = {"small": "little", "large": "big"}
PLACE_WORDS = {"top left": "in the upper left corner", "top": "along the top edge", "top right": "in the upper right corner",
               "left": "on the left side", "center": "in the middle", "right": "on the right side",
               "bottom left": "in the lower left corner", "bottom": "along the bottom edge",
               "bottom right": "in the lower right corner"}


def paraphrase(scene: Scene) -> str:
    """The scene's facts in reverse reading order and other words (one clause per object)."""
    objects = sorted(scene.objects, key=lambda o: -o.cell)
    clauses = [f"{PLACE_WORDS[o.position]}, a {SIZE_WORDS[o.size]} {o.color} {o.shape}" for o in objects]
    first, rest = clauses[0], clauses[1:]
    place, thing = first.split(", ", 1)
    text = f"{place[0].upper()}{place[1:]} there is {thing}"
    return text + "".join(f"; {c}" for c in rest) + "."


def _hard_negatives(scene: Scene, rng: random.Random, k: int) -> list[Scene]:
    out: list[Scene] = []
    seen = {scene.key()}
    for _ in range(k * 20):
        if len(out) == k:
            break
        v = variant(scene, rng)
        if v.key() not in seen:
            seen.add(v.key())
            out.append(v)
    return out


@builtin_dataset(make_info(
    "SceneParaphrase", TEXT, "T", "T", False, 50, PARAPHRASE_QUERY,
    "A scene description -> its paraphrase (reverse order, other words for sizes and places) among 50, four of "
    "them paraphrases of one-attribute variants. Text only, evaluation only. Analogue: DiffEmbed's text "
    "retrieval (not an MMEB task).", SCENE_SRC, SCENE_LIC, PARAPHRASE_TARGET))
def scene_paraphrase(ctx: BuildContext) -> Built:
    built, k = Built(), ctx.n_candidates
    rng = ctx.rng("eval")
    taken: set = set()
    # Enough distinct scenes for full candidate lists even when a small build asks for few queries.
    pool = _distinct_scenes(ctx.rng("scenes"), max(ctx.n_eval, 2 * k), taken)
    for scene in pool[: ctx.n_eval]:
        hard = _hard_negatives(scene, rng, HARD_NEGATIVES)
        used = {s.key() for s in (scene, *hard)}
        others = pick(pool, k - 1 - len(hard), rng, exclude=lambda s, used=used: s.key() in used)
        texts = [paraphrase(s) for s in [scene, *hard, *others]]  # distinct keys: distinct texts
        built.eval.append(eval_row(make_side(PARAPHRASE_QUERY, scene.describe()),
                                   [make_side(PARAPHRASE_TARGET, t) for t in texts]))
    return built
