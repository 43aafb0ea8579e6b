"""Alignment: the paper's Figure 4 made interactive.

Two models' 2-D maps of the same query / gold-target pairs side by side (queries as
circles, targets as triangles, a dashed line per pair; hover a marker for its thumbnail
and text), each at any stored training stage, or four families (two AR, two diffusion)
two by two at one stage; with the alignment metrics as a table and as lines across the
stages. Picks carry over to another dataset (see `alignment_view.carry_model`). Maps and metrics are written by `vlmembed project`; this tab only
reads them (once per store version).
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

from app import alignment_view
from app.figures import message_figure
from app.store import StoreCache
from app.tabs.base import QUIET, Context, Tab
from app.urlstate import Params, track
from pipeline.analysis.projection import METHOD_LABELS
from pipeline.demo.status import building_status

KEYS = ("dataset", "method", "model_a", "stage_a", "model_b", "stage_b", "pairs", "view", "grid_stage")
AB, GRID = "ab", "grid"
VIEWS = [("two models (A / B)", AB), ("four families (2 AR, 2 diffusion)", GRID)]
DEFAULT_PAIRS, MAX_PAIRS = 20, 1000  # the paper's Figure 4 draws 20 pairs
DEFAULTS = {"view": AB, "pairs": DEFAULT_PAIRS}  # what the URL leaves out
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
    """Valid values for this store version. Picks carry over to another dataset wherever they still exist
    (`carry_model`, `carry_stage`); unknown or stale ones fall back to defaults (`default_pair`)."""
    datasets = data.datasets()
    dataset = values.get("dataset") if values.get("dataset") in datasets else (datasets or [None])[0]
    methods = data.methods(dataset)
    method = values.get("method") if values.get("method") in methods else (methods or [None])[0]
    lines = alignment_view.lineages(data.projected, dataset, method) if dataset and method else []
    picked = [alignment_view.carry_model(lines, values.get(f"model_{s}")) for s in ("a", "b")]
    out = dict(dataset=dataset, method=method, lineages=lines, datasets=datasets, methods=methods,
               view=values.get("view") if values.get("view") in (AB, GRID) else AB)
    by_key = {x.key: x for x in lines}
    for side, key in zip(("a", "b"), alignment_view.default_pair(lines, *picked), strict=True):
        out[f"model_{side}"] = key
        out[f"stages_{side}"] = by_key[key].stage_choices() if key else []
        out[f"stage_{side}"] = alignment_view.carry_stage(by_key.get(key), values.get(f"stage_{side}"), data.projected)
    out["grid"] = alignment_view.grid_lineages(lines)
    out["grid_stages"] = alignment_view.grid_stage_choices(out["grid"])
    wanted = values.get("grid_stage")
    out["grid_stage"] = wanted if wanted in out["grid_stages"] else _final_label(out["grid_stages"])
    try:
        n = float(values.get("pairs") or DEFAULT_PAIRS)
    except (TypeError, ValueError):
        n = DEFAULT_PAIRS
    out["pairs"] = DEFAULT_PAIRS if n != n else int(min(max(n, 3), MAX_PAIRS))  # n != n: NaN
    return out


def _final_label(labels: list[str]) -> str | None:
    return next((x for x in reversed(labels) if x.startswith("final")), labels[-1] if labels else None)


def _panels(v: dict) -> tuple[list[tuple[str, str | None]], list[alignment_view.Lineage]]:
    """((title, run id or None) per map, the lineages shown) for the chosen view."""
    if v["view"] == GRID:
        chosen = alignment_view.grid_runs(v["grid"], v["grid_stage"] or "")
        stage_of = {rid: label for x in v["grid"] for label, rid in x.stage_choices()}
        return [(f"{x.label} ({x.paradigm or '?'}) · {stage_of.get(rid, v['grid_stage'])}", rid)
                for x, rid in chosen], v["grid"]
    by_key = {x.key: x for x in v["lineages"]}
    chosen = [(side, v[f"stage_{side}"]) for side in ("a", "b") if v[f"stage_{side}"]]
    if len(chosen) == 2 and chosen[0][1] == chosen[1][1]:
        chosen = chosen[:1]  # the same run twice: one map
    panels = []
    for side, run_id in chosen:
        stage = dict((rid, label) for label, rid in v[f"stages_{side}"]).get(run_id, "")
        panels.append((f"{by_key[v[f'model_{side}']].label} · {stage}", run_id))
    return panels, [by_key[k] for k in dict.fromkeys((v["model_a"], v["model_b"])) if k in by_key]


def views(store: StoreCache, v: dict) -> tuple[str, pd.DataFrame, object, str]:
    """(maps HTML, metrics table, metric lines, caption) for resolved values."""
    if not v["dataset"] or not v["method"]:
        demo = building_status(store.path)
        text = demo.coming("each miniature's zero-shot maps (fine-tuned stages follow)") if demo else NO_MAPS
        return alignment_view.message_html(text), alignment_view.empty_metrics_table(), message_figure("No alignment metrics yet."), ""
    reader = store.reader()
    chosen, shown = _panels(v)
    panels = [(title, None if rid is None else _frame(store, ("projection", rid, v["dataset"], v["method"]),
                                                       lambda r=rid: reader.projection(r, v["dataset"], v["method"])))
              for title, rid in chosen]
    pairs = _frame(store, ("pairs", v["dataset"]), lambda: reader.pairs(v["dataset"]))
    sample = alignment_view.sample_pairs(pairs, [p for _, p in panels if p is not None], v["pairs"])
    shown_runs = (pd.concat([x.runs.assign(label_model=x.label) for x in shown], ignore_index=True) if shown
                  else pd.DataFrame(columns=["run_id", "label_model", "stage", "train_samples"]))
    data, _ = _data(store)
    table = alignment_view.metrics_table(data.alignment, v["dataset"], shown_runs)
    every = f"all {len(panels)} maps" if len(panels) > 2 else "both maps" if len(panels) == 2 else "the map"
    caption = (f"{len(sample)} of {len(pairs)} pairs of **{v['dataset']}**, {METHOD_LABELS.get(v['method'], v['method'])}; the same pairs "
               f"on {every}. Hover a marker for its thumbnail and text.")
    size = alignment_view.GRID_SIZE if v["view"] == GRID else alignment_view.SIZE
    return (alignment_view.maps_html(panels, sample, size), table,
            alignment_view.metric_lines(data.alignment, v["dataset"], shown_runs), caption)


def render(store: StoreCache, values: dict) -> tuple:
    """Every control (choices and value) and every view, in KEYS order then views, then the A/B row."""
    data, error = _data(store)
    if data is None:
        return (*[gr.skip()] * len(KEYS), alignment_view.message_html(error or ""), pd.DataFrame(),
                message_figure("No store."), "", gr.skip())
    v = resolve(data, values)
    models = [(x.label, x.key) for x in v["lineages"]]
    grid = v["view"] == GRID
    controls = (gr.update(choices=v["datasets"], value=v["dataset"]), gr.update(choices=[(METHOD_LABELS.get(m, m), m) for m in v["methods"]],
                                                                                    value=v["method"]),
                gr.update(choices=models, value=v["model_a"]), gr.update(choices=v["stages_a"], value=v["stage_a"]),
                gr.update(choices=models, value=v["model_b"]), gr.update(choices=v["stages_b"], value=v["stage_b"]),
                v["pairs"], v["view"], gr.update(choices=v["grid_stages"], value=v["grid_stage"], visible=grid))
    return (*controls, *views(store, v), gr.update(visible=not grid))


def build(ctx: Context) -> None:
    gr.Markdown("Queries (●) and their gold targets (▲) of one dataset on a 2-D map of each model's embedding "
                "space, a dashed line per pair (the paper's Figure 4). Pick two models and a training stage each, "
                "or view four families at once (two autoregressive, two diffusion) at one stage; every map shows "
                "the same pairs. Maps come from `vlmembed project`.")
    with gr.Row():
        dataset = gr.Dropdown([], label="Dataset", elem_id="al-dataset", allow_custom_value=True)
        method = gr.Radio([(METHOD_LABELS[m], m) for m in ("umap", "tsne", "pca")], label="Projection", elem_id="al-method")
        pairs = gr.Slider(3, MAX_PAIRS, value=DEFAULT_PAIRS, step=1, label="Pairs shown", elem_id="al-pairs")
    with gr.Row():
        view = gr.Radio(VIEWS, value=AB, label="View", elem_id="al-view")
        grid_stage = gr.Dropdown([], label="Stage (every family)", elem_id="al-grid-stage", allow_custom_value=True,
                                 visible=False)
    with gr.Row() as ab_row:
        model_a = gr.Dropdown([], label="Model A", elem_id="al-model-a", allow_custom_value=True)
        stage_a = gr.Dropdown([], label="Stage A (training samples)", elem_id="al-stage-a", allow_custom_value=True)
        model_b = gr.Dropdown([], label="Model B", elem_id="al-model-b", allow_custom_value=True)
        stage_b = gr.Dropdown([], label="Stage B (training samples)", elem_id="al-stage-b", allow_custom_value=True)
    caption = gr.Markdown(elem_id="al-caption")
    maps = gr.HTML(alignment_view.message_html("Loading…"), elem_id="al-maps")
    # wrap: long model names break onto a second line, so every metric column fits the page's width
    table = gr.Dataframe(alignment_view.empty_metrics_table(), label="Alignment metrics (the models shown, every "
                         "stored stage)", interactive=False, wrap=True, elem_id="al-metrics")
    lines = gr.Plot(message_figure("Loading…"), label="Metrics across training stages", elem_id="al-lines")

    controls = [dataset, method, model_a, stage_a, model_b, stage_b, pairs, view, grid_stage]  # KEYS order
    outputs = [*controls, maps, table, lines, caption, ab_row]

    def update(*values):
        return render(ctx.store, dict(zip(KEYS, values, strict=True)))

    def restore(request: gr.Request):
        p = Params.of(request)
        return render(ctx.store, {k: p.text(k) or None for k in KEYS})

    gr.on([c.input for c in controls], update, controls, outputs, api_name="alignment",
          trigger_mode="always_last", concurrency_limit=4, **QUIET)
    ctx.on_load(restore, outputs)
    ctx.on_new_data(update, controls, outputs)
    for key, control in zip(KEYS, controls, strict=True):
        track(control, key, DEFAULTS.get(key))


TAB = Tab(id="alignment", title="Alignment", build=build)
