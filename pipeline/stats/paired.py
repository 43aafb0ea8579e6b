"""Is a difference between two runs real? Paired tests on the queries both ranked.

Per dataset: a paired bootstrap interval of the difference (the same resampled queries for both
runs: `bootstrap.resample_weights` keyed by the dataset) and McNemar's exact test on
Precision@1 (only the discordant queries, one right and the other wrong, carry evidence);
McNemar's p-values are Holm-corrected across the datasets of one comparison. Per meta-task
average: the bootstrap interval of the mean difference and its two-sided bootstrap p-value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import binom

from pipeline.eval.metrics import per_query_metrics
from pipeline.stats.binomial import binomial_variance, normal_difference, z_value
from pipeline.stats.bootstrap import LEVEL, RESAMPLES, SEED, by_split, percentile_interval, resample_weights

ALPHA = 0.05


def mcnemar_exact(b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Two-sided exact McNemar p-value from the discordant counts b (A right, B wrong) and c (the reverse):
    2 * P(X <= min(b, c)) for X ~ Binomial(b + c, 1/2), capped at 1; 1 when nothing is discordant."""
    b, c = np.asarray(b), np.asarray(c)
    return np.minimum(1.0, 2.0 * binom.cdf(np.minimum(b, c), b + c, 0.5))


