"""What every built-in dataset builder gets: seeded randomness, shared raw material, an
image writer and helpers that write rows in MMEB's layout.

A builder is a function ``build(ctx) -> Built`` registered with :func:`builtin_dataset`
together with its metadata record and the sources it needs.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

from pipeline.data.builtin import sources as src
from pipeline.data.builtin.emoji import HELD_OUT_GROUPS, Emoji, GlyphCache, is_eval_emoji, parse_emoji_test
from pipeline.data.builtin.garments import garment_set
from pipeline.data.dataset_info import DatasetInfo
from pipeline.data.instructions import join_instruction

TRAIN_DIR, TEST_DIR = "Train", "Test"
GARMENT_COUNT = 2000  # drawn garments the garment datasets sample from (Fashion-MNIST's test set had 10,000)


class Side(NamedTuple):
    """One side of a row as MMEB stores it: text (with placeholder) and image path ('' = none)."""

    text: str
    image: str


def make_side(instruction: str = "", text: str = "", image: str | None = None) -> Side:
    return Side(join_instruction(instruction, text, image is not None), image or "")


def train_row(query: Side, positive: Side, negative: Side | None = None) -> dict[str, str]:
    neg = negative or Side("", "")
    return {"qry": query.text, "qry_image_path": query.image, "pos_text": positive.text,
            "pos_image_path": positive.image, "neg_text": neg.text, "neg_image_path": neg.image}


def eval_row(query: Side, candidates: Sequence[Side]) -> dict[str, Any]:
    if len(set(candidates)) != len(candidates):
        raise AssertionError(f"duplicate candidates for query {query.text!r}: the gold would be ambiguous")
    return {"qry_text": query.text, "qry_img_path": query.image,
            "tgt_text": [c.text for c in candidates], "tgt_img_path": [c.image for c in candidates]}


@dataclass
class Built:
    train: list[dict[str, str]] = field(default_factory=list)
    eval: list[dict[str, Any]] = field(default_factory=list)


class Resources:
    """Raw material shared by all builders of one build, loaded on first use."""

    def __init__(self, sources: dict[str, src.Source], seed: int, side: int) -> None:
        self.sources, self.seed, self.side = sources, seed, side

    @cached_property
    def glyphs(self) -> GlyphCache:
        return GlyphCache(self.sources["emoji_font"].files[0], side=self.side)

    @cached_property
    def emoji(self) -> list[Emoji]:
        return self.glyphs.usable(parse_emoji_test(self.sources["emoji_names"].files[0]))

    def emoji_split(self, held_out: bool = False) -> tuple[list[Emoji], list[Emoji]]:
        """(train, eval) emoji of the in-domain groups; with `held_out`, ([], all of the
        held-out groups)."""
        if held_out:
            return [], [e for e in self.emoji if e.group in HELD_OUT_GROUPS]
        pool = [e for e in self.emoji if e.group not in HELD_OUT_GROUPS]
        test = [e for e in pool if is_eval_emoji(e, self.seed)]
        return [e for e in pool if not is_eval_emoji(e, self.seed)], test

    @cached_property
    def garments(self) -> tuple[np.ndarray, np.ndarray]:
        return garment_set(GARMENT_COUNT, self.seed)

    @cached_property
    def digits(self) -> tuple[np.ndarray, np.ndarray]:
        return src.load_digits(self.sources["sklearn_digits"].files[0])

    @cached_property
    def digit_split(self) -> tuple[list[int], list[int]]:
        """(train, eval) indices of the digits: a seeded quarter is held out."""
        order = list(range(len(self.digits[0])))
        random.Random(zlib.crc32(f"{self.seed}:digits".encode())).shuffle(order)
        cut = len(order) // 4
        return order[cut:], order[:cut]

    @cached_property
    def photos(self) -> list[tuple[str, str, np.ndarray]]:
        photos = src.load_photos()
        if not photos:
            raise RuntimeError("no scikit-image sample image loaded; reinstall scikit-image")
        return photos

    @cached_property
    def lfw(self) -> tuple[np.ndarray, np.ndarray]:
        return src.load_lfw()

    def font(self, face: str = "DejaVuSans-Bold.ttf") -> str:
        for path in self.sources["dejavu"].files:
            if path.endswith("/" + face):
                return path
        return self.sources["dejavu"].files[0]


@dataclass
class BuildContext:
    out: Path
    name: str
    seed: int
    n_train: int
    n_eval: int
    side: int
    resources: Resources
    info: DatasetInfo | None = None
    _counters: dict[str, int] = field(default_factory=dict)

    @property
    def n_candidates(self) -> int:
        """The candidates per eval row this dataset's record declares."""
        if self.info is None or self.info.n_candidates is None:
            raise ValueError(f"{self.name}: its record declares no fixed number of candidates")
        return self.info.n_candidates

    def rng(self, purpose: str) -> random.Random:
        """A generator for one purpose of one dataset: builds do not shift when another
        dataset or purpose draws more numbers."""
        return random.Random(zlib.crc32(f"{self.seed}:{self.name}:{purpose}".encode()))

    def save(self, image: Image.Image, split: str, stem: str | None = None) -> str:
        """Write a PNG under images/<dataset>/<Train|Test>/ and return its relative path."""
        if split not in (TRAIN_DIR, TEST_DIR):
            raise ValueError(f"split must be {TRAIN_DIR!r} or {TEST_DIR!r}")
        if stem is None:
            count = self._counters.get(split, 0)
            self._counters[split] = count + 1
            stem = f"{count:06d}"
        rel = f"images/{self.name}/{split}/{stem}.png"
        path = self.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        image.convert("RGB").save(path, format="PNG", compress_level=1)
        return rel


