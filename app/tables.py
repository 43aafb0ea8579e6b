"""Pure table functions for the dashboard: DataFrames in, DataFrames out (no Gradio, no store).

The input is `v_scores` as `StoreReader.scores()` returns it, plus `finished_at` from `runs`.
A *series* is what one column of the per-dataset table stands for: one model under one
source, variant and stage (and training-sample count for checkpoints). The paper stores one
run per meta-task, so a paper series gathers three runs; a series never holds two values
for one dataset (the latest run wins).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from storage.vocabulary import COMPARED_PARADIGMS, PARADIGMS, SOURCES, STAGES, STORED_META_TASKS

SPLITS = {"all": None, "in-domain": True, "OOD": False}
ID_COLS = ["dataset", "meta_task", "split"]
DEFAULT_METRIC = "precision@1"


def no_rows() -> pd.DataFrame:
    """What an empty result shows (Gradio draws placeholder headers for a frame without columns)."""
    return pd.DataFrame({"(no rows)": pd.Series([], dtype="str")})


def _rank(values: pd.Series, order: Sequence[str]) -> pd.Series:
    return values.map({v: i for i, v in enumerate(order)}).fillna(len(order))


def _sorted(frame: pd.DataFrame, keys: Sequence[pd.Series]) -> pd.DataFrame:
    """`frame` ordered by several key Series (first key first), index reset."""
    order = pd.DataFrame({i: k.to_numpy() for i, k in enumerate(keys)}, index=frame.index)
    return frame.loc[order.sort_values(list(order.columns), kind="stable").index].reset_index(drop=True)


def add_series(scores: pd.DataFrame) -> pd.DataFrame:
    """Add `series` (a stable key), `label` (without source) and `source_label` columns.

    A series is (source, experiment, model, variant, stage), plus the sample count for a
    checkpoint: a final or zero-shot result is one series across meta-tasks even when each
    meta-task trained on a different number of samples. The experiment enters the label
    only when a source holds several.
    """
    df = scores.copy()
    experiment = df["experiment"].fillna("").astype("str") if "experiment" in df else pd.Series("", index=df.index)
    checkpoint = df["stage"] == "checkpoint"
    samples = df["train_samples"].where(checkpoint).map(lambda n: "" if pd.isna(n) else str(int(n)))
    df["series"] = (df["source"] + "|" + experiment + "|" + df["model"] + "|" + df["variant"] + "|" + df["stage"]
                    + "|" + samples)
    label = df["model"] + np.where(df["variant"] != "default", " [" + df["variant"] + "]", "")
    label += np.where(df["stage"] == "zero-shot", " (zero-shot)", "")
    label += samples.map(lambda n: f" @ {int(n):,} samples" if n else "")
    several = experiment.groupby(df["source"]).transform("nunique") > 1
    df["label"] = label + np.where(several & (experiment != ""), " · " + experiment, "")
    df["source_label"] = df["source"] + " · " + df["label"]
    return df


def series_catalogue(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per series, in display order: source, paradigm (AR first), model, variant, stage, samples."""
    cols = ["series", "source", "model", "paradigm", "variant", "stage", "train_samples", "label", "source_label"]
    cat = scores[cols].drop_duplicates("series").copy()
    cat["n_datasets"] = cat["series"].map(scores.groupby("series")["dataset"].nunique())
    cat["benchmark"] = cat["series"].map(scores.groupby("series")["benchmark"].agg(lambda b: ", ".join(sorted(set(b)))))
    return _sorted(cat, [_rank(cat["source"], SOURCES), _rank(cat["paradigm"], PARADIGMS), cat["model"],
                         cat["variant"] != "default", cat["variant"], _rank(cat["stage"], STAGES),
                         cat["train_samples"].astype("float").fillna(-1)])


def latest_per_cell(scores: pd.DataFrame) -> pd.DataFrame:
    """Keep one value per (series, dataset, metric): the run that finished last."""
    ordered = scores.sort_values(["finished_at", "run_id"], na_position="first", kind="stable")
    return ordered.drop_duplicates(["series", "dataset", "metric"], keep="last")


