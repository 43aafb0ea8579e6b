"""Intervals and paired tests for a whole store: 50 runs x 32 datasets x 1,000 queries, 1,000 resamples.

    python bench/bench_stats.py [--runs 50] [--datasets 32] [--queries 1000] [--resamples 1000]
                                [--naive-cells 3]

A store is written through StoreWriter (random gold ranks, 4 meta-task-like groups of datasets,
half of them OOD). Timed, in one process with 2 BLAS threads: reading the ranks
(`storage.intervals.ranks_frame`), one bootstrap of every run and dataset (`dataset_samples`:
4 metrics), every run's intervals from it (`intervals_from_samples`: per dataset and per
meta-task average over all / in-domain / OOD datasets), and the paired tests of every pair of
runs (`pairs_from_samples`: 1,225 pairs x 32 datasets, bootstrap interval of the Precision@1
difference, McNemar's exact test, Holm across datasets, averages).

The naive side is a per-sample Python loop over the same index matrices (resample b of a dataset
sums x[idx[b, k]] for k = 1..n, one query at a time), so its numbers are asserted equal to the
vectorised ones. It is far too slow for the whole store, so it runs on `--naive-cells` (run, dataset)
cells and `--naive-cells` (pair, dataset) cells, and its whole-store time is that per-cell time
times the number of cells (reported as an extrapolation). Target: the vectorised whole <= 10 s.
Results go to bench/results/stats.json.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")  # the target is "on 2 cores": before numpy loads BLAS
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("MKL_NUM_THREADS", "2")

import argparse  # noqa: E402 - after the thread settings
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results" / "stats.json"
TARGET_S = 10.0

from storage.vocabulary import META_TASKS  # noqa: E402 - after sys.path


def build_store(path: Path, runs: int, datasets: int, queries: int, seed: int = 0) -> None:
    from storage import DatasetRecord, ModelRecord, RankRecord, RunRecord, StoreWriter

    rng = np.random.default_rng(seed)
    names = [f"bench-{d:02d}" for d in range(datasets)]
    with StoreWriter(path, fresh=True) as writer:
        writer.upsert_models([ModelRecord("bench", "bench", "diffusion", "tiny")])
        writer.upsert_datasets([DatasetRecord(n, "builtin", META_TASKS[d % 3], d % 2 == 0, n_eval=queries)
                                for d, n in enumerate(names)])
        for r in range(runs):
            skill = rng.uniform(0.2, 0.8)  # runs differ, so some pairs differ for real
            ranks = [RankRecord(n, i, int(g)) for n in names
                     for i, g in enumerate(np.where(rng.random(queries) < skill, 1, rng.integers(2, 20, queries)))]
            writer.add_run(RunRecord(run_id=f"bench:{r:02d}", source="pipeline", model="bench", label="bench",
                                     ranks=ranks))


def naive_interval(x: list[float], idx: np.ndarray, level: float) -> tuple[float, float]:
    """One (run, dataset) interval the slow way: each resample's mean built query by query."""
    n = len(x)
    means = []
    for row in idx.tolist():
        total = 0.0
        for k in row:
            total += x[k]
        means.append(total / n)
    means.sort()
    return float(np.quantile(means, (1 - level) / 2)), float(np.quantile(means, 1 - (1 - level) / 2))


def naive_pair(xa: list[float], xb: list[float], idx: np.ndarray, level: float) -> tuple[float, float, int, int]:
    """One (pair, dataset) test the slow way: the resampled difference query by query, then the discordant counts."""
    lower, upper = naive_interval([a - b for a, b in zip(xa, xb, strict=True)], idx, level)
    b = sum(1 for a, c in zip(xa, xb, strict=True) if a > 0 and c == 0)
    c = sum(1 for a, d in zip(xa, xb, strict=True) if a == 0 and d > 0)
    return lower, upper, b, c


