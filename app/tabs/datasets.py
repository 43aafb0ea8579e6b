"""Per dataset: every stored score as a table (best per row marked), a heatmap, CSV, and a delta view.

Filters narrow the table; the delta view compares any two series (e.g. the paper's
LaViDa vs a reproduced one) on every dataset both cover, summarised per meta-task and
split. It follows only the metric filter: re-rendering it with every table filter cost a
filter update about a third of its time in the browser (bench/bench_app.py). The heatmap
sits in a closed accordion for the same reason: drawn on every filter change it cost
about 90 ms of a 250 ms update; closed, the browser draws it only when opened.
"""

from __future__ import annotations

import hashlib
import html
import tempfile
from pathlib import Path
from urllib.parse import urlencode

import gradio as gr
import pandas as pd

from app import figures, stats_view, tables
from app.store import Snapshot
from app.tabs.base import QUIET, Context, Tab
from app.urlstate import Params, track
from storage.vocabulary import SOURCES, STAGES, STORED_META_TASKS

TASKS = ["all", *STORED_META_TASKS]
SPLITS = list(tables.SPLITS)
DEFAULTS = {"sources": ["paper"], "variants": ["default"], "stages": ["final"]}
# The tab's state, in the order of its controls; each is also its URL parameter.
KEYS = ("sources", "task", "split", "models", "variants", "stages", "metric", "a", "b", "ci")
CSV_DIR = Path(tempfile.gettempdir()) / "vlmembed-app"
CI_NOTE = ("Cells: score [95% interval]: a bootstrap over the run's queries, or for the paper's numbers computed "
           "from each dataset's eval size n (the paper publishes none); [no interval]: run `vlmembed stats`. "
           "Click a cell for its queries in the Per query view.")


def write_csv(table: pd.DataFrame) -> str | None:
    """The current table as a CSV file named by its content (so repeats cost nothing)."""
    if table.empty:
        return None
    text = table.to_csv(index=False, float_format="%.2f")
    path = CSV_DIR / f"per-dataset-{hashlib.sha1(text.encode()).hexdigest()[:12]}.csv"
    if not path.exists():
        CSV_DIR.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return str(path)


def table_view(snap: Snapshot, sources, task, split, models, variants, stages, metric, ci: bool = False) -> tuple:
    """(styled table, caption, heatmap, csv path) for the filters; with `ci`, each cell shows its 95% interval."""
    if not snap.ok:
        return tables.no_rows(), f"**Store unavailable.** {snap.error}", figures.message_figure("No store."), None
    scores = tables.filter_scores(snap.scores, sources=sources, meta_task=task, split=split, models=models,
                                  variants=variants, stages=stages, metric=metric)
    table = tables.per_dataset_table(scores, snap.series)
    n_cols = len(tables.value_columns(table))
    caption = (f"{len(table)} datasets × {n_cols} series, {metric}; the best of each row is in bold."
               if len(table) else "No scores match these filters.")
    if "demo" in set(scores["source"]):
        caption += f"  \n**{figures.SOURCE_NOTES['demo']}**"
    caption += "  \n" + (CI_NOTE if ci else "Click a cell for its queries in the Per query view.")
    shown = stats_view.style_text_best(stats_view.interval_table(table, scores, snap.intervals), table) if ci \
        else tables.style_best(table)
    return shown, caption, figures.heatmap(table, metric), write_csv(table)


def delta_view(snap: Snapshot, metric: str, series_a: str, series_b: str) -> tuple:
    """(summary, table, figure) of b - a per dataset."""
    if not snap.ok:
        return f"**Store unavailable.** {snap.error}", tables.no_rows(), figures.message_figure("No store.")
    if not series_a or not series_b:
        return "Pick two runs to compare.", tables.no_rows(), figures.message_figure("Pick two runs.")
    scores = tables.filter_scores(snap.scores, metric=metric)
    delta = tables.delta_table(scores, series_a, series_b)
    label_a, label_b = snap.label_of(series_a), snap.label_of(series_b)
    tested, how = stats_view.delta_significance(delta, scores, series_a, series_b, snap.compare, metric)
    shown = tested.assign(real=tested["real"].map({True: "✓ survives Holm", False: ""})).rename(columns={
        "a": label_a, "b": label_b, "delta": "b − a", "lower": "95% CI low", "upper": "95% CI high",
        "p_holm": "p (Holm)", "real": "at 0.05"}).round({"b − a": 2, "95% CI low": 2, "95% CI high": 2,
                                                          label_a: 2, label_b: 2, "p": 4, "p (Holm)": 4})
    summary = tables.delta_summary(delta, label_a, label_b)
    if len(delta):
        summary += (f"  \n{int(tested['real'].sum())} of {len(delta)} differences survive Holm's correction at 0.05 "
                    f"(marked ✓; {how}).")
    return summary, shown, figures.delta_bars(tested, label_a, label_b)