def filter_scores(scores: pd.DataFrame, *, sources: Sequence[str] | None = None, meta_task: str = "all",
                  split: str = "all", models: Sequence[str] | None = None, variants: Sequence[str] | None = None,
                  stages: Sequence[str] | None = None, metric: str = DEFAULT_METRIC) -> pd.DataFrame:
    """Rows matching every filter; an empty or missing list means no restriction."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    keep = scores["metric"] == metric
    if meta_task != "all":
        keep &= scores["meta_task"] == meta_task
    if SPLITS[split] is not None:
        keep &= scores["in_domain"] == SPLITS[split]
    for column, allowed in (("source", sources), ("model", models), ("variant", variants), ("stage", stages)):
        if allowed:
            keep &= scores[column].isin(list(allowed))
    return scores[keep]


def _dataset_order(frame: pd.DataFrame) -> pd.DataFrame:
    return _sorted(frame, [_rank(frame["meta_task"], STORED_META_TASKS), frame["split"] != "in-domain",
                           frame["dataset"]])


def per_dataset_table(scores: pd.DataFrame, catalogue: pd.DataFrame) -> pd.DataFrame:
    """Datasets as rows, series as columns (labelled with their source when several are shown), and `best`."""
    if scores.empty:
        return pd.DataFrame(columns=[*ID_COLS, "best"])
    several_sources = scores["source"].nunique() > 1
    name_col = "source_label" if several_sources else "label"
    shown = catalogue[catalogue["series"].isin(set(scores["series"]))]
    names = list(dict.fromkeys(shown[name_col]))
    wide = scores.assign(split=np.where(scores["in_domain"], "in-domain", "OOD")).pivot_table(
        index=ID_COLS, columns=name_col, values="value", aggfunc="last")
    table = _dataset_order(wide.reindex(columns=names).reset_index())
    table.columns.name = None
    table["best"] = best_per_row(table)
    return table


def value_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c not in (*ID_COLS, "best")]


def best_per_row(table: pd.DataFrame) -> pd.Series:
    """The column(s) holding each row's highest value; ties are joined with ' = '."""
    mask = best_mask(table)
    return pd.Series([" = ".join(c for c in mask.columns if row[c]) for _, row in mask.iterrows()],
                     index=table.index, dtype="str")


def best_mask(table: pd.DataFrame) -> pd.DataFrame:
    """True where a value column holds its row's highest value."""
    values = table[value_columns(table)].astype("float")
    return values.eq(values.max(axis=1), axis=0) & values.notna()


def style_best(table: pd.DataFrame):
    """The table for display: one decimal, the best value of each row in bold on a tint."""
    cols = value_columns(table)
    styler = table.style.format("{:.1f}", subset=cols, na_rep="–")
    if not cols or table.empty:
        return styler
    css = best_mask(table).replace({True: "font-weight: bold; background-color: #dbeafe", False: ""})
    return styler.apply(lambda _: css, axis=None, subset=cols)


def meta_task_averages(scores: pd.DataFrame) -> pd.DataFrame:
    """Per series and meta-task: the mean over datasets, over in-domain ones and over OOD ones."""
    keys = ["source", "series", "label", "source_label", "model", "paradigm", "variant", "meta_task"]
    grouped = scores.groupby(keys, sort=False)
    out = grouped["value"].agg(average="mean", n_datasets="count").reset_index()
    for name, flag in (("in_domain", True), ("ood", False)):
        part = scores[scores["in_domain"] == flag].groupby(keys, sort=False)["value"].mean().rename(name)
        out = out.merge(part.reset_index(), on=keys, how="left")
    return _sorted(out, [_rank(out["meta_task"], STORED_META_TASKS), _rank(out["source"], SOURCES),
                         _rank(out["paradigm"], PARADIGMS), out["label"]])


def paradigm_gap(averages: pd.DataFrame) -> pd.DataFrame:
    """Best autoregressive minus best diffusion average, per source, meta-task and split."""
    rows = []
    for (source, meta_task), group in averages.groupby(["source", "meta_task"], sort=False):
        for split, column in (("all", "average"), ("in-domain", "in_domain"), ("OOD", "ood")):
            best = {}
            for paradigm in COMPARED_PARADIGMS:
                part = group[(group["paradigm"] == paradigm) & group[column].notna()]
                if not part.empty:
                    top = part.loc[part[column].idxmax()]
                    best[paradigm] = (top["label"], float(top[column]))
            if len(best) == 2:
                (ar_model, ar), (diff_model, diff) = best["autoregressive"], best["diffusion"]
                rows.append({"source": source, "meta_task": meta_task, "split": split, "ar_model": ar_model,
                             "ar": ar, "diffusion_model": diff_model, "diffusion": diff, "gap": ar - diff})
    return pd.DataFrame(rows, columns=["source", "meta_task", "split", "ar_model", "ar", "diffusion_model",
                                       "diffusion", "gap"])


def overview_table(averages: pd.DataFrame, reported: pd.DataFrame) -> pd.DataFrame:
    """Averages rounded for reading, beside the average the paper printed (when there is one)."""
    printed = reported[(reported["split"] == "all") & (reported["metric"] == DEFAULT_METRIC)]
    printed = printed.groupby(["source", "model", "variant", "meta_task"])["value"].first().rename("printed")
    out = averages.merge(printed.reset_index(), on=["source", "model", "variant", "meta_task"], how="left")
    diff = (out["average"] - out["printed"]).round(2)
    out["check"] = np.where(out["printed"].isna(), "",
                            np.where(diff.abs() <= 0.05, "matches", "differs by " + diff.map("{:+.1f}".format)))
    out = out[["source", "label", "paradigm", "meta_task", "n_datasets", "average", "in_domain", "ood",
               "printed", "check"]].rename(columns={"label": "model"})
    return out.round({"average": 1, "in_domain": 1, "ood": 1, "printed": 1})


