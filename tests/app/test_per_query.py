"""The Per query view on a store with real ranks and embeddings: the 2x2 table, the chosen cell, the
top candidates (which agree with the ranks table), the URL-restored view."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app import per_query_view as pq
from app.store import StoreCache
from app.tabs import per_query
from pipeline.stats.paired import mcnemar_exact
from storage.queries import query_outcomes


@pytest.fixture(scope="module")
def cache(embedded_store):
    return StoreCache(embedded_store.path)


def _outcomes(ranks_a, ranks_b) -> pd.DataFrame:
    n = len(ranks_a)
    return pd.DataFrame({"row_idx": range(n), "query_item": [f"q{i}" for i in range(n)],
                         "gold_item": [f"g{i}" for i in range(n)], "rank_a": ranks_a, "rank_b": ranks_b})


def test_contingency_counts_the_four_cells_and_tests_the_discordant_ones():
    out = _outcomes([1, 1, 1, 2, 2, 1], [2, 2, 1, 1, 3, 1])  # A only: 2, B only: 1, both: 2, neither: 1
    assert pq.outcome(out).tolist() == ["a_only", "a_only", "both_right", "b_only", "both_wrong", "both_right"]
    text = pq.contingency(out, "A", "B")
    assert "| **A** (A) right | 2 | 2 |" in text and "| A wrong | 1 | 1 |" in text
    assert f"p = {float(mcnemar_exact(2, 1)):.3g}" in text


def test_select_keeps_one_cell_and_filters_by_text():
    out = _outcomes([1, 1, 2], [2, 2, 1])
    items = pd.DataFrame({"item_id": ["q0", "q1", "q2", "g0", "g1", "g2"],
                          "text": ["a red square", "a blue one", "red", "red", "blue", "green"]})
    assert pq.select(out, items, "a_only")["row_idx"].tolist() == [0, 1]
    assert pq.select(out, items, "a_only", "BLUE")["row_idx"].tolist() == [1]  # query or gold text, any case
    assert pq.select(out, items, "all", "green")["row_idx"].tolist() == [2]


def test_top_candidates_agree_with_the_stored_ranks(cache, embedded_store):
    reader = cache.reader()
    a, b = embedded_store.finals
    outcomes = query_outcomes(reader, a, b, "Colours")
    assert len(outcomes) == 16
    tops = pq.top_candidates(reader, a, "Colours", outcomes)
    for row in outcomes.itertuples():
        top = tops[row.row_idx]
        assert len(top) == 3 and top[0][1] >= top[1][1] >= top[2][1]
        # the ranks table holds the evaluator's float32 score, the view's comes from the stored float16 vectors
        assert top[0][0] == row.top_a and top[0][1] == pytest.approx(row.top_score_a, abs=1e-3)
        if row.rank_a <= 3:  # the gold is among the top 3 exactly when its stored rank says so
            assert top[row.rank_a - 1][0] == row.gold_item
        else:
            assert row.gold_item not in [c for c, _ in top]


def test_view_shows_the_cell_with_thumbnails_gold_and_both_rankings(cache, embedded_store):
    reader = cache.reader()
    runs = per_query.runs_of(cache.snapshot(), reader)
    a, b = embedded_store.finals
    counts, html = per_query.view(reader, runs, a, b, "Colours", "all", "")
    assert "16 queries both runs ranked" in counts and "Showing 16 of 16" in counts
    assert html.count("<tr data-row=") == 16 and html.count("data:image/png;base64") >= 16
    assert html.count("<ol>") == 32  # each query: A's and B's top candidates
    outcomes = query_outcomes(reader, a, b, "Colours")
    n_a_only = int(((outcomes["rank_a"] == 1) & (outcomes["rank_b"] != 1)).sum())
    _, only = per_query.view(reader, runs, a, b, "Colours", "a_only", "")
    assert only.count("<tr data-row=") == n_a_only


def test_render_restores_the_url_state_and_falls_back_on_unknown_values(cache, embedded_store):
    class Ctx:
        store = cache

    a, b = embedded_store.finals
    out = per_query.render(Ctx, {"qa": b, "qb": a, "qdataset": "ColoursOOD", "qshow": "b_only", "qtext": ""})
    assert (out[0]["value"], out[1]["value"], out[2]["value"], out[3]) == (b, a, "ColoursOOD", "b_only")
    fallback = per_query.render(Ctx, {"qa": "nope", "qb": "", "qdataset": "x", "qshow": "?", "qtext": ""})
    assert fallback[0]["value"] in {a, b} and fallback[2]["value"] in {"Colours", "ColoursOOD"}
    assert fallback[3] == per_query.DEFAULT_SHOW and np.isin([c[1] for c in fallback[0]["choices"]],
                                                            embedded_store.runs).all()
