"""Every pair of runs at once: what `paired_comparison` gives for two runs, for a whole store.

Runs that ranked the same queries of a dataset share its resamples (`bootstrap.dataset_samples`),
so a pair's resampled difference is the difference of the two runs' resampled scores: no
second bootstrap. The discordant counts of all pairs come from one matrix product of the
Precision@1 indicators. Pairs are (i, j) with i < j in sorted run-id order, difference i - j.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipeline.stats.bootstrap import (
    LEVEL,
    RESAMPLES,
    SEED,
    DatasetSamples,
    dataset_samples,
    percentile_interval,
)
from pipeline.stats.paired import ALPHA, holm, mcnemar_exact

P_AT_1 = "precision@1"


def _pair_rows(g: DatasetSamples, level: float, index: dict[str, int], metric: int,
               p_at_1: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(one row per pair of g's runs, their resampled differences (P, B), their keys a * R + b, with a and b
    the runs' positions in `index`). Pairs are rows: gathering and sorting contiguous rows is 2-5x faster."""
    i, j = np.triu_indices(len(g.run_ids), k=1)
    scores = np.ascontiguousarray(g.samples[:, :, metric].T)  # (R, B) of the compared metric
    diff = scores[i] - scores[j]  # (P, B)
    lower, upper = percentile_interval(diff, level, axis=-1)
    right = (g.values[:, :, p_at_1] > 0).astype(np.float64)  # (n, R) Precision@1 indicators
    both = right.T @ right  # (R, R) queries both got right
    alone = right.sum(axis=0)[:, None] - both  # alone[i, j]: i right, j wrong
    point = g.point[:, metric]
    ids = np.asarray(g.run_ids)
    frame = pd.DataFrame({"run_a": ids[i], "run_b": ids[j], "dataset": g.dataset, "meta_task": g.meta_task,
                          "split": "in_domain" if g.in_domain else "ood", "n": len(g.row_idx),
                          "diff": point[i] - point[j], "lower": lower, "upper": upper,
                          "a_only": alone[i, j].astype(np.int64), "b_only": alone[j, i].astype(np.int64),
                          "p_mcnemar": mcnemar_exact(alone[i, j], alone[j, i])})
    position = np.array([index[r] for r in g.run_ids])
    return frame, diff, position[i] * len(index) + position[j]


Accumulator = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # pair keys, sum of diffs (P, B), points, count


def _accumulate(acc: Accumulator | None, keys: np.ndarray, diff: np.ndarray, point: np.ndarray) -> Accumulator:
    """Add one dataset's pair differences to a meta-task's running sums (pairs may differ between datasets)."""
    if acc is None:
        return keys, diff.copy(), point.copy(), np.ones(len(keys))
    old, total, points, count = acc
    if np.array_equal(old, keys):  # the usual case: the same pairs on every dataset
        total += diff
        points += point
        count += 1
        return acc
    union = np.union1d(old, keys)  # rare: runs that ranked other queries of some dataset
    at = np.searchsorted(union, old)
    grown = np.zeros((len(union), total.shape[1]))
    grown[at] = total
    total, points, count = grown, np.bincount(at, points, len(union)), np.bincount(at, count, len(union))
    where = np.searchsorted(union, keys)
    total[where] += diff
    points[where] += point
    count[where] += 1
    return union, total, points, count


def pairwise_tests(ranks: pd.DataFrame, metric: str = P_AT_1, resamples: int = RESAMPLES, seed: int = SEED,
                   level: float = LEVEL) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per pair and dataset, per pair and meta-task average) for every pair of runs in a ranks frame that
    share a dataset's queries; Holm across each pair's datasets; averages by bootstrap over datasets."""
    metrics = (metric,) if metric == P_AT_1 else (metric, P_AT_1)  # McNemar needs Precision@1 whatever the metric
    groups = list(dataset_samples(ranks, resamples, seed, metrics))
    return pairs_from_samples(groups, metrics, metric, level)


def pairs_from_samples(groups: list[DatasetSamples], metrics: Sequence[str], metric: str = P_AT_1,
                       level: float = LEVEL) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`pairwise_tests` from resampled scores already made (`metrics`: the metrics they hold, in order,
    Precision@1 among them); the store's intervals and its pairs then share one bootstrap."""
    frames: list[pd.DataFrame] = []
    sums: dict[tuple[str, str], Accumulator] = {}
    run_ids = sorted({r for g in groups for r in g.run_ids})
    index = {r: k for k, r in enumerate(run_ids)}
    for g in groups:
        if len(g.run_ids) < 2:
            continue
        frame, diff, keys = _pair_rows(g, level, index, list(metrics).index(metric), list(metrics).index(P_AT_1))
        frames.append(frame)
        # keys come sorted (g.run_ids and `index` are both in run-id order), as the accumulators keep them
        for split in ("all", frame["split"].iloc[0]):  # each dataset adds to its meta-task's 'all' and its split
            sums[(g.meta_task, split)] = _accumulate(sums.get((g.meta_task, split)), keys, diff,
                                                     frame["diff"].to_numpy())
    if not frames:
        return pd.DataFrame(), pd.DataFrame()
    datasets = pd.concat(frames, ignore_index=True)
    wide = datasets.pivot(index=["run_a", "run_b"], columns="dataset", values="p_mcnemar")
    adjusted = pd.DataFrame(holm(wide.to_numpy()), index=wide.index, columns=wide.columns).stack()
    datasets = datasets.join(adjusted.rename("p_holm"), on=["run_a", "run_b", "dataset"])
    datasets["significant"] = datasets["p_holm"] <= ALPHA
    return datasets, _pair_averages(sums, level, np.asarray(run_ids))


def _pair_averages(sums: dict[tuple[str, str], Accumulator], level: float, run_ids: np.ndarray) -> pd.DataFrame:
    out = []
    for (meta_task, split), (keys, total, points, count) in sums.items():
        mean = total / count[:, None]
        lower, upper = percentile_interval(mean, level, axis=-1)
        out.append(pd.DataFrame({"run_a": run_ids[keys // len(run_ids)], "run_b": run_ids[keys % len(run_ids)], "meta_task": meta_task, "split": split,
                                 "n_datasets": count.astype(np.int64), "diff": points / count, "lower": lower,
                                 "upper": upper, "significant": (lower > 0) | (upper < 0)}))
    return pd.concat(out, ignore_index=True).sort_values(["run_a", "run_b", "meta_task", "split"], ignore_index=True)