def delta_table(scores: pd.DataFrame, series_a: str, series_b: str) -> pd.DataFrame:
    """Per dataset both series cover: a, b and b - a (positive = b is better)."""
    cols = [*ID_COLS, "a", "b", "delta"]
    pair = scores[scores["series"].isin([series_a, series_b])]
    if pair.empty or series_a == series_b:
        return pd.DataFrame(columns=cols)
    wide = pair.assign(split=np.where(pair["in_domain"], "in-domain", "OOD")).pivot_table(
        index=ID_COLS, columns="series", values="value", aggfunc="last")
    if series_a not in wide or series_b not in wide:
        return pd.DataFrame(columns=cols)
    wide = wide.rename(columns={series_a: "a", series_b: "b"})[["a", "b"]].dropna().reset_index()
    wide.columns.name = None
    wide["delta"] = wide["b"] - wide["a"]
    return _dataset_order(wide)[cols]


def delta_by_task(delta: pd.DataFrame) -> pd.DataFrame:
    """Mean b - a per meta-task: over all its shared datasets, the in-domain ones and the OOD ones."""
    rows = []
    for task, group in delta.groupby("meta_task", sort=False):
        ind, ood = group[group["split"] == "in-domain"]["delta"], group[group["split"] == "OOD"]["delta"]
        rows.append({"meta_task": task, "n": len(group), "mean": group["delta"].mean(),
                     "in_domain": ind.mean() if len(ind) else np.nan, "ood": ood.mean() if len(ood) else np.nan})
    return pd.DataFrame(rows, columns=["meta_task", "n", "mean", "in_domain", "ood"])


def delta_summary(delta: pd.DataFrame, label_a: str, label_b: str) -> str:
    """What a reader can quote: mean difference, who wins how often, and the same per meta-task."""
    if delta.empty:
        return (f"**{label_a}** and **{label_b}** share no dataset "
                "(the paper's runs use MMEB, demo runs the built-in benchmark).")
    wins_b, wins_a = int((delta["delta"] > 0).sum()), int((delta["delta"] < 0).sum())
    text = (f"**{label_b}** − **{label_a}** over {len(delta)} datasets: mean {delta['delta'].mean():+.1f} points; "
            f"{label_b} higher on {wins_b}, {label_a} higher on {wins_a}, tied on {len(delta) - wins_a - wins_b}.")

    def part(name: str, value: float) -> str:
        return "" if pd.isna(value) else f"{name} {value:+.1f}"

    per_task = ["{} {:+.1f} ({})".format(r.meta_task, r.mean, ", ".join(
        p for p in (part("in-domain", r.in_domain), part("OOD", r.ood)) if p)) for r in delta_by_task(delta).itertuples()]
    return text + "  \nBy meta-task: " + "; ".join(per_task) + "."


def _cell(value) -> object:
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, list | tuple | np.ndarray):
        items = list(value)
        shown = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in items[:6])
        return f"[{shown}{', …' if len(items) > 6 else ''}] ({len(items)})"
    if isinstance(value, dict):
        return str(value)
    return value


def console_header(column: str) -> str:
    """A result column's title as a reader would write it: DuckDB names an unaliased expression by its
    text with quoted identifiers (`avg("value")`); the quotes go."""
    return re.sub(r'"([A-Za-z_][A-Za-z0-9_]*)"', r"\1", column)


def display_frame(frame: pd.DataFrame, decimals: int = 4) -> pd.DataFrame:
    """A result for the screen: floats rounded (58.42999999999999 -> 58.43); the CSV keeps them exact."""
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].round(decimals)
        elif out[col].dtype == object:
            out[col] = out[col].map(lambda v: round(v, decimals) if isinstance(v, float) else v)
    return out


def console_frame(columns: Sequence[str], rows: Sequence[tuple]) -> pd.DataFrame:
    """A SQL result as a table: clean unique column names, long lists and blobs shortened."""
    seen: dict[str, int] = {}
    names = []
    for col in map(console_header, columns):
        seen[col] = seen.get(col, 0) + 1
        names.append(col if seen[col] == 1 else f"{col}_{seen[col]}")
    return pd.DataFrame([[_cell(v) for v in row] for row in rows], columns=names)


SKIPPED_PREFIX = "skipped ("  # how `pipeline.data_plan.notes` starts a run's note about data it left out


def skipped_data_note(runs: pd.DataFrame, sources: Sequence[str], limit: int = 6) -> str:
    """Markdown lines naming the selected datasets that the shown runs skipped (absent from the
    download, or with no usable rows), one line per distinct note with the cells it applies to."""
    if runs.empty or "notes" not in runs:
        return ""
    shown = runs[runs["source"].isin(sources) & runs["notes"].fillna("").str.startswith(SKIPPED_PREFIX)]
    lines = []
    for note, group in shown.groupby("notes", sort=True):
        cells = sorted({f"{r.model} on {r.train_task or 'zero-shot'}" for r in group.itertuples()})
        more = f" and {len(cells) - 3} more" if len(cells) > 3 else ""
        lines.append(f"**Data skipped** ({', '.join(cells[:3])}{more}): {note}")
    if len(lines) > limit:
        lines = lines[:limit] + [f"… and {len(lines) - limit} more notes (see `runs.notes` in the SQL tab)"]
    return "  \n".join(lines)