def cell_link_view(snap: Snapshot, values: dict, index) -> str:
    """HTML linking a clicked cell to the Per query view (same browser tab): its run against the delta
    view's other series' run on that dataset (b's, or a's when the cell is b's)."""
    scores = tables.filter_scores(snap.scores, sources=values["sources"], meta_task=values["task"],
                                  split=values["split"], models=values["models"], variants=values["variants"],
                                  stages=values["stages"], metric=values["metric"])
    table = tables.per_dataset_table(scores, snap.series)
    row, col = (list(index) + [None, None])[:2]
    if row is None or col is None or row >= len(table) or table.columns[col] not in tables.value_columns(table):
        return "<p>Click a score to see its queries.</p>"
    dataset, name = table.iloc[row]["dataset"], table.columns[col]
    name_col = "source_label" if scores["source"].nunique() > 1 else "label"
    cell = scores[(scores["dataset"] == dataset) & (scores[name_col] == name)]
    where = f"<b>{html.escape(str(name))}</b> on <b>{html.escape(str(dataset))}</b>"
    if cell.empty:
        return f"<p>No score of {where}.</p>"
    if cell["source"].iloc[0] == "paper":
        return f"<p>{where}: the paper published no per-query results, so there are no queries to show.</p>"
    run_a, series = cell["run_id"].iloc[0], cell["series"].iloc[0]
    other = values["b"] if values["b"] != series else values["a"]
    match = snap.scores[(snap.scores["series"] == other) & (snap.scores["dataset"] == dataset)]
    query = {"tab": "per_query", "qa": run_a, "qdataset": dataset, "qshow": "a_only"}
    if len(match):
        query["qb"] = match["run_id"].iloc[0]
    against = html.escape(snap.label_of(other)) if len(match) else "another run"
    return (f'<p>{where}: <a href="?{html.escape(urlencode(query))}" target="_self">see its queries against '
            f"{against} in the Per query view</a>.</p>")


def default_pair(snap: Snapshot) -> tuple[str, str]:
    """Paper vs a reproduction of the same model when one exists, else the first two series."""
    cat = snap.series
    for _, row in cat[cat["source"] != "paper"].iterrows():
        same = cat[(cat["source"] == "paper") & (cat["model"] == row["model"])]
        if len(same):
            return same["series"].iloc[0], row["series"]
    keys = list(cat["series"]) + ["", ""]
    return keys[0], keys[1]


def series_choices(snap: Snapshot) -> list[tuple[str, str]]:
    return list(zip(snap.series.get("source_label", []), snap.series.get("series", []), strict=True))


def values_from_url(snap: Snapshot, p: Params) -> dict:
    return {"sources": p.many("sources", SOURCES, DEFAULTS["sources"]),
            "task": p.choice("task", TASKS, "all"), "split": p.choice("split", SPLITS, "all"),
            "models": p.many("models", snap.choices("model"), []),
            "variants": p.many("variants", snap.choices("variant"), DEFAULTS["variants"]),
            "stages": p.many("stages", STAGES, DEFAULTS["stages"]),
            "metric": p.text("metric", tables.DEFAULT_METRIC), "a": p.text("a"), "b": p.text("b"),
            "ci": p.choice("ci", ["true", "false"], "false") == "true"}


def render_all(snap: Snapshot, values: dict) -> tuple:
    """Controls (in KEYS order) with this store version's choices, keeping values still valid; then the views."""
    models, variants, metrics = snap.choices("model"), snap.choices("variant"), snap.metrics()
    series = series_choices(snap)
    keys, pair = [k for _, k in series], default_pair(snap)
    v = dict(values, models=[m for m in values["models"] or [] if m in models],
             variants=[m for m in values["variants"] or [] if m in variants],
             metric=values["metric"] if values["metric"] in metrics else tables.DEFAULT_METRIC,
             a=values["a"] if values["a"] in keys else pair[0], b=values["b"] if values["b"] in keys else pair[1])
    controls = (v["sources"], v["task"], v["split"], gr.update(choices=models, value=v["models"]),
                gr.update(choices=variants, value=v["variants"]), v["stages"],
                gr.update(choices=metrics, value=v["metric"]),
                gr.update(choices=series, value=v["a"]), gr.update(choices=series, value=v["b"]), bool(v["ci"]))
    return (*controls, *table_view(snap, *[v[k] for k in KEYS[:7]], bool(v["ci"])),
            *delta_view(snap, v["metric"], v["a"], v["b"]))


