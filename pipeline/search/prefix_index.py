"""Exact top-k by cosine over large candidate matrices, reading a small prefix per query.

A float32 scan of 64k x 4096 candidates reads 1 GB per query (~100 ms, memory-bound). Real
embeddings are far from isotropic: most of their energy lies in a few hundred directions. So
each unit row x is split on an orthonormal basis V of p principal directions (fitted once per
run on a sample): x = V V^T x + x_r, and for a query q = V V^T q + q_r,

    x . q = (V^T x) . (V^T q) + x_r . q_r,   |x_r . q_r| <= ||x_r|| ||q_r||   (Cauchy-Schwarz)

A query reads only the (N, p) prefix V^T x and the residual norms ||x_r||; every row gets a lower
and an upper bound on its score. At least k rows score at least the k-th largest lower bound,
so a row whose upper bound is below it cannot be in the top k. Every other row is scored
exactly (float64 over its stored values) and ranked: the answer is exact, not approximate.
The bounds also carry a margin for float32 rounding of the prefix product (Higham's gamma_n).

Cauchy-Schwarz is loose for the noise part of real embeddings (isotropic noise spreads over
every dimension), so when many rows survive, a second bound narrows them: every unit row is
also kept as int8 codes c with a per-row scale s and the exact norm of its rounding error e
(x = s c + e). With the query split as q = t1 d1 + t2 d2 + f (two int8 terms and a remainder),

    x . q = s (t1 c.d1 + t2 c.d2) + s c.f + e.q,   |s c.f| <= s||c|| ||f||,  |e.q| <= ||e|| ||q||

where c.d1 and c.d2 are exact int32 products (`torch._int_mm`, 1 byte per value read), and
||e|| is about 1% of a unit row at 4096-d. On isotropic data (the worst case) the prefix prunes
nothing and the int8 pass reads a quarter of a float32 scan's bytes.

Rows may be float16 or float32 and may be a memory map: only candidate rows are read, so the
stored matrix never has to be resident. An index is saved to a folder of `.npy` files and
loaded memory-mapped, so a built index is never built again (see `engine`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from storage.pages import drop_pages, read_rows

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the files' meaning changes; older folders are rebuilt
BASIS_SAMPLE_ROWS = 4096  # rows the principal directions are fitted on
CHUNK_ROWS = 2048  # rows per step of a build (float64 temporaries: about 70 MB each at 4096-d) or a rank count
RERANK_ROWS = 64  # more prefix survivors than this: narrow them with the int8 codes (4x fewer bytes) first
FULL_PASS_FRACTION = 0.5  # more survivors than this share: one int8 pass over every row (no gather)
PREFIX_RECHECK = 16  # while the prefix prunes too little, it is tried again every this many queries
_U32 = 2.0 ** -24  # float32 unit roundoff


def prefix_dims(dim: int) -> int:
    """p for a dimension: all of a small one; else an eighth, 32 to 256 (256 of 4096 reads 1/16)."""
    return dim if dim <= 64 else int(min(256, max(32, dim // 8)))


def _float32_margin(terms: int, query_norm: float) -> float:
    """An upper bound on the float32 rounding error of a `terms`-long dot product of a unit row
    with the query (inputs rounded to float32 too), plus slack for float64 bookkeeping."""
    return (terms + 4) * _U32 * query_norm * 1.01 + 1e-7


def _survivors(lower: np.ndarray, upper: np.ndarray, k: int) -> np.ndarray:
    """Positions whose upper bound reaches the k-th largest lower bound (all, when k >= n)."""
    n = len(lower)
    if k >= n:
        return np.arange(n)
    kth = np.partition(lower, n - k)[n - k]
    return np.flatnonzero(upper >= kth)


def _fit_basis(rows: np.ndarray, scale: np.ndarray, p: int, seed: int = 0) -> np.ndarray:
    """(D, p) float64 orthonormal columns spanning the top principal directions of a row sample.

    Any orthonormal basis keeps the search exact; a good one only makes it prune more.
    """
    n, dim = rows.shape
    if p >= dim:
        return np.eye(dim)
    take = np.sort(np.random.default_rng(seed).choice(n, min(n, BASIS_SAMPLE_ROWS), replace=False))
    sample = np.asarray(rows[take], dtype=np.float32) * scale[take, None].astype(np.float32)
    if len(sample) > p:
        from sklearn.utils.extmath import randomized_svd

        _, _, vt = randomized_svd(sample, p, n_iter=4, random_state=seed)
    else:  # fewer sampled rows than directions: they span what they span, the rest is random
        vt = np.linalg.svd(sample, full_matrices=False)[2]
        extra = np.random.default_rng(seed).normal(size=(p - len(vt), dim))
        vt = np.vstack([vt, extra])
    q, _ = np.linalg.qr(vt.T.astype(np.float64))  # orthonormal to float64 precision
    return np.ascontiguousarray(q[:, :p])


@dataclass
class PrefixIndex:
    """Candidates' rows with their prefix and residual norms; row i belongs to item_ids[i]."""

    item_ids: np.ndarray  # (N,) str, the order of `rows`
    rows: np.ndarray  # (N, D) float16/float32 as stored (any length), may be a memmap
    scale: np.ndarray  # (N,) float64: 1 / ||row|| (0 for a zero row), so a score is a cosine
    basis: np.ndarray  # (D, p) float64, orthonormal columns
    prefix: np.ndarray  # (N, p) float32: unit rows on the basis
    residual: np.ndarray  # (N,) float64: ||unit row - its part on the basis||, rounded up
    codes: np.ndarray  # (N, D) int8: unit row / code_scale, rounded
    code_scale: np.ndarray  # (N,) float64
    code_norm: np.ndarray  # (N,) float64: code_scale * ||codes||
    code_error: np.ndarray  # (N,) float64: ||unit row - code_scale * codes||, rounded up
    _row_of: dict[str, int] | None = field(default=None, init=False, repr=False)
    # When the prefix bound keeps most rows (isotropic data, or few dimensions), its pass only adds
    # cost: later queries go straight to the int8 pass, and every PREFIX_RECHECK-th one tries it again.
    _prefix_loose: bool = field(default=False, init=False, repr=False)
    _queries: int = field(default=0, init=False, repr=False)

    # -- building and files ----------------------------------------------------------------
    @classmethod
    def build(cls, item_ids: Sequence[str], rows: np.ndarray, p: int | None = None,
              progress: Callable[[int, int], None] | None = None) -> PrefixIndex:
        """Read `rows` once, in chunks of CHUNK_ROWS (a float16 memmap is converted a chunk at a time,
        and its pages are let go after each chunk: the build never keeps the matrix resident)."""
        n = len(item_ids)
        if rows.ndim != 2 or len(rows) != n:
            raise ValueError(f"expected ({n}, D) rows for {n} ids, got shape {rows.shape}")
        dim = int(rows.shape[1])
        p = min(prefix_dims(dim) if p is None else p, dim)
        scale = np.zeros(n)
        for a in range(0, n, CHUNK_ROWS):
            norms = np.linalg.norm(np.asarray(rows[a:a + CHUNK_ROWS], dtype=np.float64), axis=1)
            scale[a:a + CHUNK_ROWS] = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
            drop_pages(rows)
        basis = _fit_basis(rows, scale, p) if n else np.eye(dim)[:, :p]
        drop_pages(rows)  # the sample's rows are spread over the whole file
        prefix = np.empty((n, p), dtype=np.float32)
        residual, codes = np.empty(n), np.empty((n, dim), dtype=np.int8)
        code_scale, code_norm, code_error = np.empty(n), np.empty(n), np.empty(n)
        for a in range(0, n, CHUNK_ROWS):
            unit = np.asarray(rows[a:a + CHUNK_ROWS], dtype=np.float64) * scale[a:a + CHUNK_ROWS, None]
            part = unit @ basis  # (chunk, p)
            prefix[a:a + len(unit)] = part
            left = np.einsum("ij,ij->i", unit, unit) - np.einsum("ij,ij->i", part, part)
            residual[a:a + len(unit)] = np.sqrt(np.clip(left, 0.0, None)) + 1e-7  # rounded up
            step = np.abs(unit).max(axis=1) / 127
            step[step == 0] = 1.0  # a zero row: zero codes, zero error
            code = np.clip(np.rint(unit / step[:, None]), -127, 127)
            codes[a:a + len(unit)] = code
            code_scale[a:a + len(unit)] = step
            code_norm[a:a + len(unit)] = step * np.linalg.norm(code, axis=1)
            code_error[a:a + len(unit)] = np.linalg.norm(unit - step[:, None] * code, axis=1) * (1 + 1e-9) + 1e-12
            drop_pages(rows)
            if progress:
                progress(min(a + CHUNK_ROWS, n), n)
        return cls(np.asarray(item_ids, dtype=str), rows, scale, basis, prefix, residual, codes, code_scale,
                   code_norm, code_error)

    _FILES = ("item_ids", "scale", "basis", "prefix", "residual", "codes", "code_scale", "code_norm", "code_error")

    def save(self, folder: Path) -> None:
        """Write the index (not `rows`, which stay where they are stored) atomically: to a
        temporary folder renamed into place, so a reader never sees half of one."""
        folder = Path(folder)
        tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for name in self._FILES:
            np.save(tmp / f"{name}.npy", getattr(self, name))
        (tmp / "meta.json").write_text(json.dumps({"format": FORMAT, "n": len(self.item_ids), "dim": self.dim}))
        try:
            os.replace(tmp, folder)
        except OSError:  # another process saved the same index first: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path, rows: np.ndarray) -> PrefixIndex | None:
        """The saved index, memory-mapped, or None when absent or of another format."""
        folder = Path(folder)
        try:
            meta = json.loads((folder / "meta.json").read_text())
            if meta.get("format") != FORMAT or len(rows) < meta["n"] or rows.shape[1] != meta["dim"]:
                return None
            # "c": copy-on-write maps, writable in name only, as torch.from_numpy wants
            arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="c") for name in cls._FILES}
        except (OSError, ValueError, KeyError):
            return None
        return cls(rows=rows[:meta["n"]], **arrays)

    # -- properties --------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return int(self.rows.shape[1])

    @property
    def nbytes(self) -> int:
        """What the index itself holds (the rows stay on disk unless they are an in-memory array)."""
        own = sum(int(getattr(self, name).nbytes) for name in self._FILES)
        return own + (0 if isinstance(self.rows, np.memmap) else int(self.rows.nbytes))

    def row_of(self, item_id: str) -> int | None:
        if self._row_of is None:
            self._row_of = {str(item): i for i, item in enumerate(self.item_ids)}
        return self._row_of.get(item_id)

    # -- queries -----------------------------------------------------------------------------
    def exact_scores(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """float64 cosines of the given rows: the scores every answer is ranked by."""
        # A few hundred scattered rows per query: read from the file, not through the map, where each
        # fault maps its neighbours too and every run's whole matrix is resident within a few queries.
        picked = np.asarray(read_rows(self.rows, np.sort(rows)) if len(rows) else self.rows[:0], dtype=np.float64)
        order = np.argsort(np.argsort(rows, kind="stable"), kind="stable")  # back to the asked order
        exact = (picked @ np.asarray(query, dtype=np.float64))[order] * self.scale[rows]
        # to 12 decimals, so equal rows tie exactly whatever order the BLAS kernel summed them in
        return np.round(exact, 12)

    def _bounds(self, q: np.ndarray, pool: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(prefix score, slack) per pool row: the exact score lies within score +- slack."""
        q64 = np.asarray(q, dtype=np.float64)
        qp = q64 @ self.basis
        q_res = float(np.sqrt(max(q64 @ q64 - qp @ qp, 0.0))) + 1e-7
        prefix = self.prefix if pool is None else self.prefix[pool]
        residual = self.residual if pool is None else self.residual[pool]
        score = (prefix @ qp.astype(np.float32)).astype(np.float64)
        return score, residual * q_res + _float32_margin(prefix.shape[1], float(np.linalg.norm(q64)))

    def _code_bounds(self, q: np.ndarray, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(int8 score, slack) of the given rows (None: all) from their codes; see the module's note."""
        import torch

        q64 = np.asarray(q, dtype=np.float64)
        step1 = max(float(np.abs(q64).max()) / 127, 1e-300)
        d1 = np.clip(np.rint(q64 / step1), -127, 127)
        rest = q64 - step1 * d1
        step2 = max(float(np.abs(rest).max()) / 127, 1e-300)
        d2 = np.clip(np.rint(rest / step2), -127, 127)
        remainder = float(np.linalg.norm(rest - step2 * d2))
        query_codes = np.zeros((len(q64), 8), dtype=np.int8)  # _int_mm wants 8 columns or more
        query_codes[:, 0], query_codes[:, 1] = d1, d2
        codes = self.codes if rows is None else self.codes[rows]
        dots = torch._int_mm(torch.from_numpy(np.asarray(codes)), torch.from_numpy(query_codes))[:, :2].numpy()
        pick = slice(None) if rows is None else rows
        score = self.code_scale[pick] * (step1 * dots[:, 0] + step2 * dots[:, 1])
        slack = self.code_norm[pick] * remainder + self.code_error[pick] * float(np.linalg.norm(q64)) + 1e-9
        return score, slack

    def _int8_pass(self, q: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
        """Survivors of the int8 bound among `rows`, from one contiguous pass over every row's codes."""
        score, slack = self._code_bounds(q, None)
        if len(rows) != len(score):
            score, slack = score[rows], slack[rows]
        return rows[_survivors(score - slack, score + slack, k)]

    def _narrow(self, q: np.ndarray, rows: np.ndarray, keep: np.ndarray, k: int) -> np.ndarray:
        """The prefix survivors `rows[keep]`, narrowed by the int8 bound when there are many."""
        if len(keep) <= max(RERANK_ROWS, 4 * k):
            return rows[keep]
        if len(keep) > FULL_PASS_FRACTION * len(self.item_ids):
            return self._int8_pass(q, rows, k)
        sub = rows[keep]
        score, slack = self._code_bounds(q, sub)
        return sub[_survivors(score - slack, score + slack, k)]

    def _check(self, query: np.ndarray) -> np.ndarray:
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if q.shape[0] != self.dim:
            raise ValueError(f"query has {q.shape[0]} dimensions, the candidates {self.dim}")
        return q

    def top_k(self, query: np.ndarray, k: int, pool: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(row numbers, float64 scores) of the k best rows (of `pool`, ascending row numbers, when
        given), best first; equal scores in row order. Exact: the same as scoring every row."""
        q = self._check(query)
        rows = np.arange(len(self.item_ids)) if pool is None else np.asarray(pool, dtype=np.int64)
        if k <= 0 or len(rows) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        self._queries += 1
        if self._prefix_loose and self._queries % PREFIX_RECHECK:
            candidates = self._int8_pass(q, rows, k)
        else:
            score, slack = self._bounds(q, pool)
            keep = _survivors(score - slack, score + slack, k)
            self._prefix_loose = len(keep) > FULL_PASS_FRACTION * len(rows)
            candidates = self._narrow(q, rows, keep, k)
        exact = self.exact_scores(q, candidates)
        order = np.lexsort((candidates, -exact))[:k]  # by score, then by row for ties
        return candidates[order], exact[order]

    def rank(self, query: np.ndarray, row: int, pool: np.ndarray | None = None) -> int:
        """1-based rank of one row among the pool (rows scoring strictly higher, plus one)."""
        q = self._check(query)
        mine = float(self.exact_scores(q, np.array([row]))[0])
        score, slack = self._bounds(q, pool)
        rows = np.arange(len(self.item_ids)) if pool is None else np.asarray(pool, dtype=np.int64)
        surely = int(np.sum(score - slack > mine))
        unsure = rows[(score - slack <= mine) & (score + slack > mine)]
        if len(unsure) > RERANK_ROWS:  # narrowed by the int8 bound before any row is read in full
            score, slack = self._code_bounds(q, unsure)
            surely += int(np.sum(score - slack > mine))
            unsure = unsure[(score - slack <= mine) & (score + slack > mine)]
        higher = sum(int(np.sum(self.exact_scores(q, unsure[a:a + CHUNK_ROWS]) > mine))
                     for a in range(0, len(unsure), CHUNK_ROWS))
        return surely + higher + 1


@dataclass
class PoolIndex:
    """One candidate pool (a dataset's, or all) of a run's PrefixIndex: a selection of its rows."""

    index: PrefixIndex
    pool: np.ndarray | None  # ascending row numbers, or None for every row

    @property
    def item_ids(self) -> list[str]:
        ids = self.index.item_ids if self.pool is None else self.index.item_ids[self.pool]
        return [str(i) for i in ids]

    @property
    def dim(self) -> int:
        return self.index.dim

    @property
    def nbytes(self) -> int:
        return 64 + (0 if self.pool is None else int(self.pool.nbytes))

    def search(self, query: np.ndarray, k: int) -> list[tuple[str, float]]:
        rows, scores = self.index.top_k(query, k, self.pool)
        return [(str(self.index.item_ids[r]), float(s)) for r, s in zip(rows, scores, strict=True)]

    def rank(self, query: np.ndarray, item_id: str) -> int | None:
        row = self.index.row_of(item_id)
        if row is None or (self.pool is not None and not np.isin(row, self.pool)):
            return None
        return self.index.rank(query, row, self.pool)

    @classmethod
    def of_items(cls, index: PrefixIndex, item_ids: Sequence[str]) -> PoolIndex:
        rows = sorted({r for r in (index.row_of(i) for i in item_ids) if r is not None})
        return cls(index, np.asarray(rows, dtype=np.int64))
