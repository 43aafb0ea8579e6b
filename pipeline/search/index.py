"""In-memory candidate matrices and exact top-k by cosine similarity.

Candidates are kept as one C-contiguous float32 matrix of unit rows per (run, pool), so a
query costs one matrix-vector product and an `argpartition`: about 2 ms for 100k 256-d
candidates (bench/bench_topk.py), with no SQL per request.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), float32, C-contiguous."""
    m = np.ascontiguousarray(matrix, dtype=np.float32)
    if m.ndim != 2:
        raise ValueError(f"expected an (N, D) matrix, got shape {m.shape}")
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return np.ascontiguousarray(m / np.where(norms > 0, norms, 1.0), dtype=np.float32)


def top_k(matrix: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(row indices, scores) of the k rows most similar to `query`, best first.

    `matrix` holds unit rows, so the dot product is the cosine. Equal scores keep row order.
    """
    if k <= 0 or len(matrix) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    q = np.asarray(query, dtype=np.float32).reshape(-1)
    if q.shape[0] != matrix.shape[1]:
        raise ValueError(f"query has {q.shape[0]} dimensions, the candidates {matrix.shape[1]}")
    scores = matrix @ q  # (N,)
    k = min(k, len(scores))
    part = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    order = part[np.lexsort((part, -scores[part]))]  # by score, then by row for ties
    return order, scores[order]


def rank_of(matrix: np.ndarray, query: np.ndarray, row: int) -> int:
    """1-based rank of one row for a query (how many rows score strictly higher, plus one)."""
    scores = matrix @ np.asarray(query, dtype=np.float32).reshape(-1)
    return int(np.sum(scores > scores[row])) + 1


@dataclass
class CandidateIndex:
    """Item ids and their unit embeddings, row i belonging to item_ids[i]."""

    item_ids: list[str]
    matrix: np.ndarray  # (N, D) float32, unit rows
    row_of: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.item_ids) != len(self.matrix):
            raise ValueError(f"{len(self.item_ids)} ids for {len(self.matrix)} rows")
        self.matrix = unit_rows(self.matrix) if len(self.matrix) else np.zeros((0, 0), np.float32)
        self.row_of = {item: i for i, item in enumerate(self.item_ids)}

    @property
    def nbytes(self) -> int:
        return int(self.matrix.nbytes) + 100 * len(self.item_ids)  # ids and the lookup, roughly

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1]) if self.matrix.ndim == 2 and len(self.matrix) else 0

    def search(self, query: np.ndarray, k: int) -> list[tuple[str, float]]:
        rows, scores = top_k(self.matrix, query, k)
        return [(self.item_ids[r], float(s)) for r, s in zip(rows, scores, strict=True)]

    def rank(self, query: np.ndarray, item_id: str) -> int | None:
        row = self.row_of.get(item_id)
        return None if row is None else rank_of(self.matrix, query, row)

    def subset(self, item_ids: Sequence[str]) -> CandidateIndex:
        rows = [self.row_of[i] for i in item_ids if i in self.row_of]
        return CandidateIndex([self.item_ids[r] for r in rows], self.matrix[rows])


class BoundedCache:
    """A thread-safe LRU bounded by total size; each key is built once even when asked
    for by many threads at the same time (the others wait for the first)."""

    def __init__(self, max_bytes: int, size_of: Callable[[Any], int] = lambda v: getattr(v, "nbytes", 1)):
        self.max_bytes = max_bytes
        self.size_of = size_of
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._building: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key][0]
            gate = self._building.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                if key in self._items:  # built by another thread while we waited
                    self._items.move_to_end(key)
                    return self._items[key][0]
            try:
                value = build()
            finally:
                with self._lock:
                    self._building.pop(key, None)
            self._put(key, value)
            return value

    def peek(self, key: Hashable) -> Any:
        """The cached value, or None (never builds)."""
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            self._items.move_to_end(key)
            return found[0]

    def _put(self, key: Hashable, value: Any) -> None:
        size = int(self.size_of(value))
        with self._lock:
            self._items[key] = (value, size)
            total = sum(s for _, s in self._items.values())
            while total > self.max_bytes and len(self._items) > 1:
                _, (_, dropped) = self._items.popitem(last=False)
                total -= dropped

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(s for _, s in self._items.values())

    def __len__(self) -> int:
        return len(self._items)
