"""Reads for the Per query view: two runs' outcomes on each query of a dataset, and what to show of it."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from storage.intervals import frame_of
from storage.reader import StoreReader
from storage.writer import StoreWriter

_OUTCOMES = """
SELECT r.row_idx, r.query_item, r.candidates[1] AS gold_item, len(r.candidates) AS n_candidates,
       a.gold_rank AS rank_a, b.gold_rank AS rank_b, a.top_item AS top_a, a.top_score AS top_score_a,
       b.top_item AS top_b, b.top_score AS top_score_b, a.gold_score AS gold_score_a, b.gold_score AS gold_score_b
FROM dataset_rows r
JOIN ranks a ON a.dataset = r.dataset AND a.row_idx = r.row_idx AND a.run_id = ?
JOIN ranks b ON b.dataset = r.dataset AND b.row_idx = r.row_idx AND b.run_id = ?
WHERE r.dataset = ?
ORDER BY r.row_idx
"""


def ranked_runs(reader: StoreReader) -> pd.DataFrame:
    """Complete runs with per-query ranks: run_id, source, model, label, stage, train_task, datasets (list),
    has_embeddings."""
    return reader._frame(
        "SELECT r.run_id, r.source, r.model, r.label, r.stage, r.train_task, k.datasets, "
        "EXISTS (SELECT 1 FROM embedding_files e WHERE e.run_id = r.run_id) AS has_embeddings "
        "FROM runs r JOIN (SELECT run_id, list(DISTINCT dataset ORDER BY dataset) AS datasets FROM ranks "
        "GROUP BY run_id) k USING (run_id) WHERE r.status = 'complete' ORDER BY r.source, r.model, r.run_id")


def query_outcomes(reader: StoreReader, run_a: str, run_b: str, dataset: str) -> pd.DataFrame:
    """Each query of `dataset` both runs ranked (and the store keeps the row of): both gold ranks and top-1s."""
    return reader._frame(_OUTCOMES, [run_a, run_b, dataset])


def candidates(reader: StoreReader, dataset: str, row_idx: Sequence[int]) -> pd.DataFrame:
    """(row_idx, candidates) of some eval rows: item ids, gold first."""
    return reader._frame("SELECT row_idx, candidates FROM dataset_rows WHERE dataset = ? "
                        "AND row_idx IN (SELECT unnest(?)) ORDER BY row_idx", [dataset, [int(i) for i in row_idx]])


def eval_rows(store: StoreReader | StoreWriter) -> pd.DataFrame:
    """Every stored eval row with what a text-only model may read: dataset, row_idx, the query's
    instruction and text, its candidates (item ids, gold first) and their texts (NULL for an image)."""
    return frame_of(store, """
        SELECT r.dataset, r.row_idx, q.instruction AS query_instruction, q.text AS query_text, r.candidates,
               list_transform(r.candidates, lambda c: t.texts[c]) AS candidate_texts
        FROM dataset_rows r JOIN items q ON q.item_id = r.query_item
        CROSS JOIN (SELECT map(list(item_id), list(coalesce(text, ''))) AS texts FROM items) t
        ORDER BY r.dataset, r.row_idx""", [])
