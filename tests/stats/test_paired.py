"""Paired comparisons: McNemar's exact p-values and Holm's correction checked against hand computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.stats.binomial import combined_interval, wilson_interval
from pipeline.stats.paired import holm, mcnemar_exact, paired_comparison, unpaired_comparison


@pytest.mark.parametrize(("b", "c", "expected"), [
    (0, 5, 2 * 0.5 ** 5),  # 0.0625: five discordant queries all one way are not enough
    (1, 9, 2 * 11 / 1024),  # P(X <= 1 | 10) = (1 + 10) / 1024
    (8, 2, 2 * 56 / 1024),  # (1 + 10 + 45) / 1024, symmetric in b and c
    (3, 3, 1.0),  # capped at 1
    (0, 0, 1.0),  # nothing discordant: no evidence
])
def test_mcnemar_exact_matches_hand_computed_p_values(b, c, expected):
    assert float(mcnemar_exact(b, c)) == pytest.approx(expected)


def test_holm_adjusts_step_down_and_keeps_order():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.06 for the last
    np.testing.assert_allclose(holm(np.array([0.01, 0.04, 0.03, 0.005])), [0.03, 0.06, 0.06, 0.02])
    # row-wise: 0.5 x 2 = 1.0 carries to 0.9; 0.01 x 2 = 0.02 = 0.02 x 1
    np.testing.assert_allclose(holm(np.array([[0.5, 0.9], [0.01, 0.02]])), [[1.0, 1.0], [0.02, 0.02]])


def test_wilson_and_combined_intervals_match_hand_computation():
    lower, upper = wilson_interval(np.array([50.0, 0.0]), np.array([100, 100]))
    np.testing.assert_allclose(lower, [40.383, 0.0], atol=1e-3)
    np.testing.assert_allclose(upper, [59.617, 3.6995], atol=1e-3)  # z^2 / (n + z^2) at 0 of 100
    mean, lo, hi = combined_interval(np.array([50.0, 50.0]), np.array([100, 100]))
    assert (mean, hi - mean) == (50.0, pytest.approx(1.959964 * np.sqrt(25 + 25) / 2))


def _ranks(datasets: dict[str, np.ndarray], ood: frozenset = frozenset()) -> pd.DataFrame:
    return pd.DataFrame([{"dataset": d, "meta_task": "vqa", "in_domain": d not in ood, "row_idx": i,
                          "gold_rank": int(r)} for d, ranks in datasets.items() for i, r in enumerate(ranks)])


def test_paired_comparison_counts_discordant_queries_and_corrects_across_datasets():
    # d1: A right on 30 queries B misses, B right on 0 A misses; d2: 5 one way, 5 the other
    a = {"d1": np.r_[np.ones(30), np.ones(20), 2 * np.ones(50)], "d2": np.r_[np.ones(5), 2 * np.ones(5), np.ones(90)]}
    b = {"d1": np.r_[2 * np.ones(30), np.ones(20), 2 * np.ones(50)], "d2": np.r_[2 * np.ones(5), np.ones(5),
                                                                                 np.ones(90)]}
    out = paired_comparison(_ranks(a), _ranks(b, ood=frozenset()), resamples=500)
    d = out.datasets.set_index("dataset")
    assert (d.loc["d1", "a_only"], d.loc["d1", "b_only"], d.loc["d1", "both_right"]) == (30, 0, 20)
    assert d.loc["d1", "diff"] == pytest.approx(30.0)
    assert d.loc["d1", "p_mcnemar"] == pytest.approx(2 * 0.5 ** 30)
    assert d.loc["d2", "p_mcnemar"] == 1.0 and d.loc["d2", "diff"] == 0
    assert d.loc["d1", "p_holm"] == pytest.approx(2 * 2 * 0.5 ** 30)  # the smaller of two p-values, times 2
    assert d["significant"].tolist() == [True, False]
    assert d.loc["d1", "lower"] > 0 and d.loc["d2", "lower"] < 0 < d.loc["d2", "upper"]
    avg = out.averages.set_index("split").loc["all"]
    assert avg["diff"] == pytest.approx(15.0) and avg["lower"] > 0 and avg["significant"]


def test_identical_runs_differ_by_exactly_nothing():
    ranks = _ranks({"d": np.random.default_rng(0).integers(1, 4, 200)})
    out = paired_comparison(ranks, ranks, resamples=200)
    row = out.datasets.iloc[0]
    assert (row["diff"], row["lower"], row["upper"], row["p_mcnemar"]) == (0, 0, 0, 1.0)


def test_paired_interval_is_narrower_than_the_unpaired_one_when_runs_agree():
    # B is A with 10 of 1000 queries flipped: paired, the difference is known tightly; unpaired, it is not
    rng = np.random.default_rng(0)
    ra = np.where(rng.random(1000) < 0.6, 1, 2)
    rb = ra.copy()
    rb[:10] = 2
    paired = paired_comparison(_ranks({"d": ra}), _ranks({"d": rb}), resamples=1000).datasets.iloc[0]
    sized = [pd.DataFrame({"dataset": ["d"], "meta_task": ["vqa"], "in_domain": [True],
                           "value": [(r == 1).mean() * 100], "n": [1000]}) for r in (ra, rb)]
    unpaired = unpaired_comparison(*sized).datasets.iloc[0]
    assert paired["diff"] == pytest.approx(unpaired["diff"])
    assert paired["upper"] - paired["lower"] < (unpaired["upper"] - unpaired["lower"]) / 3


def test_holm_leaves_tests_not_made_out_of_the_count():
    np.testing.assert_allclose(holm(np.array([0.01, np.nan, 0.04])), [0.02, np.nan, 0.04])


def test_all_pairs_at_once_agree_with_one_comparison_at_a_time():
    from pipeline.stats.pairwise import pairwise_tests

    rng = np.random.default_rng(5)
    runs = {run: {d: rng.integers(1, 3, 150) for d in ("d1", "d2", "d3")} for run in ("A", "B", "C")}
    frames = {run: _ranks(ds, ood=frozenset({"d3"})).assign(run_id=run) for run, ds in runs.items()}
    datasets, averages = pairwise_tests(pd.concat(frames.values()), resamples=300)
    assert len(datasets) == 3 * 3 and len(averages) == 3 * 3  # 3 pairs x (3 datasets | all, in-domain, OOD)
    one = paired_comparison(frames["A"], frames["C"], resamples=300)
    mine = datasets.query("run_a == 'A' and run_b == 'C'").set_index("dataset")
    theirs = one.datasets.set_index("dataset")
    for column in ("diff", "lower", "upper", "a_only", "b_only", "p_mcnemar", "p_holm"):
        np.testing.assert_allclose(mine[column].to_numpy(float), theirs.loc[mine.index, column].to_numpy(float))
    mine_avg = averages.query("run_a == 'A' and run_b == 'C'").set_index("split")
    theirs_avg = one.averages.set_index("split")
    for column in ("diff", "lower", "upper"):
        np.testing.assert_allclose(mine_avg[column].to_numpy(float),
                                   theirs_avg.loc[mine_avg.index, column].to_numpy(float))