def holm(p: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values along the last axis (reject where adjusted <= alpha). NaN marks
    a test that was not made (a pair that shares no queries on that dataset): it is not counted and stays NaN."""
    p = np.asarray(p, dtype=np.float64)
    m = (~np.isnan(p)).sum(axis=-1, keepdims=True)
    order = np.argsort(p, axis=-1, kind="stable")  # NaN sorts last, so it never lowers a real test's multiplier
    ranked = np.take_along_axis(p, order, axis=-1) * (m - np.arange(p.shape[-1]))
    adjusted = np.minimum(1.0, np.maximum.accumulate(ranked, axis=-1))
    out = np.empty_like(adjusted)
    np.put_along_axis(out, order, adjusted, axis=-1)
    return out


def bootstrap_p(samples: np.ndarray) -> np.ndarray:
    """Two-sided percentile-bootstrap p-value of 'the difference is 0' along axis 0."""
    below = (samples <= 0).mean(axis=0)
    above = (samples >= 0).mean(axis=0)
    return np.minimum(1.0, 2.0 * np.minimum(below, above))


@dataclass
class Comparison:
    """Run A minus run B: per dataset (`datasets`) and per meta-task average (`averages`)."""

    metric: str
    datasets: pd.DataFrame
    averages: pd.DataFrame


def _shared(ranks_a: pd.DataFrame, ranks_b: pd.DataFrame) -> pd.DataFrame:
    keys = ["dataset", "row_idx"]
    return ranks_a.merge(ranks_b[[*keys, "gold_rank"]], on=keys, suffixes=("_a", "_b")).sort_values(keys)


def paired_comparison(ranks_a: pd.DataFrame, ranks_b: pd.DataFrame, metric: str = "precision@1",
                      resamples: int = RESAMPLES, seed: int = SEED, level: float = LEVEL) -> Comparison:
    """Compare two runs' ranks frames (dataset, meta_task, in_domain, row_idx, gold_rank) on their shared queries."""
    both = _shared(ranks_a, ranks_b)
    rows, samples = [], {}
    for dataset, frame in both.groupby("dataset", sort=True):
        ra, rb = frame["gold_rank_a"].to_numpy(), frame["gold_rank_b"].to_numpy()
        xa, xb = per_query_metrics(ra)[metric], per_query_metrics(rb)[metric]
        n = len(frame)
        diff = resample_weights(n, resamples, seed, str(dataset)) @ (xa - xb) / n  # (B,)
        samples[dataset] = diff
        lower, upper = percentile_interval(diff, level)
        a_right, b_right = ra == 1, rb == 1
        only_a, only_b = int((a_right & ~b_right).sum()), int((~a_right & b_right).sum())
        rows.append({"dataset": dataset, "meta_task": frame["meta_task"].iloc[0],
                     "split": "in_domain" if frame["in_domain"].iloc[0] else "ood", "n": n,
                     "a": xa.mean(), "b": xb.mean(), "diff": xa.mean() - xb.mean(), "lower": float(lower),
                     "upper": float(upper), "a_only": only_a, "b_only": only_b,
                     "both_right": int((a_right & b_right).sum()), "both_wrong": int((~a_right & ~b_right).sum()),
                     "p_mcnemar": float(mcnemar_exact(only_a, only_b))})
    datasets = pd.DataFrame(rows, columns=["dataset", "meta_task", "split", "n", "a", "b", "diff", "lower", "upper",
                                           "a_only", "b_only", "both_right", "both_wrong", "p_mcnemar"])
    datasets["p_holm"] = holm(datasets["p_mcnemar"].to_numpy()) if len(datasets) else []
    datasets["significant"] = datasets["p_holm"] <= ALPHA
    return Comparison(metric, datasets, _paired_averages(datasets, samples, level))


def _paired_averages(datasets: pd.DataFrame, samples: dict[str, np.ndarray], level: float) -> pd.DataFrame:
    rows = []
    for meta_task, split, chosen in by_split(datasets):
        mean = np.mean([samples[d] for d in chosen["dataset"]], axis=0)
        lower, upper = percentile_interval(mean, level)
        rows.append({"meta_task": meta_task, "split": split, "n_datasets": len(chosen),
                     "a": chosen["a"].mean(), "b": chosen["b"].mean(), "diff": chosen["diff"].mean(),
                     "lower": float(lower), "upper": float(upper), "p_bootstrap": float(bootstrap_p(mean)),
                     "significant": bool(lower > 0 or upper < 0)})
    return pd.DataFrame(rows, columns=["meta_task", "split", "n_datasets", "a", "b", "diff", "lower", "upper",
                                       "p_bootstrap", "significant"])


def unpaired_comparison(scores_a: pd.DataFrame, scores_b: pd.DataFrame, level: float = LEVEL) -> Comparison:
    """A - B from percentages and eval sizes only (dataset, meta_task, in_domain, value, n): for the paper's
    numbers, which say nothing of which queries each model got right. Normal intervals from the binomial
    variances; per-dataset z-test p-values, Holm-corrected."""
    both = scores_a.merge(scores_b[["dataset", "value", "n"]], on="dataset", suffixes=("_a", "_b"))
    both = both.sort_values("dataset")
    diff, lower, upper, p = normal_difference(both["value_a"], both["n_a"], both["value_b"], both["n_b"], level)
    datasets = pd.DataFrame({
        "dataset": both["dataset"], "meta_task": both["meta_task"],
        "split": np.where(both["in_domain"], "in_domain", "ood"), "n": np.minimum(both["n_a"], both["n_b"]),
        "a": both["value_a"], "b": both["value_b"], "diff": diff, "lower": lower, "upper": upper, "p_normal": p,
    }).reset_index(drop=True)
    datasets["p_holm"] = holm(datasets["p_normal"].to_numpy()) if len(datasets) else []
    datasets["significant"] = datasets["p_holm"] <= ALPHA
    variance = binomial_variance(both["value_a"], both["n_a"]) + binomial_variance(both["value_b"], both["n_b"])
    datasets["_var"] = np.asarray(variance)
    z = z_value(level)
    rows = []
    for meta_task, split, chosen in by_split(datasets):
        mean, sd = chosen["diff"].mean(), np.sqrt(chosen["_var"].sum()) / len(chosen)
        rows.append({"meta_task": meta_task, "split": split, "n_datasets": len(chosen), "a": chosen["a"].mean(),
                     "b": chosen["b"].mean(), "diff": mean, "lower": mean - z * sd, "upper": mean + z * sd,
                     "significant": bool(mean - z * sd > 0 or mean + z * sd < 0)})
    return Comparison("precision@1", datasets.drop(columns="_var"), pd.DataFrame(
        rows, columns=["meta_task", "split", "n_datasets", "a", "b", "diff", "lower", "upper", "significant"]))
