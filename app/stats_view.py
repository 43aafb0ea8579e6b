"""Intervals for what the dashboard shows: pure functions over frames (no Gradio, no store).

`v_intervals` rows (from `storage.intervals.read_intervals`) are joined onto the Overview's
averages and the Per-dataset table; the AR-vs-diffusion gap gets its interval from a
comparison of the two runs behind it (`pipeline.stats.landing.compare_runs`, passed in as a
function so these stay testable without a store). Where a number has no interval, the
frames say why in `interval_note`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

NO_INTERVAL_STATS = "no interval stored: run `vlmembed stats`"
NO_INTERVAL_MIXED = "no interval: this series draws its datasets from several runs"
SPLIT_KEYS = {"all": "all", "in-domain": "in_domain", "OOD": "ood"}  # app split names -> v_intervals'


def run_per_average(scores: pd.DataFrame) -> pd.DataFrame:
    """(series, meta_task, run_id): the one run behind a series' meta-task average, NaN when several are."""
    runs = scores.groupby(["series", "meta_task"])["run_id"].agg(lambda r: r.iloc[0] if r.nunique() == 1 else None)
    return runs.rename("run_id").reset_index()


def averages_with_intervals(averages: pd.DataFrame, scores: pd.DataFrame, intervals: pd.DataFrame,
                            metric: str = "precision@1") -> pd.DataFrame:
    """`averages` (app.tables.meta_task_averages) plus run_id, `lower`/`upper` (all datasets),
    `in_domain_lower`/`_upper`, `ood_lower`/`_upper`, `method` and `interval_note`."""
    out = averages.merge(run_per_average(scores), on=["series", "meta_task"], how="left")
    wanted = intervals[(intervals["scope"] == "average") & (intervals["metric"] == metric)]
    for split, prefix in (("all", ""), ("in_domain", "in_domain_"), ("ood", "ood_")):
        part = wanted[wanted["split"] == split][["run_id", "meta_task", "lower", "upper", "method"]]
        part = part.rename(columns={"lower": f"{prefix}lower", "upper": f"{prefix}upper",
                                    "method": f"{prefix}method"})
        out = out.merge(part, on=["run_id", "meta_task"], how="left")
    out["method"] = out["method"].fillna("")
    out = out.drop(columns=["in_domain_method", "ood_method"])
    out["interval_note"] = np.where(out["run_id"].isna(), NO_INTERVAL_MIXED,
                                    np.where(out["lower"].isna(), NO_INTERVAL_STATS, ""))
    return out


def gap_with_intervals(gaps: pd.DataFrame, averages: pd.DataFrame,
                       compare: Callable[[str, str], tuple]) -> pd.DataFrame:
    """`gaps` (app.tables.paradigm_gap) plus `lower`, `upper`, `how`: the interval of best AR minus best
    diffusion, from `compare(ar_run, diffusion_run)` -> (Comparison, how); it ignores that the two were
    picked as the best (a selection the interval does not cover, said in `how`)."""
    runs = averages.set_index(["source", "meta_task", "label"])["run_id"]
    rows = []
    for gap in gaps.itertuples(index=False):
        ar_run = runs.get((gap.source, gap.meta_task, gap.ar_model))
        diff_run = runs.get((gap.source, gap.meta_task, gap.diffusion_model))
        lower = upper = np.nan
        how = NO_INTERVAL_MIXED
        if isinstance(ar_run, str) and isinstance(diff_run, str):
            try:
                comparison, how = compare(ar_run, diff_run)
            except ValueError as exc:  # no shared queries
                how = f"no interval: {exc}"
            else:
                match = comparison.averages[(comparison.averages["meta_task"] == gap.meta_task)
                                            & (comparison.averages["split"] == SPLIT_KEYS[gap.split])]
                if len(match):
                    lower, upper = float(match["lower"].iloc[0]), float(match["upper"].iloc[0])
                    how = how.split(":")[0] + " interval of the difference; the selection of the best is not in it"
        rows.append({"lower": lower, "upper": upper, "how": how})
    extra = pd.DataFrame(rows, columns=["lower", "upper", "how"], index=gaps.index)
    return pd.concat([gaps, extra], axis=1)


def error_bars(frame: pd.DataFrame, value: str, prefix: str = "") -> dict | None:
    """Plotly `error_y` for `value` with `{prefix}lower` / `{prefix}upper` columns, None without them."""
    if f"{prefix}lower" not in frame:
        return None
    lower, upper = frame[f"{prefix}lower"].astype(float), frame[f"{prefix}upper"].astype(float)
    return dict(type="data", symmetric=False, array=(upper - frame[value]).clip(lower=0).fillna(0).to_numpy(),
                arrayminus=(frame[value] - lower).clip(lower=0).fillna(0).to_numpy(), color="#334155", thickness=1.2,
                width=3)


def interval_text(lower: float, upper: float, note: str = "") -> str:
    """'95% CI 51.2-57.4' or the reason there is none (for hovers and table cells)."""
    if pd.isna(lower) or pd.isna(upper):
        return note or NO_INTERVAL_STATS
    return f"95% CI {lower:.1f} to {upper:.1f}"
