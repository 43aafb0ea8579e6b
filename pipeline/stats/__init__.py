"""Uncertainty for every stored score: bootstrap intervals from per-query ranks, intervals from the
eval size n where only a percentage is known (the paper), and paired comparisons of two runs.

`bootstrap`, `binomial` and `paired` are pure numpy/scipy (tested without a store); `landing`
reads ranks from the store and writes the `intervals` table through `storage.intervals`.
"""

from pipeline.stats.binomial import combined_interval, normal_difference, wilson_interval
from pipeline.stats.bootstrap import (
    LEVEL,
    RESAMPLES,
    SEED,
    bootstrap_intervals,
    percentile_interval,
    resample_weights,
)
from pipeline.stats.paired import holm, mcnemar_exact, paired_comparison

__all__ = [
    "LEVEL",
    "RESAMPLES",
    "SEED",
    "bootstrap_intervals",
    "combined_interval",
    "holm",
    "mcnemar_exact",
    "normal_difference",
    "paired_comparison",
    "percentile_interval",
    "resample_weights",
    "wilson_interval",
]
