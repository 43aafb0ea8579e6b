"""Embedding matrices in files beside the store, one float16 `.npy` per run.

Why not in the DuckDB file: a writer publishes by copying the store file and swapping the copy in,
so every byte in it is copied by every publish. A run's matrix is written once, here, under a name
that is never reused (`<run>-<nonce>.npy`), and never changed after; the catalogue (`embedding_files`,
`embedding_rows`) names it. Readers memory-map it: the search side builds its index on the map
(`StoreReader.embedding_matrix`), and SQL reaches it through two scalar functions registered on
every connection (`embedding_vector`, `embedding_cosine`), so a sandboxed console with external
access off still ranks by similarity without reading any file itself.

float16: half the bytes of float32; embeddings are L2-normalised, so every value is in [-1, 1]
where float16 keeps about 3 significant digits (top-10 recall 1.0 against float32 in
bench/bench_store_scale.py).

Crash safety: a file is written under `<name>.partial`, fsynced and renamed before the catalogue
that names it is published; a writer killed before publishing leaves a file no catalogue names,
removed by the next writer (`remove_unreferenced`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from collections.abc import Iterable
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from storage.pages import drop_pages

DTYPE = np.float16
CHUNK_ROWS = 8192  # rows converted and written at a time: bounds the writer's extra memory
TORCH_FROM = 1 << 20  # values in a block from which SQL similarity multiplies in torch (float16) instead of numpy


def vectors_dir(store: Path) -> Path:
    """The folder of a store's matrix files: `<store file>.vectors` beside it."""
    return store.with_name(store.name + ".vectors")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_matrix(folder: Path, run_id: str, matrix: np.ndarray) -> str:
    """Write `matrix` as float16 under a fresh name in `folder`, durably; returns the file name.

    Converted CHUNK_ROWS rows at a time, so a 1M x 4096 run costs the writer no full float16 copy;
    a memory-mapped source is read a chunk at a time and its pages let go after each chunk (else the
    whole source, 16 GB of float32 at 1M x 4096, would end up resident; `storage.pages`). The file is
    written with plain writes: its pages sit in the page cache, never in the writer's RSS.
    """
    if matrix.ndim != 2:
        raise ValueError(f"run {run_id}: embeddings must be (N, D), got shape {matrix.shape}")
    folder.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)[:80]
    name = f"{safe}-{secrets.token_hex(6)}.npy"
    partial = folder / (name + ".partial")
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(DTYPE)), "fortran_order": False,
              "shape": tuple(int(s) for s in matrix.shape)}
    torch = _torch()  # converts to float16 about 4x faster than numpy
    limit = float(np.finfo(DTYPE).max)
    try:
        with open(partial, "wb") as f:
            np.lib.format.write_array_header_1_0(f, header)
            for start in range(0, matrix.shape[0], CHUNK_ROWS):
                chunk = np.ascontiguousarray(matrix[start:start + CHUNK_ROWS], dtype=np.float32)
                if not chunk.flags.writeable:  # a read-only memory map (a migration): torch wants a writable array
                    chunk = chunk.copy()
                block = torch.from_numpy(chunk)
                low, high = torch.aminmax(block) if block.numel() else (torch.tensor(0.0), torch.tensor(0.0))
                if max(float(high), -float(low)) > limit:  # one pass, no |x| temporary
                    raise ValueError(f"run {run_id}: embedding values beyond float16's range ({limit:g}); "
                                     "store L2-normalised embeddings")
                f.write(memoryview(block.half().numpy()).cast("B"))
                drop_pages(matrix)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, folder / name)
        _fsync_dir(folder)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return name


