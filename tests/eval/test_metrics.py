from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.eval.metrics import all_metrics, gold_rank, gold_ranks


def test_gold_rank_counts_strictly_better_candidates_and_ties_go_to_gold():
    assert gold_rank(np.array([0.9, 0.1, 0.2])) == 1
    assert gold_rank(np.array([0.5, 0.9, 0.7, 0.1])) == 3
    assert gold_rank(np.array([0.5, 0.5, 0.5])) == 1  # MMEB: argmax picks the first


def test_metrics_by_hand():
    ranks = gold_ranks([np.array([1.0, 0.0]), np.array([0.0, 1.0, 0.5]), np.array([0.1] + [0.9] * 6)])
    assert ranks.tolist() == [1, 3, 7]
    m = all_metrics(ranks)
    assert m["precision@1"] == pytest.approx(100 / 3)
    assert m["recall@5"] == pytest.approx(200 / 3)
    assert m["mrr"] == pytest.approx(100 * (1 + 1 / 3 + 1 / 7) / 3)
    assert m["ndcg@5"] == pytest.approx(100 * (1 + 1 / math.log2(4)) / 3)


def test_no_queries_is_an_error():
    with pytest.raises(ValueError, match="no queries"):
        all_metrics(np.array([], dtype=int))
