"""The statistics' reads and writes: per-query ranks and sized scores in, the `intervals` table out.

Storage computes no statistics (it imports nothing of pipeline); `pipeline.stats.landing` calls
these with a StoreWriter (when a run lands, `vlmembed stats`) or a StoreReader (`vlmembed compare`,
the dashboard).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import pyarrow as pa

from storage.reader import StoreReader
from storage.schema import INTERVAL_COLUMNS
from storage.writer import StoreWriter

_RANKS = """
SELECT k.run_id, k.dataset, d.meta_task, d.in_domain, k.row_idx, k.gold_rank
FROM ranks k JOIN runs r USING (run_id) JOIN datasets d ON d.dataset = k.dataset
WHERE r.status = 'complete' AND (? IS NULL OR k.run_id IN (SELECT unnest(?)))
ORDER BY k.run_id, k.dataset, k.row_idx
"""

# Precision@1 of runs without per-query ranks (the paper's), with the eval size n behind each:
# Table 5's #Eval (datasets.n_eval) where known, else the run's own query count.
_SIZED_SCORES = """
SELECT s.run_id, s.dataset, d.meta_task, d.in_domain, s.value, coalesce(d.n_eval, s.n_queries) AS n
FROM scores s JOIN runs r USING (run_id) JOIN datasets d ON d.dataset = s.dataset
WHERE r.status = 'complete' AND s.metric = 'precision@1'
  AND s.run_id NOT IN (SELECT DISTINCT run_id FROM ranks)
  AND (? IS NULL OR s.run_id IN (SELECT unnest(?)))
ORDER BY s.run_id, s.dataset
"""


def frame_of(store: StoreReader | StoreWriter, sql: str, params: Sequence) -> pd.DataFrame:
    """A query's rows from a reader or from a writer's working copy (statistics run on both)."""
    if isinstance(store, StoreReader):
        return store._frame(sql, params)
    assert store.con is not None, "writer is closed"
    return store.con.execute(sql, list(params)).df()


def _ids(run_ids: Sequence[str] | None) -> list:
    return [None, None] if run_ids is None else [list(run_ids), list(run_ids)]


def ranks_frame(store: StoreReader | StoreWriter, run_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Per-query gold ranks (run_id, dataset, meta_task, in_domain, row_idx, gold_rank) of complete runs."""
    return frame_of(store, _RANKS, _ids(run_ids))


def sized_scores(store: StoreReader | StoreWriter, run_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Precision@1 with its eval size n (run_id, dataset, meta_task, in_domain, value, n) of runs without ranks."""
    return frame_of(store, _SIZED_SCORES, _ids(run_ids))


def replace_intervals(writer: StoreWriter, run_ids: Sequence[str], rows: pd.DataFrame) -> int:
    """Replace the intervals of `run_ids` with `rows` (INTERVAL_COLUMNS) in one transaction; returns the count."""
    missing = set(INTERVAL_COLUMNS) - set(rows.columns)
    if missing:
        raise ValueError(f"interval rows lack columns {sorted(missing)}")
    table = pa.Table.from_pandas(rows[list(INTERVAL_COLUMNS)], preserve_index=False)
    with writer.transaction() as con:
        con.execute("DELETE FROM intervals WHERE run_id IN (SELECT unnest(?))", [list(run_ids)])
        con.register("new_intervals", table)
        try:
            con.execute(f"INSERT INTO intervals ({', '.join(INTERVAL_COLUMNS)}) "
                        f"SELECT {', '.join(INTERVAL_COLUMNS)} FROM new_intervals")
        finally:
            con.unregister("new_intervals")
    return len(rows)


def read_intervals(reader: StoreReader, run_ids: Sequence[str] | None = None,
                   metric: str | None = None) -> pd.DataFrame:
    """Rows of the documented view `v_intervals`, optionally for some runs and one metric."""
    return reader._frame("SELECT * FROM v_intervals WHERE (? IS NULL OR run_id IN (SELECT unnest(?))) "
                        "AND (? IS NULL OR metric = ?) ORDER BY source, run_id, scope, meta_task, dataset, split",
                        [*_ids(run_ids), metric, metric])


def runs_without_intervals(store: StoreReader | StoreWriter) -> list[str]:
    """Complete runs that have scores but no stored interval (e.g. landed before schema version 3)."""
    frame = frame_of(store, "SELECT DISTINCT s.run_id FROM scores s JOIN runs r USING (run_id) "
                          "WHERE r.status = 'complete' AND s.run_id NOT IN (SELECT run_id FROM intervals) "
                          "ORDER BY s.run_id", [])
    return frame["run_id"].tolist()
