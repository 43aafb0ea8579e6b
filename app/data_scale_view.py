"""The paper's Figure 3: Precision@1 per meta-task against the number of training samples.

Pure functions (no Gradio): each model's zero-shot, data-scale checkpoint and final runs of
one source become a curve per meta-task, with the run's bootstrap interval where the store
has one (`v_intervals`), beside VLM2Vec's published full-scale result as a labelled reference
level (`storage.reference`). Each point links to the same run in the Alignment tab.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pandas as pd
import plotly.graph_objects as go

from app.figures import LAYOUT, PALETTES, message_figure
from storage.reference import REFERENCE_LABEL
from storage.vocabulary import META_TASKS, STAGES

METRIC = "precision@1"
SPLITS = {"all": "all datasets", "in_domain": "in-domain", "ood": "OOD"}
POINT_COLUMNS = ["source", "experiment", "model", "paradigm", "variant", "meta_task", "stage", "train_samples",
                 "run_id", "value", "lower", "upper", "n_datasets"]
REFERENCE_COLOUR = "#16a34a"


def data_scale_points(scores: pd.DataFrame, intervals: pd.DataFrame, source: str, split: str = "all",
                      variant: str = "default") -> pd.DataFrame:
    """One row per (model, meta-task, run): the run's mean P@1 over the meta-task's datasets of `split`.

    Runs without a training-sample count (the paper's published rows) have no place on the
    x axis and are left out. Rows are ordered by model, meta-task, then training samples.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    rows = scores[(scores["source"] == source) & (scores["metric"] == METRIC) & (scores["variant"] == variant)
                  & scores["stage"].isin(STAGES) & scores["train_samples"].notna()]
    if split != "all":
        rows = rows[rows["in_domain"] == (split == "in_domain")]
    if rows.empty:
        return pd.DataFrame(columns=POINT_COLUMNS)
    keys = ["source", "experiment", "model", "paradigm", "variant", "meta_task", "stage", "train_samples", "run_id"]
    points = (rows.assign(experiment=rows["experiment"].fillna(""))
              .groupby(keys, as_index=False, dropna=False)
              .agg(value=("value", "mean"), n_datasets=("dataset", "nunique")))
    ci = _average_intervals(intervals, split)
    points = points.merge(ci, on=["run_id", "meta_task"], how="left")
    stage_rank = points["stage"].map({s: i for i, s in enumerate(STAGES)})
    points = points.assign(_rank=stage_rank).sort_values(["model", "experiment", "meta_task", "train_samples", "_rank"])
    return points.drop(columns="_rank").reset_index(drop=True)[POINT_COLUMNS]


def _average_intervals(intervals: pd.DataFrame, split: str) -> pd.DataFrame:
    if intervals is None or intervals.empty:
        return pd.DataFrame(columns=["run_id", "meta_task", "lower", "upper"])
    ci = intervals[(intervals["scope"] == "average") & (intervals["metric"] == METRIC) & (intervals["split"] == split)]
    return ci[["run_id", "meta_task", "lower", "upper"]].drop_duplicates(["run_id", "meta_task"])


def curve_name(points: pd.DataFrame) -> pd.Series:
    """A curve per (experiment, model): the model's name, plus the experiment when a source holds several."""
    several = points["experiment"].nunique() > 1
    return points["model"] + (" [" + points["experiment"] + "]" if several else "")


def data_scale_figure(points: pd.DataFrame, reference: pd.DataFrame | None = None,
                      title: str = "Precision@1 against training samples") -> go.Figure:
    """One panel per meta-task; a line per model (blue hues AR, orange diffusion), error bars where an
    interval exists, and the reference level as a dashed green line labelled as what it is.

    Panels are laid out by hand (axis domains) rather than with make_subplots: several times
    faster, and the figure is rebuilt on every filter change."""
    if points.empty:
        return message_figure("No runs with training stages in this source: pick another.")
    tasks = [t for t in META_TASKS if t in set(points["meta_task"])]
    points = points.assign(curve=curve_name(points))
    colours = _curve_colours(points)
    span = [points["train_samples"].min(), points["train_samples"].max()]
    traces, layout, gap = [], {}, 0.06
    width = (1 - gap * (len(tasks) - 1)) / len(tasks)
    for i, task in enumerate(tasks):
        axis = "" if i == 0 else str(i + 1)
        x, y = f"x{axis}", f"y{axis}"
        left = i * (width + gap)
        layout[f"xaxis{axis}"] = dict(domain=[left, left + width], anchor=y, title="training samples",
                                      rangemode="tozero")
        layout[f"yaxis{axis}"] = dict(anchor=x, rangemode="tozero", title="Precision@1 (%)" if i == 0 else None)
        layout.setdefault("annotations", []).append(dict(text=f"<b>{task}</b>", x=left + width / 2, y=1.02,
                                                         xref="paper", yref="paper", showarrow=False,
                                                         xanchor="center", yanchor="bottom"))
        for curve, group in points[points["meta_task"] == task].groupby("curve", sort=True):
            has_ci = group["lower"].notna()
            traces.append(go.Scatter(
                x=group["train_samples"], y=group["value"], xaxis=x, yaxis=y, mode="lines+markers", name=curve,
                legendgroup=curve, showlegend=i == 0, line=dict(color=colours[curve]),
                error_y=dict(type="data", symmetric=False, array=(group["upper"] - group["value"]).where(has_ci),
                             arrayminus=(group["value"] - group["lower"]).where(has_ci), thickness=1),
                customdata=group[["stage", "lower", "upper"]].to_numpy(),
                hovertemplate=(f"<b>{curve}</b><br>{task}, %{{customdata[0]}} at %{{x}} samples<br>"
                               "P@1 %{y:.1f} (95% interval %{customdata[1]:.1f} to %{customdata[2]:.1f})"
                               "<extra></extra>")))
        if reference is not None and task in set(reference["meta_task"]):
            row = reference[reference["meta_task"] == task].iloc[0]
            traces.append(go.Scatter(
                x=span, y=[row["value"]] * 2, xaxis=x, yaxis=y, mode="lines", name=row["label"],
                line=dict(color=REFERENCE_COLOUR, dash="dash"), legendgroup="reference", showlegend=i == 0,
                hovertemplate=f"{row['label']}: {row['value']:.1f}<br>a deviation from these runs' setup<extra></extra>"))
    layout.update({**LAYOUT, "margin": dict(l=60, r=20, t=70, b=40), "legend": dict(orientation="h", y=-0.2)})
    return go.Figure(data=traces, layout=dict(layout, title=title, height=460))


def _curve_colours(points: pd.DataFrame) -> dict[str, str]:
    colours = {}
    for paradigm, group in points.drop_duplicates("curve").groupby("paradigm", sort=False):
        palette = PALETTES.get(paradigm, PALETTES["baseline"])
        for i, curve in enumerate(sorted(group["curve"])):
            colours[curve] = palette[i % len(palette)]
    return colours


def alignment_links(projected: pd.DataFrame) -> dict[str, str]:
    """run_id -> a link to the run's map in the Alignment tab (its first mapped dataset and method)."""
    if projected is None or projected.empty:
        return {}
    maps = projected.assign(experiment=projected["experiment"].fillna(""), variant=projected["variant"].fillna(""))
    # The Alignment tab's lineage key: model|experiment|variant|train task, where a zero-shot run takes
    # the train task of its lineage's trained runs on the same map ('' while none is mapped yet).
    lineage = ["dataset", "method", "model", "experiment", "variant"]
    task = maps["train_task"].fillna(maps.groupby(lineage)["train_task"].transform("first")).fillna("")
    maps = maps.assign(key=maps["model"] + "|" + maps["experiment"] + "|" + maps["variant"] + "|" + task)
    first = maps.sort_values(["run_id", "dataset", "method"]).drop_duplicates("run_id")
    return {r.run_id: "?" + urlencode({"tab": "alignment", "dataset": r.dataset, "method": r.method,
                                       "model_a": r.key, "stage_a": r.run_id})
            for r in first.itertuples()}


def points_table(points: pd.DataFrame, links: dict[str, str] | None = None) -> pd.DataFrame:
    """The figure's numbers, one row per point, with a link to its Alignment map where one exists."""
    if points.empty:
        return pd.DataFrame(columns=["model", "meta-task", "stage", "training samples", "P@1", "95% interval", "map"])
    interval = [f"{lo:.1f} to {hi:.1f}" if pd.notna(lo) else "" for lo, hi in zip(points["lower"], points["upper"],
                                                                                  strict=True)]
    links = links or {}
    return pd.DataFrame({"model": curve_name(points), "meta-task": points["meta_task"], "stage": points["stage"],
                         "training samples": points["train_samples"].astype(int), "P@1": points["value"].round(1),
                         "95% interval": interval,
                         "map": [f"[open]({links[r]})" if r in links else "" for r in points["run_id"]]})


def reference_note(reference: pd.DataFrame) -> str:
    if reference.empty:
        return ""
    values = ", ".join(f"{r.meta_task} {r.value:.1f}" for r in reference.itertuples())
    return (f"Dashed green: **{REFERENCE_LABEL}** ({reference['backbone'].iloc[0]}: {values}). Deviation: "
            f"a 7B model trained on all of MMEB's training split, not these runs' models or data; it marks the "
            f"level full-scale training reaches, not a comparable point. Source: {reference['source'].iloc[0]}.")
