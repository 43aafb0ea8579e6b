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

from app.tables import ID_COLS, best_mask, value_columns
from pipeline.stats.paired import ALPHA, holm

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


def cell_intervals(scores: pd.DataFrame, intervals: pd.DataFrame) -> pd.DataFrame:
    """`scores` (one row per series, dataset and metric) plus each score's `lower`, `upper` and `method`."""
    wanted = intervals[intervals["scope"] == "dataset"][["run_id", "dataset", "metric", "lower", "upper", "method"]]
    return scores.merge(wanted, on=["run_id", "dataset", "metric"], how="left")


def interval_table(table: pd.DataFrame, scores: pd.DataFrame, intervals: pd.DataFrame) -> pd.DataFrame:
    """The Per-dataset table (app.tables.per_dataset_table of `scores`) with each cell as text:
    'value [lower, upper]', or 'value [no interval]'."""
    cols = value_columns(table)
    if table.empty or not cols:
        return table
    name_col = "source_label" if scores["source"].nunique() > 1 else "label"
    cells = cell_intervals(scores, intervals)
    cells["split"] = np.where(cells["in_domain"], "in-domain", "OOD")
    cells["text"] = [f"{v:.1f} [{lo:.1f}, {hi:.1f}]" if pd.notna(lo) else f"{v:.1f} [no interval]"
                     for v, lo, hi in zip(cells["value"], cells["lower"], cells["upper"], strict=True)]
    wide = cells.pivot_table(index=ID_COLS, columns=name_col, values="text", aggfunc="last")
    out = table[ID_COLS].merge(wide.reset_index(), on=ID_COLS, how="left")
    out = out.reindex(columns=[*ID_COLS, *cols]).fillna("–")
    out["best"] = table["best"].to_numpy()
    return out


def style_text_best(text_table: pd.DataFrame, numbers: pd.DataFrame):
    """`interval_table`'s text for display, each row's best (by `numbers`) in bold on a tint, as style_best."""
    cols = value_columns(numbers)
    styler = text_table.style
    if not cols or text_table.empty:
        return styler
    css = best_mask(numbers).replace({True: "font-weight: bold; background-color: #dbeafe", False: ""})
    return styler.apply(lambda _: css.set_axis(text_table.index), axis=None, subset=cols)


def delta_significance(delta: pd.DataFrame, scores: pd.DataFrame, series_a: str, series_b: str,
                       compare: Callable[..., tuple] | None, metric: str) -> tuple[pd.DataFrame, str]:
    """`delta` (app.tables.delta_table: b - a) plus the interval of b - a, the test's p, its Holm-corrected p
    across the delta's datasets, and `real` (survives Holm at 0.05); and a sentence saying how."""
    out = delta.assign(lower=np.nan, upper=np.nan, p=np.nan)
    if compare is None or delta.empty:
        return out.assign(p_holm=np.nan, real=False), "no test: the store could not be read"
    runs = scores[scores["metric"] == metric].set_index(["series", "dataset"])["run_id"]
    hows = set()
    for (run_b, run_a), rows in out.groupby([out["dataset"].map(lambda d: runs.get((series_b, d))),
                                             out["dataset"].map(lambda d: runs.get((series_a, d)))]):
        try:
            comparison, how = compare(run_b, run_a, metric)  # b - a, as the delta
        except ValueError as exc:
            hows.add(f"not tested: {exc}")
            continue
        hows.add(how.split(";")[0])
        found = comparison.datasets.set_index("dataset")
        p_col = "p_mcnemar" if "p_mcnemar" in found else "p_normal"
        for i in rows.index:
            d = out.at[i, "dataset"]
            if d in found.index:
                out.loc[i, ["lower", "upper", "p"]] = [found.at[d, "lower"], found.at[d, "upper"], found.at[d, p_col]]
    tested = out["p"].notna()
    out["p_holm"] = np.nan
    if tested.any():
        out.loc[tested, "p_holm"] = holm(out.loc[tested, "p"].to_numpy())
    out["real"] = out["p_holm"] <= ALPHA
    return out, "; ".join(sorted(hows))
