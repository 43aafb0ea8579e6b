"""Ranking metrics over each query's own candidate list (gold candidate first, as in MMEB).

The gold's rank is 1 + the number of other items scored higher or tied with it. MMEB's
`argmax == 0` check gives every tie to the gold, which sits first in each candidate list: a
model whose embeddings collapse (every image the same vector) then scores 100% wherever the
candidates are images. Here a tie counts against the gold unless the tied candidate is the
gold item itself (a duplicate in the list). With real embeddings ties are rare and both
rules agree. Metrics are in percent.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

TIE_TOLERANCE = 1e-6  # cosines this close are a tie: batch padding alone moves them ~1e-7
# Recorded in every run's stored config (`config.eval.tie_rule`), so a score says how ties counted.
TIE_RULE = (f"a candidate other than the gold item scoring within {TIE_TOLERANCE:g} of the gold or above it "
            "ranks ahead of it (MMEB's argmax == 0 gives ties to the gold)")


def gold_rank(scores: np.ndarray, is_gold: np.ndarray | None = None) -> int:
    """1-based rank of candidate 0 among `scores` (C,); `is_gold` (C,) marks copies of the gold item."""
    others = scores[1:] if is_gold is None else scores[1:][~np.asarray(is_gold[1:], dtype=bool)]
    return int(1 + np.count_nonzero(others >= scores[0] - TIE_TOLERANCE))


def gold_ranks(score_rows: Sequence[np.ndarray]) -> np.ndarray:
    """Ranks for many rows; rows may have different candidate counts."""
    return np.array([gold_rank(np.asarray(s)) for s in score_rows], dtype=np.int64)


def precision_at_1(ranks: np.ndarray) -> float:
    return float(np.mean(ranks == 1) * 100.0)


def recall_at_k(ranks: np.ndarray, k: int) -> float:
    return float(np.mean(ranks <= k) * 100.0)


def mrr(ranks: np.ndarray) -> float:
    return float(np.mean(1.0 / ranks) * 100.0)


def ndcg_at_k(ranks: np.ndarray, k: int) -> float:
    """One relevant item per query, so the ideal DCG is 1."""
    gains = np.where(ranks <= k, 1.0 / np.log2(ranks + 1.0), 0.0)
    return float(np.mean(gains) * 100.0)


def all_metrics(ranks: np.ndarray) -> dict[str, float]:
    if len(ranks) == 0:
        raise ValueError("no queries to score")
    return {
        "precision@1": precision_at_1(ranks),
        "recall@5": recall_at_k(ranks, 5),
        "mrr": mrr(ranks),
        "ndcg@5": ndcg_at_k(ranks, 5),
    }


def per_query_metrics(ranks: np.ndarray) -> dict[str, np.ndarray]:
    """Each query's contribution to `all_metrics` (percent): their means are the metrics, which is
    what lets `pipeline.stats` resample queries instead of re-ranking."""
    ranks = np.asarray(ranks, dtype=np.float64)
    return {
        "precision@1": (ranks == 1) * 100.0,
        "recall@5": (ranks <= 5) * 100.0,
        "mrr": 100.0 / ranks,
        "ndcg@5": np.where(ranks <= 5, 100.0 / np.log2(ranks + 1.0), 0.0),
    }