def build(ctx: Context) -> None:
    snap = ctx.store.snapshot()  # initial choices; every page load re-reads them
    pair = default_pair(snap) if snap.ok else ("", "")
    with gr.Row():
        sources = gr.CheckboxGroup(list(SOURCES), value=DEFAULTS["sources"], label="Sources (none = all)",
                                   elem_id="ds-sources")
        task = gr.Radio(TASKS, value="all", label="Meta-task", elem_id="ds-task")
        split = gr.Radio(SPLITS, value="all", label="Datasets", elem_id="ds-split")
    with gr.Row():
        models = gr.Dropdown(snap.choices("model"), value=[], multiselect=True, label="Models (none = all)",
                             allow_custom_value=True)
        variants = gr.Dropdown(sorted(set(snap.choices("variant")) | set(DEFAULTS["variants"])),
                               value=DEFAULTS["variants"], multiselect=True, label="Variants (none = all)",
                               allow_custom_value=True)
        stages = gr.CheckboxGroup(list(STAGES), value=DEFAULTS["stages"], label="Stage (none = all)")
        metric = gr.Dropdown(snap.metrics(), value=tables.DEFAULT_METRIC, label="Metric", allow_custom_value=True)
    ci = gr.Checkbox(False, label="Show 95% intervals in the table", elem_id="ds-ci")
    caption = gr.Markdown(elem_id="ds-caption")
    table = gr.Dataframe(label="Per-dataset scores", interactive=False, elem_id="per-dataset-table")
    cell_link = gr.HTML(elem_id="ds-cell-link")  # HTML, not Markdown: Gradio opens Markdown links in a new tab
    csv = gr.DownloadButton("Download this table (CSV)", size="sm")
    with gr.Accordion("Heatmap of this table", open=False, elem_id="ds-heatmap"):
        heat = gr.Plot(label="Heatmap")
    gr.Markdown("### Delta between two runs\nPer dataset, b − a, on every dataset both cover "
                "(the metric filter applies; the other filters shape the table above).")
    with gr.Row():
        series_a = gr.Dropdown(series_choices(snap), value=pair[0] or None, label="a", allow_custom_value=True)
        series_b = gr.Dropdown(series_choices(snap), value=pair[1] or None, label="b", allow_custom_value=True)
    delta_outputs = [gr.Markdown(), gr.Dataframe(label="Per-dataset difference", interactive=False),
                     gr.Plot(label="b − a")]

    controls = [sources, task, split, models, variants, stages, metric, series_a, series_b, ci]  # KEYS order
    filters, table_outputs = [*controls[:7], ci], [table, caption, heat, csv]
    everything = [*controls, *table_outputs, *delta_outputs]

    def show_table(sources, task, split, models, variants, stages, metric, show_ci):
        return table_view(ctx.store.snapshot(), sources, task, split, models, variants, stages, metric, show_ci)

    def open_cell(sources, task, split, models, variants, stages, metric, a, b, show_ci, evt: gr.SelectData):
        # Gradio injects the click only into a named, annotated parameter, so KEYS are spelt out here
        values = dict(zip(KEYS, (sources, task, split, models, variants, stages, metric, a, b, show_ci), strict=True))
        return cell_link_view(ctx.store.snapshot(), values, evt.index)

    def show_delta(metric, a, b):
        return delta_view(ctx.store.snapshot(), metric, a, b)

    def restore(request: gr.Request) -> tuple:
        snap = ctx.store.snapshot()
        return render_all(snap, values_from_url(snap, Params.of(request)))

    def refresh(*values) -> tuple:
        return render_all(ctx.store.snapshot(), dict(zip(KEYS, values, strict=True)))

    gr.on([f.input for f in filters], show_table, filters, table_outputs, api_name="per_dataset",
          trigger_mode="always_last", queue=False, **QUIET)
    gr.on([c.input for c in (metric, series_a, series_b)], show_delta, [metric, series_a, series_b], delta_outputs,
          api_name="delta", trigger_mode="always_last", queue=False, **QUIET)
    table.select(open_cell, controls, [cell_link], queue=False, **QUIET)
    ctx.on_load(restore, everything)
    ctx.on_new_data(refresh, controls, everything)
    for key, control in zip(KEYS, controls, strict=True):
        track(control, key)


TAB = Tab(id="datasets", title="Per dataset", build=build)
