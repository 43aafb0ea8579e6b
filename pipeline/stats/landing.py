"""Intervals into the store, and comparisons out of it: the glue between `pipeline.stats` and storage.

`store_intervals` runs when a run lands (ExperimentRunner), after the paper's numbers are
imported, and from `vlmembed stats`. Runs with per-query ranks get bootstrap intervals; runs
without (the paper's) get intervals computed from each dataset's eval size n.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd

from pipeline.stats.binomial import binomial_intervals
from pipeline.stats.bootstrap import LEVEL, RESAMPLES, SEED, bootstrap_intervals
from pipeline.stats.paired import Comparison, paired_comparison, unpaired_comparison
from storage import StoreReader, StoreWriter
from storage.intervals import ranks_frame, replace_intervals, sized_scores

log = logging.getLogger(__name__)


def compute_intervals(store: StoreReader | StoreWriter, run_ids: Sequence[str] | None = None,
                      resamples: int = RESAMPLES, seed: int = SEED, level: float = LEVEL) -> pd.DataFrame:
    """Interval rows for `run_ids` (default: every complete run): bootstrap where ranks exist, else from n."""
    ranked = bootstrap_intervals(ranks_frame(store, run_ids), resamples, seed, level)
    sized = binomial_intervals(sized_scores(store, run_ids), level)
    frames = [f for f in (ranked, sized) if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else ranked


def store_intervals(writer: StoreWriter, run_ids: Sequence[str] | None = None, resamples: int = RESAMPLES,
                    seed: int = SEED, level: float = LEVEL) -> int:
    """Compute and replace the intervals of `run_ids` (default: every complete run); returns the row count."""
    rows = compute_intervals(writer, run_ids, resamples, seed, level)
    ids = list(run_ids) if run_ids is not None else sorted(set(rows["run_id"]))
    n = replace_intervals(writer, ids, rows)
    log.debug("stored %d intervals for %d runs", n, len(ids))
    return n


def compare_runs(reader: StoreReader | StoreWriter, run_a: str, run_b: str, metric: str = "precision@1",
                 resamples: int = RESAMPLES, seed: int = SEED, level: float = LEVEL) -> tuple[Comparison, str]:
    """(comparison of A - B, how it was made): paired on shared queries when both runs have ranks, else
    unpaired from each dataset's n (Precision@1 only). Raises ValueError when they share no dataset."""
    ranks = ranks_frame(reader, [run_a, run_b])
    ranked = set(ranks["run_id"])
    if {run_a, run_b} <= ranked:
        comparison = paired_comparison(ranks[ranks["run_id"] == run_a], ranks[ranks["run_id"] == run_b], metric,
                                       resamples, seed, level)
        how = (f"paired: bootstrap of the difference on the shared queries ({resamples} resamples, seed {seed}); "
               "McNemar's exact test on Precision@1, Holm-corrected across datasets")
    else:
        if metric != "precision@1":
            raise ValueError(f"{metric}: a run without per-query ranks is compared on precision@1 only; "
                             "drop --metric or pick runs with ranks")
        scores = _sized_any(reader, [run_a, run_b])
        comparison = unpaired_comparison(scores[scores["run_id"] == run_a], scores[scores["run_id"] == run_b], level)
        how = ("unpaired: at least one run has no per-query ranks (the paper's numbers), so intervals are "
               "computed from each dataset's eval size n (normal, binomial variances), not from the queries; "
               "z-test p-values, Holm-corrected across datasets")
    if comparison.datasets.empty:
        raise ValueError(f"{run_a} and {run_b} share no evaluated queries; pick two runs on the same datasets")
    return comparison, how


def _sized_any(reader: StoreReader | StoreWriter, run_ids: Sequence[str]) -> pd.DataFrame:
    """Precision@1 with n for runs with or without ranks (a ranked run's n is its query count)."""
    sized = sized_scores(reader, run_ids)
    ranks = ranks_frame(reader, run_ids)
    if ranks.empty:
        return sized
    ranked = (ranks.assign(right=(ranks["gold_rank"] == 1) * 100.0)
              .groupby(["run_id", "dataset", "meta_task", "in_domain"], as_index=False)
              .agg(value=("right", "mean"), n=("right", "size")))
    return pd.concat([sized, ranked], ignore_index=True)


def import_paper_with_intervals(writer: StoreWriter) -> int:
    """`storage.paper_import.import_paper`, then the paper runs' intervals from n; returns the number of runs."""
    from storage.paper import paper_runs
    from storage.paper_import import import_paper

    n = import_paper(writer)
    store_intervals(writer, [r.run_id for r in paper_runs()])
    return n