class Memo:
    """Saves each distinct picture once (keyed by what it shows) and hands back its path."""

    def __init__(self, ctx: BuildContext, split: str) -> None:
        self.ctx, self.split = ctx, split
        self._paths: dict[Hashable, str] = {}

    def path(self, key: Hashable, draw: Callable[[], Image.Image]) -> str:
        if key not in self._paths:
            self._paths[key] = self.ctx.save(draw(), self.split)
        return self._paths[key]


def pick(pool: Sequence[Any], k: int, rng: random.Random, exclude: Callable[[Any], bool] = lambda _: False,
         first: Sequence[Any] = ()) -> list[Any]:
    """Up to `k` distinct items: `first` ones (in order), then a seeded sample of `pool`;
    items for which `exclude` is true are never chosen."""
    chosen: list[Any] = []
    seen: set = set()
    for item in first:
        if len(chosen) < k and item not in seen and not exclude(item):
            chosen.append(item)
            seen.add(item)
    rest = [x for x in dict.fromkeys(pool) if x not in seen and not exclude(x)]
    chosen += rng.sample(rest, min(k - len(chosen), len(rest)))
    return chosen


# -- registry -------------------------------------------------------------------------
@dataclass(frozen=True)
class BuiltinSpec:
    info: DatasetInfo
    sources: tuple[str, ...]
    build: Callable[[BuildContext], Built]


_SPECS: dict[str, BuiltinSpec] = {}


def builtin_dataset(info: DatasetInfo, sources: tuple[str, ...] = ()) -> Callable:
    """Register a builder with its metadata and the sources it needs."""
    unknown = set(sources) - set(src.DATA_SOURCES)
    if unknown:
        raise ValueError(f"{info.name}: unknown sources {sorted(unknown)}")

    def register(build: Callable[[BuildContext], Built]) -> Callable[[BuildContext], Built]:
        if info.name in _SPECS:
            raise ValueError(f"built-in dataset {info.name!r} registered twice")
        _SPECS[info.name] = BuiltinSpec(info, sources, build)
        return build

    return register


def registered() -> dict[str, BuiltinSpec]:
    return dict(_SPECS)


def make_info(name: str, task: str, query: str, target: str, in_domain: bool, n_candidates: int | None,
              instruction: str, description: str, source: str, licence: str, target_instruction: str = "",
              notes: str = "", role: str = "benchmark") -> DatasetInfo:
    """A built-in dataset's record; its sizes are filled in by the build (see the manifest)."""
    return DatasetInfo(
        name=name, benchmark="builtin", meta_task=task, query_modality=query, target_modality=target,  # type: ignore[arg-type]
        in_domain=in_domain, n_train=None if in_domain else 0, n_eval=None, n_candidates=n_candidates,
        instruction=instruction, target_instruction=target_instruction, description=description,
        source=source, licence=licence, notes=notes, role=role,  # type: ignore[arg-type]
    )
