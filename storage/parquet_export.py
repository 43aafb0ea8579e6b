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
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from storage.errors import StoreMissingError
from storage.migrations import check_readable
from storage.vectors import CHUNK_ROWS, resolve, vectors_dir

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
        files = con.execute(f"SELECT run_id, file, origin, dim FROM embedding_files WHERE {filter_sql} "
                            "ORDER BY dim, run_id", params).fetchall()
        for dim in sorted({f[3] for f in files}):
            path = out / "embeddings" / f"dim={int(dim)}" / "data.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            # from the memory-mapped float16 files, a chunk at a time; Arrow's Parquet writer keeps the
            # fixed-size FLOAT[d] list type in the file's schema
            schema = pa.schema([("run_id", pa.string()), ("item_id", pa.string()),
                                ("vec", pa.list_(pa.float32(), int(dim)))])
            with pq.ParquetWriter(path, schema) as sink:
                for run_id, file, origin, _ in (f for f in files if f[3] == dim):
                    matrix = np.load(resolve(vectors_dir(store), file, origin), mmap_mode="r")
                    ids = [r[0] for r in con.execute('SELECT item_id FROM embedding_rows WHERE run_id = ? ORDER BY "row"',
                                                     [run_id]).fetchall()]
                    for start in range(0, len(ids), CHUNK_ROWS):
                        block = np.asarray(matrix[start:start + CHUNK_ROWS], np.float32)
                        sink.write_table(pa.table({
                            "run_id": pa.array([run_id] * len(block)), "item_id": pa.array(ids[start:start + len(block)]),
                            "vec": pa.FixedSizeListArray.from_arrays(pa.array(block.reshape(-1)), int(dim))}, schema=schema))
            written.append(path)
        return written
    finally:
        con.close()


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")
