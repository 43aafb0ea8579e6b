"""Alignment: the paper's Figure 4 made interactive.

Two models' 2-D maps of the same query / gold-target pairs side by side (queries as
circles, targets as triangles, a dashed line per pair; hover a marker for its thumbnail
and text), at any stored training stage, with the alignment metrics as a table and as
lines across the stages. Maps and metrics are written by `vlmembed project`; this tab only
reads them (once per store version).
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

from app import alignment_view
from app.figures import message_figure
from app.store import StoreCache
from app.tabs.base import Context, Tab
from app.urlstate import Params, track
from pipeline.analysis.projection import METHOD_LABELS

KEYS = ("dataset", "method", "model_a", "stage_a", "model_b", "stage_b", "pairs")
DEFAULT_PAIRS, MAX_PAIRS = 20, 1000  # the paper's Figure 4 draws 20 pairs
NO_MAPS = ("No 2-D maps in this store yet. If `vlmembed app` is building the demo in the background, its maps "
           "appear as each model finishes (a few minutes). Otherwise store embeddings with a run "
           "(`store_embeddings = \"all\"` in the experiment TOML), then run `vlmembed project` to compute the maps "
           "and alignment metrics.")


def _data(store: StoreCache) -> tuple[alignment_view.AlignmentData | None, str | None]:
    snap = store.snapshot()
    if not snap.ok:
        return None, f"Store unavailable. {snap.error}"
    return snap.memo(("alignment-data",), lambda: alignment_view.AlignmentData.load(store.reader())), None


def _frame(store: StoreCache, key: tuple, read) -> pd.DataFrame:
    return store.snapshot().memo(key, read)


def resolve(data: alignment_view.AlignmentData, values: dict) -> dict:
    """Valid values for this store version: unknown or stale choices fall back to defaults."""
    datasets = data.datasets()
    dataset = values.get("dataset") if values.get("dataset") in datasets else (datasets or [None])[0]
    methods = data.methods(dataset)
    method = values.get("method") if values.get("method") in methods else (methods or [None])[0]
    lines = alignment_view.lineages(data.projected, dataset, method) if dataset and method else []
    keys = [x.key for x in lines]
    out = dict(dataset=dataset, method=method, lineages=lines, datasets=datasets, methods=methods)
    for side, fallback in (("a", 0), ("b", 1)):
        key = values.get(f"model_{side}")
        key = key if key in keys else (keys[min(fallback, len(keys) - 1)] if keys else None)
        stages = next((x.stage_choices() for x in lines if x.key == key), [])
        stage = values.get(f"stage_{side}")
        out[f"model_{side}"] = key
        out[f"stages_{side}"] = stages
        out[f"stage_{side}"] = stage if stage in [r for _, r in stages] else (stages[-1][1] if stages else None)
    try:
        n = float(values.get("pairs") or DEFAULT_PAIRS)
    except (TypeError, ValueError):
        n = DEFAULT_PAIRS
    out["pairs"] = DEFAULT_PAIRS if n != n else int(min(max(n, 3), MAX_PAIRS))  # n != n: NaN
    return out


def views(store: StoreCache, v: dict) -> tuple[str, pd.DataFrame, object, str]:
    """(maps HTML, metrics table, metric lines, caption) for resolved values."""
    if not v["dataset"] or not v["method"]:
        return alignment_view.message_html(NO_MAPS), alignment_view.empty_metrics_table(), message_figure("No alignment metrics yet."), ""
    reader = store.reader()
    chosen = [(side, v[f"stage_{side}"]) for side in ("a", "b") if v[f"stage_{side}"]]
    if len(chosen) == 2 and chosen[0][1] == chosen[1][1]:
        chosen = chosen[:1]  # the same run twice: one map
    label_of = {x.key: x.label for x in v["lineages"]}
    panels = []
    for side, run_id in chosen:
        points = _frame(store, ("projection", run_id, v["dataset"], v["method"]),
                        lambda r=run_id: reader.projection(r, v["dataset"], v["method"]))
        stage = dict((rid, label) for label, rid in v[f"stages_{side}"]).get(run_id, "")
        panels.append((f"{label_of.get(v[f'model_{side}'], '')} · {stage}", points))
    pairs = _frame(store, ("pairs", v["dataset"]), lambda: reader.pairs(v["dataset"]))
    sample = alignment_view.sample_pairs(pairs, [p for _, p in panels], v["pairs"])
    shown_runs = pd.concat([x.runs.assign(label_model=x.label) for x in v["lineages"]
                            if x.key in (v["model_a"], v["model_b"])], ignore_index=True)
    data, _ = _data(store)
    table = alignment_view.metrics_table(data.alignment, v["dataset"], shown_runs)
    caption = (f"{len(sample)} of {len(pairs)} pairs of **{v['dataset']}**, "
               f"{METHOD_LABELS.get(v['method'], v['method'])}; the same pairs "
               "on both maps. Hover a marker for its thumbnail and text.")
    return alignment_view.maps_html(panels, sample), table, alignment_view.metric_lines(data.alignment, v["dataset"], shown_runs), caption


def render(store: StoreCache, values: dict) -> tuple:
    """Every control (choices and value) and every view, in KEYS order then views."""
    data, error = _data(store)
    if data is None:
        return (*[gr.skip()] * len(KEYS), alignment_view.message_html(error or ""), pd.DataFrame(), message_figure("No store."),
                "")
    v = resolve(data, values)
    models = [(x.label, x.key) for x in v["lineages"]]
    controls = (gr.update(choices=v["datasets"], value=v["dataset"]), gr.update(choices=[(METHOD_LABELS.get(m, m), m) for m in v["methods"]], value=v["method"]),
                gr.update(choices=models, value=v["model_a"]), gr.update(choices=v["stages_a"], value=v["stage_a"]),
                gr.update(choices=models, value=v["model_b"]), gr.update(choices=v["stages_b"], value=v["stage_b"]),
                v["pairs"])
    return (*controls, *views(store, v))


def build(ctx: Context) -> None:
    gr.Markdown("Queries (●) and their gold targets (▲) of one dataset on a 2-D map of each model's embedding "
                "space, a dashed line per pair (the paper's Figure 4). Pick two models and a training stage each; "
                "both maps show the same pairs. Maps come from `vlmembed project`.")
    with gr.Row():
        dataset = gr.Dropdown([], label="Dataset", elem_id="al-dataset", allow_custom_value=True)
        method = gr.Radio([(METHOD_LABELS[m], m) for m in ("umap", "tsne", "pca")], label="Projection", elem_id="al-method")
        pairs = gr.Slider(3, MAX_PAIRS, value=DEFAULT_PAIRS, step=1, label="Pairs shown", elem_id="al-pairs")
    with gr.Row():
        model_a = gr.Dropdown([], label="Model A", elem_id="al-model-a", allow_custom_value=True)
        stage_a = gr.Dropdown([], label="Stage A (training samples)", elem_id="al-stage-a", allow_custom_value=True)
        model_b = gr.Dropdown([], label="Model B", elem_id="al-model-b", allow_custom_value=True)
        stage_b = gr.Dropdown([], label="Stage B (training samples)", elem_id="al-stage-b", allow_custom_value=True)
    caption = gr.Markdown(elem_id="al-caption")
    maps = gr.HTML(alignment_view.message_html("Loading…"), elem_id="al-maps")
    table = gr.Dataframe(alignment_view.empty_metrics_table(), label="Alignment metrics (both models, every stored stage)",
                         interactive=False, elem_id="al-metrics")
    lines = gr.Plot(label="Metrics across training stages")

    controls = [dataset, method, model_a, stage_a, model_b, stage_b, pairs]  # KEYS order
    outputs = [*controls, maps, table, lines, caption]

    def update(*values):
        return render(ctx.store, dict(zip(KEYS, values, strict=True)))

    def restore(request: gr.Request):
        p = Params.of(request)
        return render(ctx.store, {k: p.text(k) or None for k in KEYS})

    gr.on([c.input for c in controls], update, controls, outputs, api_name="alignment", show_progress="hidden",
          trigger_mode="always_last", concurrency_limit=4)
    ctx.on_load(restore, outputs)
    ctx.on_new_data(update, controls, outputs)
    for key, control in zip(KEYS, controls, strict=True):
        track(control, key)


TAB = Tab(id="alignment", title="Alignment", build=build)
