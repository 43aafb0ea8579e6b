"""Percentile bootstrap intervals of ranking metrics from per-query gold ranks.

Queries are resampled within each dataset; an average over datasets averages the datasets'
resampled scores, resample by resample (the paper averages datasets, not queries). Every
resample of a dataset is one row of one index matrix (resamples x n), drawn from a generator
seeded by (seed, dataset, n): the same for every run, so two runs on the same queries get the
same resamples and their intervals are paired by construction, and a run's intervals do not
depend on what else the store holds. The index matrix becomes a count matrix W (how often each
query was drawn), so a resample's mean of every run and metric at once is one matrix product
W @ X / n instead of a gather per run.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.eval.metrics import per_query_metrics
from storage.schema import INTERVAL_COLUMNS

LEVEL = 0.95
RESAMPLES = 1000
SEED = 0
METRICS = ("precision@1", "recall@5", "mrr", "ndcg@5")
SPLITS = ("all", "in_domain", "ood")


def by_split(datasets: pd.DataFrame) -> Iterator[tuple[str, str, pd.DataFrame]]:
    """(meta_task, split, rows) for each meta-task's datasets: all of them, the in-domain ones, the OOD ones
    (splits with no dataset left out). `datasets` has meta_task and split ('in_domain' / 'ood') columns."""
    for meta_task, frame in datasets.groupby("meta_task", sort=False):
        for split in SPLITS:
            chosen = frame if split == "all" else frame[frame["split"] == split]
            if not chosen.empty:
                yield meta_task, split, chosen


def resample_indices(n: int, resamples: int = RESAMPLES, seed: int = SEED, key: str = "") -> np.ndarray:
    """The index matrix (resamples, n): resample b draws queries idx[b] (with replacement)."""
    rng = np.random.default_rng([seed, zlib.crc32(key.encode()), n])
    return rng.integers(0, n, size=(resamples, n))


def resample_weights(n: int, resamples: int = RESAMPLES, seed: int = SEED, key: str = "") -> np.ndarray:
    """(resamples, n) float64: how many times each query appears in each resample of `key`'s index matrix."""
    idx = resample_indices(n, resamples, seed, key)
    flat = (idx + (np.arange(resamples) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=resamples * n).reshape(resamples, n).astype(np.float64)


def percentile_interval(samples: np.ndarray, level: float = LEVEL, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) percentiles of bootstrap samples along `axis`: np.quantile's default (linear)
    method, computed from one sort, which is several times faster than np.quantile's partitions
    on a (resamples, pairs) array (bench/bench_stats.py)."""
    ordered = np.sort(samples, axis=axis)
    last = ordered.shape[axis] - 1
    bounds = []
    for q in ((1.0 - level) / 2.0, (1.0 + level) / 2.0):
        position = q * last
        below = int(np.floor(position))
        low = np.take(ordered, below, axis=axis)
        high = np.take(ordered, min(below + 1, last), axis=axis)
        bounds.append(low + (position - below) * (high - low))
    return bounds[0], bounds[1]


@dataclass
class DatasetSamples:
    """One dataset's resampled scores for the runs that share one set of its queries."""

    dataset: str
    meta_task: str
    in_domain: bool
    run_ids: list[str]
    row_idx: np.ndarray  # (n,) the shared queries
    values: np.ndarray  # (n, R, M) each query's metric values, in percent
    samples: np.ndarray  # (B, R, M) the resampled means

    @property
    def point(self) -> np.ndarray:  # (R, M): the scores themselves
        return self.values.mean(axis=0)


def _wide(rows: np.ndarray, runs: np.ndarray, gold: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row ids, run codes, (rows, runs) gold ranks with 0 where a run did not rank a row) of one dataset."""
    row_ids, row_at = np.unique(rows, return_inverse=True)
    run_codes, run_at = np.unique(runs, return_inverse=True)
    wide = np.zeros((len(row_ids), len(run_codes)), dtype=np.int64)
    wide[row_at, run_at] = gold
    return row_ids, run_codes, wide


def dataset_samples(ranks: pd.DataFrame, resamples: int = RESAMPLES, seed: int = SEED,
                    metrics: Sequence[str] = METRICS) -> Iterator[DatasetSamples]:
    """Resampled scores per dataset from a ranks frame (run_id, dataset, meta_task, in_domain, row_idx,
    gold_rank). Runs of one dataset that ranked different queries (another eval limit) get their own
    group, resampled from their own rows. Datasets in name order, runs in run-id order."""
    datasets, dataset_names = pd.factorize(ranks["dataset"], sort=True)
    runs, run_names = pd.factorize(ranks["run_id"], sort=True)
    order = np.argsort(datasets, kind="stable")
    bounds = np.searchsorted(datasets[order], np.arange(len(dataset_names) + 1))
    row_idx, gold_rank = ranks["row_idx"].to_numpy(), ranks["gold_rank"].to_numpy()
    for d, dataset in enumerate(dataset_names):
        at = order[bounds[d]:bounds[d + 1]]
        row_ids, run_codes, wide = _wide(row_idx[at], runs[at], gold_rank[at])
        present = wide > 0
        patterns: dict[bytes, list[int]] = {}
        for j in range(present.shape[1]):
            patterns.setdefault(present[:, j].tobytes(), []).append(j)
        first = ranks.iloc[at[0]]
        for columns in patterns.values():
            rows = present[:, columns[0]]
            per_query = per_query_metrics(wide[rows][:, columns])  # (n, R) each
            values = np.stack([per_query[m] for m in metrics], axis=-1)  # (n, R, M)
            n = values.shape[0]
            weights = resample_weights(n, resamples, seed, str(dataset))
            samples = (weights @ values.reshape(n, -1) / n).reshape(resamples, len(columns), len(metrics))
            yield DatasetSamples(str(dataset), str(first["meta_task"]), bool(first["in_domain"]),
                                 [str(run_names[run_codes[j]]) for j in columns], row_ids[rows], values, samples)


def _rows(run_ids, scope, names, split, metrics, point, lower, upper, n_queries, n_datasets, level, resamples,
          seed) -> pd.DataFrame:
    """Interval rows for R runs x M metrics (point, lower, upper: (R, M))."""
    r, m = point.shape
    return pd.DataFrame({
        "run_id": np.repeat(run_ids, m), "scope": scope, "name": np.repeat(names, m), "split": split,
        "metric": np.tile(list(metrics), r), "value": point.ravel(), "lower": lower.ravel(), "upper": upper.ravel(),
        "level": level, "method": "bootstrap", "n_queries": np.repeat(np.broadcast_to(n_queries, r), m).astype(np.int64),
        "n_datasets": np.repeat(np.broadcast_to(n_datasets, r), m).astype(np.int64), "n_resamples": resamples, "seed": seed,
    })


def bootstrap_intervals(ranks: pd.DataFrame, resamples: int = RESAMPLES, seed: int = SEED, level: float = LEVEL,
                        metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """Interval rows (INTERVAL_COLUMNS) for every run in `ranks`: per dataset, and per meta-task
    average over all, in-domain and OOD datasets."""
    return intervals_from_samples(list(dataset_samples(ranks, resamples, seed, metrics)), resamples, seed, level,
                                  metrics)


def intervals_from_samples(groups: list[DatasetSamples], resamples: int = RESAMPLES, seed: int = SEED,
                           level: float = LEVEL, metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """`bootstrap_intervals` from resampled scores already made (shared with `pairwise.pairs_from_samples`)."""
    if not groups:
        return pd.DataFrame(columns=list(INTERVAL_COLUMNS))
    frames = []
    for g in groups:
        lower, upper = percentile_interval(g.samples, level)
        frames.append(_rows(g.run_ids, "dataset", [g.dataset] * len(g.run_ids), "all", metrics, g.point, lower,
                            upper, [len(g.row_idx)] * len(g.run_ids), 1, level, resamples, seed))
    frames += _average_rows(groups, resamples, seed, level, metrics)
    return pd.concat(frames, ignore_index=True)[list(INTERVAL_COLUMNS)]


def _average_rows(groups: list[DatasetSamples], resamples: int, seed: int, level: float,
                  metrics: Sequence[str]) -> list[pd.DataFrame]:
    """Meta-task averages: each run's datasets' resamples summed, then divided by its dataset count."""
    run_ids = sorted({r for g in groups for r in g.run_ids})
    col = {r: i for i, r in enumerate(run_ids)}
    frames = []
    for meta_task in sorted({g.meta_task for g in groups}):
        for split in SPLITS:
            chosen = [g for g in groups if g.meta_task == meta_task
                      and (split == "all" or g.in_domain == (split == "in_domain"))]
            if not chosen:
                continue
            total = np.zeros((resamples, len(run_ids), len(metrics)))
            point = np.zeros((len(run_ids), len(metrics)))
            count, queries = np.zeros(len(run_ids)), np.zeros(len(run_ids))
            for g in chosen:
                cols = [col[r] for r in g.run_ids]
                total[:, cols] += g.samples
                point[cols] += g.point
                count[cols] += 1
                queries[cols] += len(g.row_idx)
            has = count > 0
            mean = total[:, has] / count[has][None, :, None]
            lower, upper = percentile_interval(mean, level)
            frames.append(_rows([r for r, h in zip(run_ids, has, strict=True) if h], "average",
                                [meta_task] * int(has.sum()), split, metrics, point[has] / count[has][:, None],
                                lower, upper, queries[has], count[has], level, resamples, seed))
    return frames
