"""What the reader hands out: items that become `Example`s only when asked.

An :class:`ItemRef` holds an instruction, text and the *path* of its image; the image is
decoded when :meth:`ItemRef.example` is called, so a 20,000-pair training set costs no
image memory until a batch needs it. Every item has a stable id (a content hash of its
instruction, text and image path), so an evaluator encodes each unique item once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from pipeline.data.example import Example
from pipeline.data.imagestore import ImageStore
from storage.vocabulary import modality_of


def item_id(instruction: str, text: str | None, image_key: str | None) -> str:
    """A stable 16-hex-digit id of an item's content (same content -> same id, on any machine)."""
    payload = "\x1f".join((instruction, text or "", image_key or ""))
    return hashlib.sha1(payload.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class ItemRef:
    """One side of a pair or one candidate, with its image not yet loaded."""

    instruction: str
    text: str | None
    image: str | None  # the image's key (relative path) in `store`
    store: ImageStore | None = field(default=None, compare=False, repr=False)

    @property
    def id(self) -> str:
        return item_id(self.instruction, self.text, self.image)

    @property
    def modality(self) -> str:
        return modality_of(self.image is not None, bool(self.text))

    def example(self) -> Example:
        """The `Example` with its image decoded; raises ImageError for a bad image file."""
        image = None
        if self.image is not None:
            if self.store is None:
                raise ValueError(f"item {self.id} names image {self.image!r} but has no image store")
            image = self.store.open(self.image)
        return Example(instruction=self.instruction, text=self.text, image=image)


@dataclass(frozen=True)
class TrainPair:
    """A training row: the query, its positive target and any hard negatives."""

    dataset: str
    index: int  # the row's position in its source file
    query: ItemRef
    positive: ItemRef
    negatives: tuple[ItemRef, ...] = ()

    def items(self) -> tuple[ItemRef, ...]:
        return (self.query, self.positive, *self.negatives)

    def examples(self) -> tuple[Example, Example, list[Example]]:
        return self.query.example(), self.positive.example(), [n.example() for n in self.negatives]


@dataclass(frozen=True)
class EvalRow:
    """An evaluation row: the query and its candidates, the gold one first."""

    dataset: str
    index: int
    query: ItemRef
    candidates: tuple[ItemRef, ...]

    def __post_init__(self) -> None:
        if not self.candidates:
            raise ValueError(f"{self.dataset} row {self.index}: an eval row needs at least one candidate")

    @property
    def gold(self) -> ItemRef:
        return self.candidates[0]

    def items(self) -> tuple[ItemRef, ...]:
        return (self.query, *self.candidates)


def unique_items(rows: Iterable[TrainPair | EvalRow]) -> dict[str, ItemRef]:
    """Each distinct item once, by id, in first-seen order."""
    seen: dict[str, ItemRef] = {}
    for row in rows:
        for item in row.items():
            seen.setdefault(item.id, item)
    return seen