def check_naive(ranks, intervals, pairs, cells: int, resamples: int, level: float) -> dict:
    """Time the naive loops on a few cells and assert they give the vectorised numbers."""
    from pipeline.eval.metrics import per_query_metrics
    from pipeline.stats.bootstrap import METRICS, SEED, resample_indices

    chosen = ranks[["run_id", "dataset"]].drop_duplicates().head(cells).itertuples(index=False)
    interval_s = []
    for run_id, dataset in chosen:
        gold = ranks[(ranks["run_id"] == run_id) & (ranks["dataset"] == dataset)]["gold_rank"].to_numpy()
        idx = resample_indices(len(gold), resamples, SEED, dataset)
        start = time.perf_counter()
        bounds = {m: naive_interval(per_query_metrics(gold)[m].tolist(), idx, level) for m in METRICS}
        interval_s.append(time.perf_counter() - start)
        mine = intervals.query("run_id == @run_id and name == @dataset").set_index("metric")
        for m, (lo, hi) in bounds.items():
            assert np.allclose([lo, hi], mine.loc[m, ["lower", "upper"]].to_numpy(float)), (run_id, dataset, m)
    pair_s = []
    for _, row in pairs.head(cells).iterrows():
        get = lambda run, d=row["dataset"]: ranks[(ranks["run_id"] == run) & (ranks["dataset"] == d)]  # noqa: E731
        xa = per_query_metrics(get(row["run_a"])["gold_rank"].to_numpy())["precision@1"].tolist()
        xb = per_query_metrics(get(row["run_b"])["gold_rank"].to_numpy())["precision@1"].tolist()
        idx = resample_indices(len(xa), resamples, SEED, row["dataset"])
        start = time.perf_counter()
        lo, hi, b, c = naive_pair(xa, xb, idx, level)
        pair_s.append(time.perf_counter() - start)
        assert np.allclose([lo, hi], [row["lower"], row["upper"]]) and (b, c) == (row["a_only"], row["b_only"])
    return {"interval_cell_s": float(np.mean(interval_s)), "pair_cell_s": float(np.mean(pair_s)),
            "cells_each": cells}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--datasets", type=int, default=32)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--naive-cells", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from pipeline.stats.bootstrap import (
        LEVEL,
        METRICS,
        SEED,
        bootstrap_intervals,
        dataset_samples,
        intervals_from_samples,
    )
    from pipeline.stats.pairwise import pairs_from_samples
    from storage import StoreReader
    from storage.intervals import ranks_frame

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "store.duckdb"
        start = time.perf_counter()
        build_store(path, args.runs, args.datasets, args.queries)
        write_s = time.perf_counter() - start
        reader = StoreReader(path)
        times = {}
        start = time.perf_counter()
        ranks = ranks_frame(reader)
        times["read_ranks_s"] = time.perf_counter() - start
        start = time.perf_counter()  # one bootstrap of every run and dataset, shared by intervals and pairs
        groups = list(dataset_samples(ranks, args.resamples, SEED, METRICS))
        times["resample_s"] = time.perf_counter() - start
        start = time.perf_counter()
        intervals = intervals_from_samples(groups, args.resamples, SEED, LEVEL, METRICS)
        times["intervals_s"] = time.perf_counter() - start
        start = time.perf_counter()
        pairs, pair_averages = pairs_from_samples(groups, METRICS)
        times["paired_tests_s"] = time.perf_counter() - start
        reader.close()
    # the split path gives what the one-call functions give
    alone = bootstrap_intervals(ranks[ranks["dataset"] == ranks["dataset"].iloc[0]], args.resamples)
    assert np.allclose(alone.query("scope == 'dataset'")["lower"].to_numpy(float),
                       intervals[intervals["name"] == ranks["dataset"].iloc[0]]["lower"].to_numpy(float))
    total = sum(times.values())
    n_pairs = args.runs * (args.runs - 1) // 2
    assert len(pairs) == n_pairs * args.datasets and len(intervals) > args.runs * args.datasets * 4
    naive = check_naive(ranks, intervals, pairs, args.naive_cells, args.resamples, LEVEL)
    naive_total = naive["interval_cell_s"] * args.runs * args.datasets + naive["pair_cell_s"] * n_pairs * args.datasets
    out = {
        "what": f"{args.runs} runs x {args.datasets} datasets x {args.queries} queries, {args.resamples} resamples: "
                f"intervals (4 metrics, datasets and averages) and paired tests of all {n_pairs} pairs",
        "target_s": TARGET_S,
        "vectorised": {**{k: round(v, 2) for k, v in times.items()}, "total_s": round(total, 2),
                       "interval_rows": len(intervals), "pair_dataset_rows": len(pairs),
                       "pair_average_rows": len(pair_averages)},
        "naive_per_sample_loop": {
            "interval_cell_s": round(naive["interval_cell_s"], 3), "pair_cell_s": round(naive["pair_cell_s"], 3),
            "cells_measured_each": naive["cells_each"], "same_bounds_asserted": True,
            "whole_store_s_extrapolated": round(naive_total, 0),
            "note": "measured on a few cells, times the number of cells; leaves out the averages"},
        "speedup_vs_naive": round(naive_total / total, 0),
        "meets_target": total <= TARGET_S,
        "store_write_s": round(write_s, 1),
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "cpu_count": os.cpu_count(), "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "machine": {"python": platform.python_version(), "numpy": np.__version__,
                    "processor": platform.processor() or platform.machine()},
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
