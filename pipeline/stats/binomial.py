"""Intervals for a percentage known only with its eval size n (the paper prints no per-query results).

A dataset's Precision@1 is k of n queries right, so its uncertainty follows from n alone: the
Wilson score interval (good near 0 and 100, where the normal one leaves [0, 100]). An average
over datasets combines their binomial variances (the datasets are independent samples), and a
difference of two models is unpaired: nothing says which queries each got right.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from pipeline.stats.bootstrap import INTERVAL_COLUMNS, by_split


def z_value(level: float) -> float:
    return float(norm.ppf(0.5 + level / 2))


def wilson_interval(percent: np.ndarray, n: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) in percent of the Wilson score interval for `percent` of `n` trials."""
    p = np.asarray(percent, dtype=np.float64) / 100.0
    n = np.asarray(n, dtype=np.float64)
    z = z_value(level)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (centre - half) * 100.0, (centre + half) * 100.0


def binomial_variance(percent: np.ndarray, n: np.ndarray) -> np.ndarray:
    """The variance (in percent squared) of a percentage of n independent queries."""
    p = np.asarray(percent, dtype=np.float64) / 100.0
    return p * (1 - p) / np.asarray(n, dtype=np.float64) * 1e4


def combined_interval(percents: np.ndarray, ns: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, lower, upper) of the mean of independent per-dataset percentages: Var = sum(var_i) / k^2."""
    percents = np.asarray(percents, dtype=np.float64)
    mean = float(percents.mean())
    sd = float(np.sqrt(binomial_variance(percents, ns).sum()) / len(percents))
    z = z_value(level)
    return mean, max(0.0, mean - z * sd), min(100.0, mean + z * sd)


def normal_difference(a: np.ndarray, n_a: np.ndarray, b: np.ndarray, n_b: np.ndarray,
                      level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Unpaired difference a - b of percentages (per dataset): (diff, lower, upper, two-sided p)."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    sd = np.sqrt(binomial_variance(a, n_a) + binomial_variance(b, n_b))
    z = z_value(level)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(sd > 0, 2 * norm.sf(np.abs(diff) / sd), np.where(diff == 0, 1.0, 0.0))
    return diff, diff - z * sd, diff + z * sd, p


def binomial_intervals(scores: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Interval rows (bootstrap.INTERVAL_COLUMNS) for Precision@1 scores known only as percentages:
    `scores` has run_id, dataset, meta_task, in_domain, value (percent) and n (the eval size). Per dataset
    'wilson-n'; per meta-task average over all, in-domain and OOD datasets 'normal-n' (combined variances)."""
    scores = scores.dropna(subset=["n"])
    lower, upper = wilson_interval(scores["value"].to_numpy(), scores["n"].to_numpy(), level)
    rows = [pd.DataFrame({"run_id": scores["run_id"], "scope": "dataset", "name": scores["dataset"], "split": "all",
                          "metric": "precision@1", "value": scores["value"], "lower": lower, "upper": upper,
                          "method": "wilson-n", "n_queries": scores["n"], "n_datasets": 1})]
    averages = []
    splits = np.where(scores["in_domain"].astype(bool), "in_domain", "ood")
    for run_id, frame in scores.assign(split=splits).groupby("run_id", sort=True):
        for meta_task, split, chosen in by_split(frame):
            mean, lo, hi = combined_interval(chosen["value"].to_numpy(), chosen["n"].to_numpy(), level)
            averages.append({"run_id": run_id, "scope": "average", "name": meta_task, "split": split,
                             "metric": "precision@1", "value": mean, "lower": lo, "upper": hi, "method": "normal-n",
                             "n_queries": int(chosen["n"].sum()), "n_datasets": len(chosen)})
    rows.append(pd.DataFrame(averages))
    out = pd.concat(rows, ignore_index=True).assign(level=level, n_resamples=None, seed=None)
    return out[list(INTERVAL_COLUMNS)]