def link_or_copy(source: Path, folder: Path) -> str:
    """Bring a matrix file of another store into `folder` (a hard link when on the same disk: files
    never change, so sharing is safe); returns the name it has here."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / source.name
    if not target.exists():
        partial = folder / (source.name + ".partial")
        partial.unlink(missing_ok=True)
        try:
            os.link(source, partial)
        except OSError:
            import shutil
            shutil.copyfile(source, partial)
        os.replace(partial, target)
        _fsync_dir(folder)
    return source.name


def resolve(folder: Path, file: str, origin: str | None) -> Path:
    """A catalogue entry's file: in the store's own folder, else where it was written (a store file
    copied elsewhere on its own still finds its matrices)."""
    here = folder / file
    if here.exists() or not origin:
        return here
    return Path(origin)


def remove_unreferenced(folder: Path, referenced: Iterable[str]) -> list[str]:
    """Delete matrix files no published catalogue names (replaced or deleted runs, a crashed
    writer's leftovers). Only the writer calls it, under the store's lock."""
    if not folder.is_dir():
        return []
    keep = set(referenced)
    removed = []
    for path in folder.iterdir():
        if path.name not in keep and (path.suffix == ".npy" or path.name.endswith(".npy.partial")):
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


_NORMS: dict[str, np.ndarray] = {}  # file path -> row norms; files never change, so neither do these
_NORMS_LOCK = threading.Lock()


def _torch():
    import torch  # lazily: only writing matrices and SQL similarity over many rows need it

    return torch


class Matrices:
    """run_id -> memory-mapped float16 matrix, for one catalogue snapshot (or a writer's session)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._maps: dict[str, np.ndarray] = {}
        self._paths: dict[str, Path] = {}

    @classmethod
    def of_catalogue(cls, con: duckdb.DuckDBPyConnection, folder: Path) -> Matrices:
        """Map every file the connection's catalogue names, now: an open map keeps its file readable
        even if a later writer removes it."""
        found = cls(folder)
        for run_id, file, origin in con.execute("SELECT run_id, file, origin FROM embedding_files").fetchall():
            found.add(run_id, resolve(folder, file, origin))
        return found

    def add(self, run_id: str, path: Path) -> None:
        try:
            self._maps[run_id] = np.load(path, mmap_mode="r")
        except FileNotFoundError:
            from storage.errors import StoreCorruptError
            raise StoreCorruptError(path.parent, f"the embedding file {path.name} of run {run_id} is missing "
                                                 "(copy a store with its .vectors folder)") from None
        self._paths[run_id] = path

    def drop(self, run_id: str) -> None:
        self._maps.pop(run_id, None)
        self._paths.pop(run_id, None)

    def get(self, run_id: str) -> np.ndarray | None:
        return self._maps.get(run_id)

    def path(self, run_id: str) -> Path | None:
        return self._paths.get(run_id)

    def norms(self, run_id: str) -> np.ndarray:
        """Row norms in float32, computed once per file and process."""
        key = str(self._paths[run_id])
        with _NORMS_LOCK:
            cached = _NORMS.get(key)
        if cached is None:
            m = self._maps[run_id]
            cached = np.concatenate([np.linalg.norm(np.asarray(m[s:s + CHUNK_ROWS], np.float32), axis=1)
                                     for s in range(0, m.shape[0], CHUNK_ROWS)] or [np.zeros(0, np.float32)])
            drop_pages(m)  # a pass over the whole file: keep none of it resident
            with _NORMS_LOCK:
                _NORMS[key] = cached
        return cached

    # -- SQL functions ------------------------------------------------------------------------
    def _vector(self, runs: pa.Array, rows: pa.Array) -> pa.Array:
        run_ids = runs.to_pylist()
        row_idx = rows.to_numpy(zero_copy_only=False)
        out = [None if r is None or self.get(r) is None else np.asarray(self.get(r)[int(i)], np.float32)
               for r, i in zip(run_ids, row_idx, strict=True)]
        return pa.array(out, type=pa.list_(pa.float32()))

    def _cosine(self, runs: pa.Array, rows: pa.Array, query_runs: pa.Array, query_rows: pa.Array) -> pa.Array:
        """Cosine of each (run, row) with each (query run, query row), a float16 product with float32
        norms; a chunk is usually one run and one query, done as one matrix-vector product."""
        run_ids, q_runs = runs.to_pylist(), query_runs.to_pylist()
        row_idx = rows.to_numpy(zero_copy_only=False)
        q_idx = query_rows.to_pylist()  # may hold NULLs
        out = np.full(len(run_ids), np.nan, dtype=np.float32)
        groups: dict[tuple, list[int]] = {}
        for i, key in enumerate(zip(run_ids, q_runs, q_idx, strict=True)):
            groups.setdefault(key, []).append(i)
        for (run, q_run, q_row), positions in groups.items():
            m, qm = self.get(run), self.get(q_run)
            if m is None or qm is None or q_row is None or m.shape[1] != qm.shape[1]:
                continue  # NULL for an unknown run or a dimension mismatch
            pos = np.asarray(positions)
            idx = row_idx[pos].astype(np.int64)
            contiguous = len(idx) and idx[-1] - idx[0] + 1 == len(idx) and (np.diff(idx) == 1).all()
            block = m[idx[0]:idx[-1] + 1] if contiguous else m[idx]
            if block.size < TORCH_FROM:  # small: numpy in float32 (no torch import for a few rows)
                dots = np.asarray(block, np.float32) @ np.asarray(qm[int(q_row)], np.float32)
            else:  # torch multiplies float16 directly, 3-4x faster than numpy's float32 conversion
                torch = _torch()
                q = torch.from_numpy(np.array(qm[int(q_row)]))
                with _quiet():
                    dots = (torch.from_numpy(np.asarray(block)) @ q).float().numpy()
            q_norm = self.norms(q_run)[int(q_row)]
            out[pos] = dots / np.maximum(self.norms(run)[idx] * q_norm, 1e-12)
        return pa.array(out, mask=np.isnan(out))

    def register(self, con: duckdb.DuckDBPyConnection) -> None:
        """Define `embedding_vector(run_id, row)` and `embedding_cosine(run_id, row, query_run_id,
        query_row)` on a connection (its cursors see them too)."""
        t = duckdb.sqltypes
        con.create_function("embedding_vector", self._vector, [t.VARCHAR, t.INTEGER], duckdb.list_type(t.FLOAT),
                            type="arrow", side_effects=False)
        con.create_function("embedding_cosine", self._cosine, [t.VARCHAR, t.INTEGER, t.VARCHAR, t.INTEGER],
                            t.FLOAT, type="arrow", side_effects=False)


def ensure_functions(con: duckdb.DuckDBPyConnection, folder: Path) -> None:
    """Register the SQL functions on a connection that has none yet (a bare `duckdb.connect` migrating
    or creating a store: the `embeddings` view names them); they read no file until a run is added."""
    found = con.execute("SELECT count(*) FROM duckdb_functions() WHERE function_name = 'embedding_vector'").fetchall()[0]
    if not found[0]:
        Matrices(folder).register(con)


@contextlib.contextmanager
def _quiet():
    import warnings

    with warnings.catch_warnings():  # torch warns that a read-only memory map is not writable; it is only read
        warnings.simplefilter("ignore", UserWarning)
        yield
