from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.eval.metrics import all_metrics, gold_rank, gold_ranks


def test_gold_rank_counts_better_candidates_and_ties_go_against_the_gold():
    assert gold_rank(np.array([0.9, 0.1, 0.2])) == 1
    assert gold_rank(np.array([0.5, 0.9, 0.7, 0.1])) == 3
    # Collapsed embeddings (every candidate the same vector) must not win: MMEB's argmax would say 1.
    assert gold_rank(np.array([0.5, 0.5, 0.5])) == 3
    assert gold_rank(np.array([0.5, 0.5 + 1e-8, 0.1])) == 2  # within float noise is a tie


def test_a_duplicate_of_the_gold_item_is_no_rival():
    assert gold_rank(np.array([0.5, 0.5, 0.2]), is_gold=np.array([True, True, False])) == 1
    assert gold_rank(np.array([0.5, 0.5, 0.5]), is_gold=np.array([True, True, False])) == 2


def test_collapsed_embeddings_score_zero_not_perfect():
    from pipeline.eval.evaluator import EvalTask, Evaluator

    same = np.ones(4, dtype=np.float32) / 2  # every item embedded to one vector
    task = EvalTask("t", "retrieval", True, [("q", ["gold", "a", "b"]), ("q2", ["gold2", "gold2", "c"])])
    result = Evaluator._score(task, {i: same for i in ("q", "q2", "gold", "gold2", "a", "b", "c")})
    assert result.gold_ranks.tolist() == [3, 2]
    assert result.metrics["precision@1"] == 0.0


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
