"""The one way results enter the store.

A writer works on a private copy of the store file; `publish()` swaps the copy in with
an atomic rename, so a reader sees the old file or the new one, never half of a change.
Embedding matrices are not in that file: each run's is written once to its own file beside
it (`storage.vectors`) before the catalogue naming it is published, so a publish copies only
the catalogue, whatever the store holds.
Each `add_run` is one transaction: an exception half-way leaves no trace, and a process
killed mid-run leaves the published file untouched (its working copy is removed by the
next writer). One writer at a time, enforced with a lock file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from storage.errors import (
    RunConflictError,
    StoreBusyError,
    StoreCorruptError,
    StoreLocationError,
    StoreReadOnlyError,
)
from storage.migrations import Migration, ensure_current, stored_version
from storage.paths import blocking_file
from storage.reader import check_complete
from storage.records import (
    DatasetRecord,
    DatasetRow,
    ItemRecord,
    ModelRecord,
    RunRecord,
)
from storage.schema import DATASET_ITEMS_OF, SCHEMA_VERSION
from storage.vectors import Matrices, link_or_copy, remove_unreferenced, resolve, vectors_dir, write_matrix
from storage.vocabulary import ROLES

log = logging.getLogger(__name__)

# The DuckDB memory limit of every connection that writes (the writer's, and migrations through it).
# Embedding matrices bypass DuckDB (written in chunks by numpy), so the catalogue needs little; a query
# over the limit spills to a temp file beside the store instead of growing the process.
WRITER_MEMORY_LIMIT = "1GB"

MODEL_COLUMNS = ("model", "variant", "family", "display_name", "paradigm", "attention", "pooling", "vision_encoder",
                 "vision_update", "backbone", "params", "scale", "description")


# Every table keyed by run besides `runs` itself: what a run brings with it.
@dataclass(frozen=True)
class MergeReport:
    """What `StoreWriter.merge_store` did with each run of the other store."""

    added: list[str]
    unchanged: list[str]  # already here with the same contents
    conflicting: list[str]  # here with other contents: left alone


RUN_TABLES = ("scores", "reported_averages", "ranks", "train_log", "embedding_rows", "embedding_files",
              "projections", "alignment", "intervals")


def _insert_many(con: duckdb.DuckDBPyConnection, sql: str, rows: Sequence[tuple]) -> None:
    if rows:  # duckdb refuses executemany with no parameter sets
        con.executemany(sql, rows)


def _catalog_of(con: duckdb.DuckDBPyConnection) -> str:
    return con.execute("SELECT current_database()").fetchone()[0]


def _work_path(path: Path, pid: int) -> Path:
    return path.with_name(f".{path.name}.writing-{pid}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_copies(path: Path) -> None:
    for stale in path.parent.glob(f".{path.name}.writing-*"):
        pid_text = stale.name.rsplit("-", 1)[-1].split(".")[0]
        if pid_text.isdigit() and not _pid_alive(int(pid_text)):
            log.info("removing %s left by a writer that died", stale.name)
            stale.unlink(missing_ok=True)
            Path(str(stale) + ".wal").unlink(missing_ok=True)


def _open_lock(path: Path):
    """The writer's lock file, created beside the store (and its folder with it); a folder that cannot
    be written or a path through a regular file is a one-line StoreError, not an OSError traceback."""
    blocker = blocking_file(path)
    if blocker is not None:
        raise StoreLocationError(path, blocker)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path.with_name(path.name + ".lock"), "w")  # noqa: SIM115 - held for the writer's life
    except OSError as exc:
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise StoreReadOnlyError(path, _first_existing(path.parent)) from exc
        raise


def _first_existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


class StoreWriter:
    """Write access to a store; use as a context manager (publishes on success)."""

    def __init__(self, path: str | os.PathLike, fresh: bool = False, migrations: dict[int, Migration] | None = None):
        self.path = Path(path).expanduser().resolve()
        self._lock_file = _open_lock(self.path)
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise StoreBusyError(
                f"another vlmembed process is writing {self.path}; wait for it to finish (only one writer at a time)"
            ) from None
        _remove_stale_copies(self.path)
        self._work = _work_path(self.path, os.getpid())
        self._vectors = vectors_dir(self.path)
        self._written: list[str] = []  # matrix files written since the last publish (removed on abort)
        self._migrations = migrations
        self.con: duckdb.DuckDBPyConnection | None = None
        self._changed = False  # whether the working copy differs from the published file
        self._open(fresh)

    @classmethod
    def check(cls, path: str | os.PathLike) -> None:
        """Raise the StoreError a writer of `path` would meet (busy, read-only, corrupt, newer schema ...),
        changing nothing: for commands that work a long time before they write."""
        cls(path).abort()

    # -- lifecycle ----------------------------------------------------------------------
    def _open(self, fresh: bool) -> None:
        self._work.unlink(missing_ok=True)
        copied = self.path.exists() and not fresh
        if copied and self.path.stat().st_size == 0:
            raise StoreCorruptError(self.path, "the file is empty")  # as readers say; --fresh writes over it
        if copied:
            shutil.copyfile(self.path, self._work)
        try:
            self.con = duckdb.connect(str(self._work), config={"memory_limit": WRITER_MEMORY_LIMIT})
            self.matrices = Matrices(self._vectors)
            self.matrices.register(self.con)  # the `embeddings` view calls them
            if copied:
                check_complete(self.con, self.path, self._work.stat().st_size, _catalog_of(self.con))
            found = ensure_current(self.con, str(self.path), self._migrations)
            if copied and found == SCHEMA_VERSION:
                self._collect_garbage()
            for run_id, file, origin in self.con.execute("SELECT run_id, file, origin FROM embedding_files").fetchall():
                self.matrices.add(run_id, resolve(self._vectors, file, origin))
            self._changed = not copied or found < SCHEMA_VERSION  # created or migrated
        except duckdb.Error as exc:
            self._discard()
            reason = str(exc).splitlines()[0].replace(str(self._work), str(self.path))  # name the user's file
            raise StoreCorruptError(self.path, reason) from exc
        except BaseException:
            self._discard()
            raise

    def _collect_garbage(self) -> None:
        """Remove matrix files the published catalogue does not name (replaced runs, a dead writer's)."""
        named = [r[0] for r in self.con.execute("SELECT file FROM embedding_files").fetchall()]
        for name in remove_unreferenced(self._vectors, named):
            log.info("removed %s, named by no published catalogue", name)

    def publish(self, keep_open: bool = False) -> None:
        """Swap the working copy in atomically; with keep_open, continue writing on a new copy."""
        assert self.con is not None, "writer is closed"
        self.con.execute("CHECKPOINT")
        self.con.close()
        self.con = None
        with open(self._work, "rb") as f:
            os.fsync(f.fileno())
        os.replace(self._work, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        log.info("published %s", self.path)
        self._changed = False
        self._written = []
        if keep_open:
            self._open(fresh=False)
        else:
            self._release()

    def abort(self) -> None:
        """Throw the working copy away; the published store is untouched."""
        self._discard()
        self._release()

    def _discard(self) -> None:
        if self.con is not None:
            with contextlib.suppress(duckdb.Error):
                self.con.close()
            self.con = None
        self._work.unlink(missing_ok=True)
        Path(str(self._work) + ".wal").unlink(missing_ok=True)
        for name in self._written:  # named by no published catalogue
            (self._vectors / name).unlink(missing_ok=True)
        self._written = []

    def _release(self) -> None:
        if not self._lock_file.closed:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.con is None:
            self._release()
        elif exc_type is None and self._changed:
            self.publish()
        else:  # failed, or nothing written since the last publish: the published file stays as it is
            self.abort()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        assert self.con is not None, "writer is closed"
        self.con.begin()
        try:
            yield self.con
        except BaseException:
            self.con.rollback()
            raise
        self.con.commit()
        self._changed = True

    # -- catalogue ------------------------------------------------------------------------
    def upsert_models(self, models: Iterable[ModelRecord]) -> None:
        """One record per (model, variant): an ablation keeps its own settings beside the main run's."""
        rows = [
            (m.model, m.variant, m.family, m.display_name, m.paradigm, m.attention, m.pooling, m.vision_encoder,
             m.vision_update, m.backbone, m.params, m.scale, m.description)
            for m in models
        ]
        with self.transaction() as con:
            _insert_many(con, f"INSERT OR REPLACE INTO models ({', '.join(MODEL_COLUMNS)}) "
                              f"VALUES ({', '.join('?' * len(MODEL_COLUMNS))})", rows)

    def upsert_datasets(self, datasets: Iterable[DatasetRecord]) -> None:
        rows = [
            (d.dataset, d.benchmark, d.meta_task, d.query_modality, d.target_modality, d.in_domain,
             d.n_train, d.n_eval, d.n_candidates, d.instruction, d.description)
            for d in datasets
        ]
        with self.transaction() as con:
            _insert_many(con, "INSERT OR REPLACE INTO datasets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def add_items(self, items: Iterable[ItemRecord]) -> None:
        """Items are content-addressed: an id already stored is kept as it is."""
        items = list(items)
        if not items:
            return
        table = pa.table({
            "item_id": [i.item_id for i in items],
            "modality": [i.modality for i in items],
            "instruction": [i.instruction for i in items],
            "text": [i.text for i in items],
            "image_path": [i.image_path for i in items],
            "thumbnail": pa.array([i.thumbnail for i in items], type=pa.binary()),
            "thumbnail_md5": [None if i.thumbnail is None else hashlib.md5(i.thumbnail).hexdigest() for i in items],
        })
        with self.transaction() as con:
            con.register("new_items", table)
            con.execute("INSERT OR IGNORE INTO items BY NAME SELECT DISTINCT ON (item_id) * FROM new_items")
            con.unregister("new_items")

    def set_dataset_rows(self, dataset: str, rows: Sequence[DatasetRow]) -> None:
        """Replace a dataset's eval rows (queries and candidate lists, gold first)."""
        missing = self._missing_items({r.query_item for r in rows} | {c for r in rows for c in r.candidates})
        if missing:
            raise ValueError(f"{dataset}: {len(missing)} row items are not in `items`, e.g. {sorted(missing)[:3]}")
        with self.transaction() as con:
            con.execute("DELETE FROM dataset_rows WHERE dataset = ?", [dataset])
            _insert_many(con, "INSERT INTO dataset_rows VALUES (?, ?, ?, ?)",
                         [(dataset, r.row_idx, r.query_item, list(r.candidates)) for r in rows])
            self._refresh_dataset_items(con, "SELECT ?", [dataset])

    @staticmethod
    def _refresh_dataset_items(con: duckdb.DuckDBPyConnection, wanted: str, params: Sequence = ()) -> None:
        """Rewrite dataset_items for the datasets `wanted` selects (in the caller's transaction)."""
        con.execute(f"DELETE FROM dataset_items WHERE dataset IN ({wanted})", list(params))
        con.execute("INSERT INTO dataset_items " + DATASET_ITEMS_OF.format(wanted=wanted), list(params) * 2)

    def _missing_items(self, ids: set[str]) -> set[str]:
        if not ids:
            return set()
        assert self.con is not None
        self.con.register("wanted", pa.table({"item_id": sorted(ids)}))
        try:
            found = {r[0] for r in self.con.execute(
                "SELECT w.item_id FROM wanted w JOIN items USING (item_id)").fetchall()}
        finally:
            self.con.unregister("wanted")
        return ids - found

    # -- runs ----------------------------------------------------------------------------
    def has_run(self, run_id: str | None = None, config_hash: str | None = None, source: str | None = None) -> bool:
        """Whether a complete run is stored with this id, configuration hash and/or source."""
        assert self.con is not None
        if run_id is None and config_hash is None and source is None:
            raise ValueError("has_run needs a run_id, a config_hash, a source or several")
        row = self.con.execute(
            "SELECT 1 FROM runs WHERE status = 'complete' AND (? IS NULL OR run_id = ?) "
            "AND (? IS NULL OR config_hash = ?) AND (? IS NULL OR source = ?) LIMIT 1",
            [run_id, run_id, config_hash, config_hash, source, source]).fetchall()
        return bool(row)

    def add_run(self, run: RunRecord, replace: bool = False) -> str:
        """Land a run whole: its row, scores, averages, ranks, training log and embeddings."""
        assert self.con is not None, "writer is closed"
        # fetchall, not fetchone: DuckDB refuses the `register` of _missing_items below while a
        # fetchone() result is unfinished (a run with embeddings and no scores hit it)
        known_model = self.con.execute("SELECT 1 FROM models WHERE model = ? AND variant = ?",
                                       [run.model, run.variant]).fetchall()
        if not known_model:
            raise ValueError(f"run {run.run_id}: model {run.model!r} variant {run.variant!r} is not in `models`; "
                             "upsert_models first (a ModelRecord with that model and variant)")
        datasets = {s.dataset for s in run.scores} | {r.dataset for r in run.ranks}
        if datasets:
            known = {r[0] for r in self.con.execute("SELECT dataset FROM datasets").fetchall()}
            unknown = sorted(datasets - known)
            if unknown:
                raise ValueError(f"run {run.run_id}: datasets not in `datasets`: {unknown}; upsert_datasets first")
        if run.embedding_items:
            missing = self._missing_items(set(run.embedding_items))
            if missing:
                raise ValueError(f"run {run.run_id}: {len(missing)} embedded items are not in `items`")
        if len(set(run.embedding_items)) != len(run.embedding_items):
            raise ValueError(f"run {run.run_id}: embedding_items has repeated item ids; each item is embedded once")
        exists = self.con.execute("SELECT 1 FROM runs WHERE run_id = ?", [run.run_id]).fetchall()
        if exists and not replace:
            raise RunConflictError(f"run {run.run_id} is already stored; pass replace=True to overwrite it")
        # The matrix goes to its own file first (outside DuckDB, in chunks); the transaction only names it.
        file = None
        if run.embeddings is not None and len(run.embedding_items):
            file = write_matrix(self._vectors, run.run_id, np.asarray(run.embeddings))
            self._written.append(file)
        try:
            with self.transaction() as con:
                if exists:
                    self._delete_run(con, run.run_id)
                self._insert_run(con, run, file)
        except BaseException:
            if file is not None:
                (self._vectors / file).unlink(missing_ok=True)
                self._written.remove(file)
            raise
        if file is not None:
            self.matrices.add(run.run_id, self._vectors / file)
        return run.run_id

    def _insert_run(self, con: duckdb.DuckDBPyConnection, run: RunRecord, file: str | None) -> None:
        con.execute(
            "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'complete', ?, ?, ?, ?, ?, ?, ?, ?)",
            [run.run_id, run.source, run.model, run.label, run.variant, run.experiment, run.train_task,
             run.stage, run.train_samples, json.dumps(run.config, default=str), run.config_hash,
             run.code_version, run.checkpoint, run.started_at, run.finished_at,
             json.dumps(run.timings, default=str), run.notes],
        )
        _insert_many(con, "INSERT INTO scores VALUES (?, ?, ?, ?, ?)",
                     [(run.run_id, s.dataset, s.metric, float(s.value), s.n_queries) for s in run.scores])
        _insert_many(con, "INSERT INTO reported_averages VALUES (?, ?, ?, ?, ?, ?)",
                     [(run.run_id, a.meta_task, a.split, a.metric, a.value, a.where_printed) for a in run.reported])
        if run.ranks:
            con.register("new_ranks", pa.table({
                "run_id": [run.run_id] * len(run.ranks),
                "dataset": [r.dataset for r in run.ranks],
                "row_idx": pa.array([r.row_idx for r in run.ranks], pa.int32()),
                "gold_rank": pa.array([r.gold_rank for r in run.ranks], pa.int32()),
                "top_item": [r.top_item for r in run.ranks],
                "gold_score": pa.array([r.gold_score for r in run.ranks], pa.float64()),
                "top_score": pa.array([r.top_score for r in run.ranks], pa.float64()),
            }))
            con.execute("INSERT INTO ranks SELECT * FROM new_ranks")
            con.unregister("new_ranks")
        _insert_many(con, "INSERT INTO train_log VALUES (?, ?, ?, ?, ?)",
                     [(run.run_id, t.step, t.samples, t.loss, t.lr) for t in run.train_log])
        if file is not None:
            n, dim = np.shape(run.embeddings)
            con.execute("INSERT INTO embedding_files VALUES (?, ?, ?, ?, ?, 'float16')",
                        [run.run_id, file, str(self._vectors / file), dim, n])
            con.register("new_rows", pa.table({
                "run_id": pa.array([run.run_id] * n), "item_id": pa.array(run.embedding_items),
                "dim": pa.array(np.full(n, dim, np.int32)), "row": pa.array(np.arange(n, dtype=np.int32))}))
            con.execute("INSERT INTO embedding_rows BY NAME SELECT * FROM new_rows")
            con.unregister("new_rows")

    @staticmethod
    def _delete_run(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
        for table in RUN_TABLES:
            con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
        con.execute("DELETE FROM runs WHERE run_id = ?", [run_id])

    def delete_run(self, run_id: str) -> None:
        with self.transaction() as con:
            self._delete_run(con, run_id)

    def delete_source(self, source: str) -> int:
        """Remove every run of a source (e.g. re-importing the paper's numbers)."""
        assert self.con is not None
        ids = [r[0] for r in self.con.execute("SELECT run_id FROM runs WHERE source = ?", [source]).fetchall()]
        with self.transaction() as con:
            for run_id in ids:
                self._delete_run(con, run_id)
        return len(ids)

    # -- analysis products ---------------------------------------------------------------
    def set_projection(self, run_id: str, dataset: str, method: str, item_ids: Sequence[str],
                       roles: Sequence[str], xy: np.ndarray) -> None:
        """Replace a run's 2-D projection of one dataset with one method."""
        if xy.shape != (len(item_ids), 2) or len(roles) != len(item_ids):
            raise ValueError(f"projection needs (N, 2) points and N roles; got {xy.shape} for {len(item_ids)} items")
        bad_roles = set(roles) - set(ROLES)
        if bad_roles:
            raise ValueError(f"roles must be in {ROLES}, got {sorted(bad_roles)}")
        if not np.isfinite(xy).all():
            raise ValueError("projection has NaN or inf coordinates")
        with self.transaction() as con:
            con.execute("DELETE FROM projections WHERE run_id = ? AND dataset = ? AND method = ?",
                        [run_id, dataset, method])
            con.register("new_points", pa.table({
                "run_id": [run_id] * len(item_ids), "dataset": [dataset] * len(item_ids),
                "method": [method] * len(item_ids), "item_id": list(item_ids), "role": list(roles),
                "x": xy[:, 0].astype(np.float64), "y": xy[:, 1].astype(np.float64),
            }))
            con.execute("INSERT INTO projections SELECT * FROM new_points")
            con.unregister("new_points")

    def set_alignment(self, run_id: str, dataset: str, metrics: dict[str, float]) -> None:
        if not all(np.isfinite(v) for v in metrics.values()):
            raise ValueError(f"alignment metrics for {run_id}/{dataset} contain NaN or inf: {metrics}")
        with self.transaction() as con:
            con.execute("DELETE FROM alignment WHERE run_id = ? AND dataset = ?", [run_id, dataset])
            _insert_many(con, "INSERT INTO alignment VALUES (?, ?, ?, ?)",
                         [(run_id, dataset, k, float(v)) for k, v in metrics.items()])

    def merge_runs(self, other: str | os.PathLike, run_ids: Sequence[str]) -> None:
        """Copy runs whole from another store of this schema version (e.g. a parallel worker's),
        with the models, datasets, items and eval rows they use; stored runs of those ids are replaced."""
        assert self.con is not None, "writer is closed"
        if not run_ids:
            return
        other = Path(other)
        self.con.execute("ATTACH ? AS other (READ_ONLY)", [str(other)])
        try:
            version = stored_version(self.con, "other")
            if version != SCHEMA_VERSION:
                raise ValueError(f"{other} has schema version {version}, this store {SCHEMA_VERSION}; "
                                 "run `vlmembed migrate` on it first")
            self.con.register("merged_runs", pa.table({"run_id": list(run_ids)}))
            found = {r[0] for r in self.con.execute(
                "SELECT run_id FROM other.runs JOIN merged_runs USING (run_id)").fetchall()}
            if missing := sorted(set(run_ids) - found):
                raise ValueError(f"{other} has no run {missing[0]!r} (and {len(missing) - 1} more missing)")
            theirs = vectors_dir(other.resolve())
            files = self.con.execute("SELECT f.run_id, f.file, f.origin FROM other.embedding_files f "
                                     "JOIN merged_runs USING (run_id)").fetchall()
            for _run_id, file, origin in files:  # the files first: the transaction below names them
                if not (self._vectors / file).exists():
                    self._written.append(link_or_copy(resolve(theirs, file, origin), self._vectors))
            with self.transaction() as con:
                con.execute("INSERT OR REPLACE INTO models BY NAME SELECT * FROM other.models")
                con.execute("INSERT OR REPLACE INTO datasets BY NAME SELECT * FROM other.datasets")
                con.execute("INSERT OR IGNORE INTO items BY NAME SELECT * FROM other.items")
                con.execute("DELETE FROM dataset_rows WHERE dataset IN (SELECT dataset FROM other.dataset_rows)")
                con.execute("INSERT INTO dataset_rows BY NAME SELECT * FROM other.dataset_rows")
                self._refresh_dataset_items(con, "SELECT DISTINCT dataset FROM other.dataset_rows")
                for run_id in found:
                    self._delete_run(con, run_id)
                for table in ("runs", *RUN_TABLES):
                    con.execute(f"INSERT INTO {table} BY NAME SELECT t.* FROM other.{table} t "
                                "JOIN merged_runs USING (run_id)")
                con.execute("UPDATE embedding_files SET origin = ? || '/' || file "
                            "WHERE run_id IN (SELECT run_id FROM merged_runs)", [str(self._vectors)])
            for run_id, file, _ in files:
                self.matrices.add(run_id, self._vectors / file)
        finally:
            self.con.unregister("merged_runs")
            self.con.execute("DETACH other")

    def merge_store(self, other: str | os.PathLike) -> MergeReport:
        """Bring every run of another store (e.g. written on another machine) into this one.

        Idempotent: a run already here with the same contents is left as it is. A run id present on
        both sides with different contents (configuration, status or scores) is reported and left
        alone. A store of another schema version is refused.
        """
        assert self.con is not None, "writer is closed"
        other = Path(other)
        if not other.is_file():
            raise FileNotFoundError(f"{other}: no such store to merge; check the path")
        if other.resolve() == self.path.resolve():
            raise ValueError(f"{other} is the store being merged into; name another store")
        self.con.execute("ATTACH ? AS other (READ_ONLY)", [str(other)])
        try:
            version = stored_version(self.con, "other")
            if version != SCHEMA_VERSION:
                raise ValueError(f"{other} has schema version {version}, this store {SCHEMA_VERSION}; "
                                 f"run `vlmembed migrate --store {other}` on it first (or upgrade vlmembed)")
            fingerprint = """SELECT r.run_id, md5(concat_ws('|', r.config_hash, r.status, r.train_samples,
                                 (SELECT string_agg(concat_ws(':', s.dataset, s.metric, s.value), ','
                                                    ORDER BY s.dataset, s.metric) FROM {c}scores s
                                  WHERE s.run_id = r.run_id))) AS f FROM {c}runs r"""
            theirs = dict(self.con.execute(fingerprint.format(c="other.")).fetchall())
            ours = dict(self.con.execute(fingerprint.format(c="")).fetchall())
        finally:
            self.con.execute("DETACH other")
        report = MergeReport(
            added=sorted(r for r in theirs if r not in ours),
            unchanged=sorted(r for r in theirs if ours.get(r) == theirs[r]),
            conflicting=sorted(r for r in theirs if r in ours and ours[r] != theirs[r]))
        self.merge_runs(other, report.added)
        return report

    def execute(self, sql: str, params: Sequence | None = None) -> list[tuple]:
        """For storage's own modules (e.g. paper import checks); not a public SQL door."""
        assert self.con is not None
        self._changed = True  # it may write; publishing an unchanged copy is only wasted work
        return self.con.execute(sql, params or []).fetchall()
