"""Read-only access to the store: the queries the dashboard and the CLI use.

The connection is opened read-only with external access switched off and the
configuration locked. When a writer swaps a new file in, the next query opens the new
file; a query already running finishes on the old one (its open handle keeps the old
file alive), so a swap never breaks a reader mid-query. Each connection memory-maps the
embedding files its catalogue names when it opens (`storage.vectors`), so a file a later
writer removes stays readable to it.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from storage.errors import StoreCorruptError, StoreError, StoreLocationError, StoreMissingError
from storage.migrations import check_readable
from storage.pages import drop_pages
from storage.paths import blocking_file
from storage.vectors import Matrices, vectors_dir

log = logging.getLogger(__name__)

# Locked-down settings, applied after the store is attached: no file or URL readers, COPY,
# ATTACH, INSTALL/LOAD or httpfs, and no SET / PRAGMA that changes them back.
SAFE_SETTINGS = ("SET enable_external_access = false", "SET lock_configuration = true")
CATALOG = "store"


def check_complete(con: duckdb.DuckDBPyConnection, path: Path, size: int, catalog: str = CATALOG) -> None:
    """A truncated copy attaches fine and fails at its first read of a missing block: compare the
    file's size with what its own header says it holds (three 4 KiB headers, then the blocks).
    Used blocks, not total: DuckDB trims free blocks off the end of a file, so `total_blocks` may lie
    past a sound file's end. A cut that only loses blocks within that margin is caught at the first
    read instead (StoreReader.frame)."""
    row = con.execute("SELECT block_size, used_blocks FROM pragma_database_size() WHERE database_name = ?",
                      [catalog]).fetchone()
    needed = 3 * 4096 + int(row[0]) * int(row[1]) if row else 0
    if size < needed:
        raise StoreCorruptError(path, f"the file is truncated: {size:,} bytes where its header counts {needed:,}")


_HOSTS: list[Path] = []  # this process's folder for empty host databases, made on first use
_HOSTS_LOCK = threading.Lock()


def _read_only_host(config: dict) -> duckdb.DuckDBPyConnection:
    """A connection to an empty database file opened read-only, to attach the store to.

    Not `:memory:`: an in-memory host is a writable catalog (`memory`) shared by every cursor, so a
    table made by one request would be seen by the next. On a read-only host the only writable
    catalog is each cursor's own `temp`, gone when the cursor closes. Each connection gets a file of
    its own (DuckDB shares one instance per path), unlinked once open: nothing is left behind.
    """
    with _HOSTS_LOCK:
        if not _HOSTS:
            _HOSTS.append(Path(tempfile.mkdtemp(prefix="vlmembed-host-")))
            atexit.register(shutil.rmtree, _HOSTS[0], True)
        fd, name = tempfile.mkstemp(dir=_HOSTS[0], suffix=".duckdb")
    os.close(fd)
    os.unlink(name)  # DuckDB refuses an existing empty file; it writes a fresh one's headers itself
    duckdb.connect(name).close()
    try:
        return duckdb.connect(name, read_only=True, config=config)
    finally:
        os.unlink(name)


def open_read_only(path: Path, memory_limit: str = "1GB", threads: int = 2) -> duckdb.DuckDBPyConnection:
    """A locked-down read-only connection to a valid, current store (or a clear error)."""
    return open_with_matrices(path, memory_limit, threads)[0]


def open_with_matrices(path: Path, memory_limit: str = "1GB",
                       threads: int = 2) -> tuple[duckdb.DuckDBPyConnection, Matrices]:
    """`open_read_only`, with the embedding matrices its catalogue names (mapped, and callable from SQL
    through `embedding_vector` / `embedding_cosine`, registered before the configuration is locked).

    The store is ATTACHed to a fresh host database rather than opened with `duckdb.connect(path)`:
    DuckDB caches instances by path, which would keep serving the old file after a writer swaps a
    new one in. The host is read-only too (`_read_only_host`), extensions are never loaded, and
    nothing spills to disk (no temp directory: a query over the memory limit fails instead).
    """
    blocker = blocking_file(path)
    if blocker is not None:
        raise StoreLocationError(path, blocker)
    if not path.is_file():
        raise StoreMissingError(path)
    size = path.stat().st_size
    if size == 0:
        raise StoreCorruptError(path, "the file is empty")
    con = _read_only_host({"autoinstall_known_extensions": False, "autoload_known_extensions": False,
                           "memory_limit": memory_limit, "threads": int(threads), "temp_directory": ""})
    try:
        con.execute(f"ATTACH ? AS {CATALOG} (READ_ONLY)", [str(path)])
        con.execute(f"USE {CATALOG}")
        check_complete(con, path, size)
        check_readable(con, str(path))
        matrices = Matrices.of_catalogue(con, vectors_dir(path))
        matrices.register(con)
    except StoreError:
        con.close()
        raise
    except duckdb.Error as exc:
        con.close()
        raise StoreCorruptError(path, str(exc).splitlines()[0]) from exc
    for statement in SAFE_SETTINGS:
        con.execute(statement)
    return con, matrices


class StoreReader:
    """Thread-safe reads; each query runs on its own cursor."""

    def __init__(self, path: str | os.PathLike, memory_limit: str = "1GB"):
        self.path = Path(path).expanduser()
        self.memory_limit = memory_limit
        self._lock = threading.Lock()
        self._db: duckdb.DuckDBPyConnection | None = None
        self._matrices: Matrices | None = None
        self._stamp: tuple[int, int, int] | None = None
        self._rejected: tuple[int, int, int] | None = None  # a swapped-in file that failed its checks
        self._reconnect_if_swapped()

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:  # absent, or a path through a regular file
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _reconnect_if_swapped(self) -> duckdb.DuckDBPyConnection:
        return self._current()[0]

    def _current(self) -> tuple[duckdb.DuckDBPyConnection, Matrices]:
        """The connection to the last good file and the matrices of that same catalogue."""
        with self._lock:
            stamp = self._file_stamp()
            if self._db is not None and stamp in (self._stamp, self._rejected, None):
                return self._db, self._matrices  # unchanged, refused, or mid-swap / removed: keep serving
            try:
                fresh, matrices = open_with_matrices(self.path, self.memory_limit)
            except StoreError as exc:
                if self._db is None:
                    raise
                self._rejected = stamp
                log.warning("refused the new store file at %s, still serving the previous one: %s", self.path, exc)
                return self._db, self._matrices
            # The old connection is dropped, not closed: cursors still running on it keep it alive.
            self._db, self._matrices, self._stamp, self._rejected = fresh, matrices, stamp, None
            return fresh, matrices

    def isolated_connection(self) -> duckdb.DuckDBPyConnection:
        """A connection of its own (a DuckDB cursor) to the last good file: its only writable catalog is
        its own `temp`, dropped when it is closed, so nothing done on it is seen by any other."""
        return self.cursor()

    @property
    def version(self) -> tuple[int, int, int] | None:
        """Changes whenever a new store file is swapped in (for caches)."""
        self._reconnect_if_swapped()
        return self._stamp

    def cursor(self) -> duckdb.DuckDBPyConnection:
        cur = self._reconnect_if_swapped().cursor()
        cur.execute(f"USE {CATALOG}")  # cursors start in the in-memory catalog
        return cur

    def _frame(self, sql: str, params: Sequence | None = None) -> pd.DataFrame:
        # Private: the console's `run_query` is the one public way to send SQL (sandboxed there).
        cur = self.cursor()
        try:
            return cur.execute(sql, list(params or [])).df()
        except (duckdb.IOException, duckdb.InternalException) as exc:
            # a block that cannot be read (damaged after it was opened): the store's problem, said in one line
            raise StoreCorruptError(self.path, str(exc).strip().splitlines()[0]) from exc
        finally:
            cur.close()

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
            self._db = None

    # -- catalogue -----------------------------------------------------------------------
    def models(self) -> pd.DataFrame:
        return self._frame("SELECT * FROM models ORDER BY scale, paradigm, model, variant <> 'default', variant")

    def datasets(self) -> pd.DataFrame:
        return self._frame(
            "SELECT * FROM datasets ORDER BY benchmark, "
            "CASE meta_task WHEN 'classification' THEN 0 WHEN 'vqa' THEN 1 ELSE 2 END, NOT in_domain, dataset"
        )

    def runs(self, source: str | None = None) -> pd.DataFrame:
        sql = ("SELECT r.*, m.paradigm, m.scale FROM runs r JOIN models m USING (model, variant) "
               "WHERE r.status = 'complete'")
        params: list = []
        if source:
            sql += " AND r.source = ?"
            params.append(source)
        return self._frame(sql + " ORDER BY r.source, r.model, r.train_samples NULLS LAST, r.run_id", params)

    # -- scores ----------------------------------------------------------------------------
    def scores(self, metric: str = "precision@1", sources: Sequence[str] | None = None,
               run_ids: Sequence[str] | None = None) -> pd.DataFrame:
        """Rows of v_scores for one metric, optionally limited to sources or runs."""
        sql = "SELECT * FROM v_scores WHERE metric = ?"
        params: list = [metric]
        if sources:
            sql += " AND source IN (SELECT unnest(?))"
            params.append(list(sources))
        if run_ids:
            sql += " AND run_id IN (SELECT unnest(?))"
            params.append(list(run_ids))
        return self._frame(sql + " ORDER BY source, model, dataset", params)

    def metrics(self) -> list[str]:
        return self._frame("SELECT DISTINCT metric FROM scores ORDER BY metric")["metric"].tolist()

    def reported_averages(self) -> pd.DataFrame:
        return self._frame(
            "SELECT r.source, r.run_id, r.model, r.variant, a.meta_task, a.split, a.metric, a.value, a.where_printed "
            "FROM reported_averages a JOIN runs r USING (run_id) ORDER BY r.model, a.meta_task, a.split"
        )

    def train_log(self, run_ids: Sequence[str]) -> pd.DataFrame:
        return self._frame("SELECT * FROM train_log WHERE run_id IN (SELECT unnest(?)) ORDER BY run_id, step",
                          [list(run_ids)])

    # -- embeddings, projections, alignment ------------------------------------------------
    def pairs(self, dataset: str) -> pd.DataFrame:
        """Each eval row's query and gold target with their texts (gold = first candidate)."""
        return self._frame(
            "SELECT r.row_idx, r.query_item, r.candidates[1] AS gold_item, q.text AS query_text, "
            "q.modality AS query_modality, t.text AS gold_text, t.modality AS gold_modality "
            "FROM dataset_rows r JOIN items q ON q.item_id = r.query_item "
            "JOIN items t ON t.item_id = r.candidates[1] WHERE r.dataset = ? ORDER BY r.row_idx",
            [dataset],
        )

    def items(self, item_ids: Sequence[str], with_thumbnails: bool = True) -> pd.DataFrame:
        cols = "*" if with_thumbnails else "item_id, modality, instruction, text, image_path"
        return self._frame(f"SELECT {cols} FROM items WHERE item_id IN (SELECT unnest(?))", [list(item_ids)])

    def candidate_pool(self, dataset: str | None = None) -> list[str]:
        """Item ids of a dataset's candidates, or of every stored candidate."""
        if dataset:
            df = self._frame("SELECT DISTINCT item_id FROM dataset_items WHERE dataset = ? AND role = 'target' "
                            "ORDER BY item_id", [dataset])
        else:
            df = self._frame("SELECT DISTINCT item_id FROM dataset_items WHERE role = 'target' ORDER BY item_id")
        return df["item_id"].tolist()

    def dataset_items(self, role: str | None = None) -> pd.DataFrame:
        """(dataset, item_id, role) of every stored eval item, optionally of one role ('query' / 'target')."""
        if role is None:
            return self._frame("SELECT dataset, item_id, role FROM dataset_items ORDER BY dataset, item_id")
        return self._frame("SELECT dataset, item_id, role FROM dataset_items WHERE role = ? ORDER BY dataset, item_id",
                          [role])

    def _rows_of(self, run_id: str, item_ids: Sequence[str] | None,
                 order: str) -> tuple[np.ndarray | None, list[str], np.ndarray]:
        """A run's mapped matrix (None when it has none) with item ids and their rows, from one catalogue."""
        con, matrices = self._current()
        matrix = matrices.get(run_id)
        if matrix is None:
            return None, [], np.zeros(0, dtype=np.int32)
        sql = 'SELECT item_id, "row" FROM embedding_rows WHERE run_id = ?'
        params: list = [run_id]
        if item_ids is not None:
            sql += " AND item_id IN (SELECT unnest(?))"
            params.append(list(item_ids))
        cur = con.cursor()
        try:
            cur.execute(f"USE {CATALOG}")
            table = cur.sql(f"{sql} ORDER BY {order}", params=params).to_arrow_table()
        finally:
            cur.close()
        return matrix, table.column("item_id").to_pylist(), table.column("row").to_numpy()

    def embedding_matrix(self, run_id: str) -> tuple[list[str], np.ndarray]:
        """(item ids, (N, D) matrix) of a run, without copying: the matrix is the run's file memory-mapped
        read-only, dtype float16 (L2-normalised rows, aligned with the ids). Row order is the file's
        (the order the run stored them). An unknown run gives ([], a (0, 0) float16 array)."""
        matrix, ids, _ = self._rows_of(run_id, None, '"row"')
        return (ids, matrix) if matrix is not None else ([], np.zeros((0, 0), dtype=np.float16))

    def embeddings(self, run_id: str, item_ids: Sequence[str] | None = None) -> tuple[list[str], np.ndarray]:
        """(item ids sorted, (N, D) float32) of a run, optionally for given items only (a copy, read from
        the memory-mapped float16 file)."""
        matrix, ids, rows = self._rows_of(run_id, item_ids, "item_id")
        if matrix is None or not ids:
            return [], np.zeros((0, 0), dtype=np.float32)
        copied = np.asarray(matrix[rows], dtype=np.float32)
        drop_pages(matrix)  # the copy is the caller's; the file's pages need not stay in this process
        return ids, copied

    def embedded_runs(self) -> pd.DataFrame:
        """Runs that stored embeddings, with their dimension and how to rebuild their encoder (live search)."""
        return self._frame(
            "SELECT r.run_id, r.model, r.source, r.label, r.experiment, r.variant, r.stage, r.train_samples, "
            "r.train_task, r.checkpoint, r.config, r.finished_at, m.family, m.paradigm, m.scale, "
            "e.dim, e.n_items "
            "FROM embedding_files e JOIN runs r USING (run_id) JOIN models m USING (model, variant) "
            "WHERE r.status = 'complete' ORDER BY r.model, r.train_samples NULLS LAST, r.run_id"
        )

    def run_datasets(self, run_id: str) -> list[str]:
        """Datasets a run was evaluated on that have stored eval rows (queries and gold targets)."""
        df = self._frame("SELECT DISTINCT dataset FROM scores WHERE run_id = ? "
                        "AND dataset IN (SELECT dataset FROM dataset_rows) ORDER BY dataset", [run_id])
        return df["dataset"].tolist()

    def eval_queries(self) -> pd.DataFrame:
        """Every stored eval query with its gold item, keyed by content: instruction, text and the
        md5 of its thumbnail (thumbnails are made the same way from the same pixels, so an uploaded
        copy of a stored query image has the same one)."""
        return self._frame(
            "SELECT r.dataset, r.row_idx, r.query_item, r.candidates[1] AS gold_item, "
            "coalesce(q.instruction, '') AS instruction, q.text, q.thumbnail_md5 "
            "FROM dataset_rows r JOIN items q ON q.item_id = r.query_item ORDER BY r.dataset, r.row_idx"
        )

    def nearest_sql(self, run_id: str, query: np.ndarray, k: int = 10,
                    item_ids: Sequence[str] | None = None) -> pd.DataFrame:
        """Top-k stored items by cosine similarity with any vector, computed by DuckDB
        (`array_cosine_similarity` over the `embeddings` view's lists): the slow general form."""
        vec = np.asarray(query, dtype=np.float32).reshape(-1)
        dim = int(vec.shape[0])
        sql = (f"SELECT item_id, array_cosine_similarity(vec::FLOAT[{dim}], ?::FLOAT[{dim}]) AS score "
               "FROM embeddings WHERE run_id = ? AND dim = ?")
        params: list = [vec.tolist(), run_id, dim]
        if item_ids is not None:
            sql += " AND item_id IN (SELECT unnest(?))"
            params.append(list(item_ids))
        return self._frame(sql + " ORDER BY score DESC, item_id LIMIT ?", [*params, int(k)])

    def nearest_to_item_sql(self, run_id: str, query_item: str, k: int = 10,
                            item_ids: Sequence[str] | None = None) -> pd.DataFrame:
        """Top-k items of a run by cosine similarity with one of its stored items, computed in SQL with
        `embedding_cosine` (the documented fast query; bench/bench_store_scale.py times it)."""
        sql = ("WITH q AS (SELECT run_id, \"row\" FROM embedding_rows WHERE run_id = ? AND item_id = ?) "
               "SELECT e.item_id, embedding_cosine(e.run_id, e.\"row\", q.run_id, q.\"row\") AS score "
               "FROM embedding_rows e, q WHERE e.run_id = q.run_id")
        params: list = [run_id, query_item]
        if item_ids is not None:
            sql += " AND e.item_id IN (SELECT unnest(?))"
            params.append(list(item_ids))
        return self._frame(sql + " ORDER BY score DESC, e.item_id LIMIT ?", [*params, int(k)])

    def projection(self, run_id: str, dataset: str, method: str) -> pd.DataFrame:
        return self._frame(
            "SELECT p.item_id, p.role, p.x, p.y, i.modality, i.text, i.thumbnail "
            "FROM projections p JOIN items i USING (item_id) "
            "WHERE p.run_id = ? AND p.dataset = ? AND p.method = ? ORDER BY p.role, p.item_id",
            [run_id, dataset, method],
        )

    def projected(self) -> pd.DataFrame:
        """Which (run, dataset, method) projections exist, with each run's lineage (model, experiment,
        variant, train task) and stage, so a picker can offer the data-scale points of one model."""
        return self._frame(
            "SELECT p.run_id, p.dataset, p.method, count(*) FILTER (WHERE p.role = 'query') AS n_queries, "
            "r.model, r.source, r.experiment, r.variant, r.stage, r.train_samples, r.train_task, r.label, "
            "m.paradigm FROM projections p JOIN runs r USING (run_id) JOIN models m USING (model, variant) "
            "WHERE r.status = 'complete' GROUP BY ALL "
            "ORDER BY r.model, p.dataset, p.method, r.train_samples NULLS LAST, p.run_id"
        )

    def alignment(self, run_ids: Sequence[str] | None = None) -> pd.DataFrame:
        sql = ("SELECT a.*, r.model, r.source, r.stage, r.train_samples, r.train_task FROM alignment a "
               "JOIN runs r USING (run_id)")
        params: list = []
        if run_ids:
            sql += " WHERE a.run_id IN (SELECT unnest(?))"
            params.append(list(run_ids))
        return self._frame(sql + " ORDER BY r.model, a.dataset, r.train_samples NULLS LAST, a.metric", params)

    def summary(self) -> dict[str, int]:
        """Row counts of the main tables (for `vlmembed sql` banners and health checks)."""
        counts = {}
        for table in ("models", "datasets", "runs", "scores", "items", "embeddings", "projections", "alignment"):
            source = "embedding_rows" if table == "embeddings" else table  # the view would read every vector
            counts[table] = int(self._frame(f"SELECT count(*) AS n FROM {source}")["n"][0])
        return counts

    def final_vs_chance(self, source: str = "demo") -> pd.DataFrame:
        """Each model's final Precision@1 per meta-task it was trained on, beside chance
        (the mean of 1 / #candidates over that meta-task's datasets)."""
        return self._frame("""
            SELECT r.model, s.meta_task, round(avg(s.value), 1) AS p_at_1,
                   round(100 * avg(1.0 / c.n_candidates), 1) AS chance
            FROM v_scores s JOIN runs r USING (run_id)
            JOIN (SELECT dataset, avg(len(candidates)) AS n_candidates FROM dataset_rows GROUP BY dataset) c
                USING (dataset)
            WHERE s.source = ? AND r.stage = 'final' AND s.metric = 'precision@1' AND s.meta_task = r.train_task
            GROUP BY ALL ORDER BY s.meta_task, r.model""", [source])

    def final_alignment(self, metrics: Sequence[str], source: str = "demo") -> pd.DataFrame:
        """Each model's alignment metrics averaged over its final runs' maps, one row per (model, metric)."""
        return self._frame("""
            SELECT r.model, m.paradigm, a.metric, round(avg(a.value), 3) AS value
            FROM alignment a JOIN runs r USING (run_id) JOIN models m ON m.model = r.model AND m.variant = r.variant
            WHERE r.source = ? AND r.stage = 'final' AND a.metric IN (SELECT unnest(?))
            GROUP BY ALL ORDER BY a.metric, m.paradigm, r.model""", [source, list(metrics)])
