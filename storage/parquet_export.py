"""The store as Parquet files: a form DuckDB, pandas, Spark or Polars read from anywhere.

One file per table (`runs`, `models`, `datasets`, `scores` (the `v_scores` view, with model
and dataset facts joined), `ranks`, `items`, `dataset_rows`) and the embeddings as
`embeddings/dim=<d>/data.parquet`, whose `vec` is a fixed-size `FLOAT[d]` list (one file per
width, since a fixed-size column has one width). `--run` limits the per-run tables.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from storage.errors import StoreMissingError
from storage.migrations import check_readable

# table -> the SELECT that exports it; {runs} is replaced by the run filter
TABLES = {
    "runs": "SELECT * FROM runs WHERE {runs}",
    "models": "SELECT * FROM models",
    "datasets": "SELECT * FROM datasets",
    "scores": "SELECT * FROM v_scores WHERE {runs}",
    "ranks": "SELECT * FROM ranks WHERE {runs}",
    "items": "SELECT * FROM items",
    "dataset_rows": "SELECT * FROM dataset_rows",
}


def export_parquet(store: str | os.PathLike, out: str | os.PathLike,
                   run_ids: Sequence[str] | None = None) -> list[Path]:
    """Write the store (or the given runs' rows of it) under `out`; returns the files written."""
    store, out = Path(store), Path(out)
    if not store.is_file():
        raise StoreMissingError(store)
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(store), read_only=True)
    try:
        check_readable(con, str(store))
        filter_sql, params = ("run_id IN (SELECT unnest(?))", [list(run_ids)]) if run_ids else ("true", [])
        written = []
        for table, select in TABLES.items():
            path = out / f"{table}.parquet"
            uses_runs = "{runs}" in select
            con.execute(f"COPY ({select.format(runs=filter_sql)}) TO '{_quoted(path)}' (FORMAT parquet)",
                        params if uses_runs else [])
            written.append(path)
        dims = [r[0] for r in con.execute(f"SELECT DISTINCT dim FROM embeddings WHERE {filter_sql} ORDER BY dim",
                                          params).fetchall()]
        for dim in dims:
            path = out / "embeddings" / f"dim={int(dim)}" / "data.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            # through Arrow: its Parquet writer keeps the fixed-size list type in the file's schema
            table = con.sql(f"SELECT run_id, item_id, vec::FLOAT[{int(dim)}] AS vec FROM embeddings "
                            f"WHERE dim = {int(dim)} AND {filter_sql}", params=params or None).to_arrow_table()
            pq.write_table(table, path)
            written.append(path)
        return written
    finally:
        con.close()


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")
