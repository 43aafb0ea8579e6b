"""Per query: pick two runs with per-query ranks and a dataset; see the queries one gets right and the
other wrong (and the reverse), each with its query, gold and both runs' top candidates, and the 2x2
table behind McNemar's test. Reachable by URL (?tab=per_query&qa=...&qb=...&qdataset=...) and from a
click on a Per-dataset cell."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from app import per_query_view as pq
from app.store import Snapshot
from app.tabs.base import QUIET, Context, Tab
from app.urlstate import Params, track
from pipeline.demo.status import building_status
from storage import StoreError, StoreReader
from storage.queries import query_outcomes, ranked_runs

# URL parameters: prefixed, because the Per-dataset tab's `a` and `b` share the page's query string.
KEYS = ("qa", "qb", "qdataset", "qshow", "qtext")
DEFAULT_SHOW = "a_only"
NO_RUNS = "No run in this store has per-query ranks yet: `vlmembed demo` or `vlmembed run` lands some."


def run_label(run: pd.Series) -> str:
    return f"{run['source']} · {run['model']} · {run['label']}"


def runs_of(snap: Snapshot, reader: StoreReader) -> pd.DataFrame:
    return snap.memo(("ranked_runs",), lambda: ranked_runs(reader))


def shared_datasets(runs: pd.DataFrame, a: str, b: str) -> list[str]:
    by_id = runs.set_index("run_id")["datasets"]
    if a not in by_id or b not in by_id:
        return []
    return sorted(set(by_id[a]) & set(by_id[b]))


def default_pair(runs: pd.DataFrame) -> tuple[str, str]:
    """Two final runs of different models that share a dataset when there are such, else any two that do."""
    ordered = runs.assign(late=runs["stage"] != "final").sort_values("late", kind="stable")
    rows = list(ordered.itertuples(index=False))
    pairs = [(a, b) for i, a in enumerate(rows) for b in rows[i + 1:] if shared_datasets(runs, a.run_id, b.run_id)]
    best = sorted(pairs, key=lambda p: (p[0].model == p[1].model, p[0].late or p[1].late))
    return (best[0][0].run_id, best[0][1].run_id) if best else ("", "")


def view(reader: StoreReader, runs: pd.DataFrame, a: str, b: str, dataset: str, show: str, text: str) -> tuple:
    """(2x2 Markdown, queries HTML) for the chosen runs, dataset and cell."""
    if not a or not b or not dataset:
        return "Pick two runs and a dataset they share.", ""
    labels = runs.set_index("run_id").apply(run_label, axis=1)
    outcomes = query_outcomes(reader, a, b, dataset)
    if outcomes.empty:
        return f"**{a}** and **{b}** share no ranked query of {dataset}.", ""
    label_a, label_b = labels.get(a, a), labels.get(b, b)
    ids = sorted(set(outcomes["query_item"]) | set(outcomes["gold_item"]))
    items = reader.items(ids)
    rows = pq.select(outcomes, items, show if show in pq.SHOW else DEFAULT_SHOW, text)
    shown = rows.head(pq.MAX_SHOWN)
    tops_a = pq.top_candidates(reader, a, dataset, shown)
    tops_b = pq.top_candidates(reader, b, dataset, shown)
    extra = sorted({c for tops in (tops_a, tops_b) if tops for top in tops.values() for c, _ in top} - set(ids))
    if extra:
        items = pd.concat([items, reader.items(extra)], ignore_index=True)
    counts = pq.contingency(outcomes, label_a, label_b) + f"  \nShowing {min(len(rows), pq.MAX_SHOWN)} of " \
        f"{len(rows)} queries: {pq.SHOW.get(show, show)}" + (f", containing “{text}”" if text else "") + "."
    return counts, pq.queries_html(shown, items, tops_a, tops_b, label_a, label_b)


def render(ctx: Context, values: dict) -> tuple:
    """Controls (KEYS order) with this store's choices, then the view."""
    snap = ctx.store.snapshot()
    try:
        reader = ctx.store.reader()
    except StoreError as exc:
        return (gr.update(choices=[]), gr.update(choices=[]), gr.update(choices=[]), DEFAULT_SHOW, "",
                f"**Store unavailable.** {exc}", "")
    runs = runs_of(snap, reader)
    if runs.empty:
        demo = building_status(ctx.store.path)
        text = demo.coming("the zero-shot runs' per-query ranks") if demo else NO_RUNS
        return (gr.update(choices=[]), gr.update(choices=[]), gr.update(choices=[]), DEFAULT_SHOW, "", text, "")
    choices = [(run_label(r), r["run_id"]) for _, r in runs.iterrows()]
    ids = set(runs["run_id"])
    pair = default_pair(runs)
    a = values.get("qa") if values.get("qa") in ids else pair[0]
    b = values.get("qb") if values.get("qb") in ids else pair[1]
    datasets = shared_datasets(runs, a, b)
    dataset = values.get("qdataset") if values.get("qdataset") in datasets else (datasets[0] if datasets else "")
    show = values.get("qshow") if values.get("qshow") in pq.SHOW else DEFAULT_SHOW
    text = values.get("qtext") or ""
    return (gr.update(choices=choices, value=a or None), gr.update(choices=choices, value=b or None),
            gr.update(choices=datasets, value=dataset or None), show, text,
            *view(reader, runs, a, b, dataset, show, text))


def build(ctx: Context) -> None:
    gr.Markdown("Where two runs disagree, query by query: pick runs A and B (any source with per-query ranks) "
                "and a dataset both ranked. Top candidates are ranked from each run's stored embeddings; a run "
                "without them shows its top 1 from the ranks table.")
    with gr.Row():
        run_a = gr.Dropdown([], label="Run A", elem_id="pq-a", allow_custom_value=True)
        run_b = gr.Dropdown([], label="Run B", elem_id="pq-b", allow_custom_value=True)
        dataset = gr.Dropdown([], label="Dataset", elem_id="pq-dataset", allow_custom_value=True)
    with gr.Row():
        show = gr.Radio([(label, key) for key, label in pq.SHOW.items()], value=DEFAULT_SHOW, label="Queries",
                        elem_id="pq-show")
        text = gr.Textbox(label="Containing text (query or gold)", elem_id="pq-text")
    counts = gr.Markdown(elem_id="pq-counts")
    queries = gr.HTML(elem_id="pq-queries")
    controls = [run_a, run_b, dataset, show, text]  # KEYS order
    everything = [*controls, counts, queries]

    def restore(request: gr.Request) -> tuple:
        p = Params.of(request)
        return render(ctx, {k: p.text(k) for k in KEYS})

    def refresh(*values) -> tuple:
        return render(ctx, dict(zip(KEYS, values, strict=True)))

    def show_view(a, b, ds, cell, needle) -> tuple:
        snap = ctx.store.snapshot()
        reader = ctx.store.reader()
        return view(reader, runs_of(snap, reader), a or "", b or "", ds or "", cell, needle or "")

    gr.on([run_a.input, run_b.input], refresh, controls, everything, queue=False,
          trigger_mode="always_last", **QUIET)
    gr.on([dataset.input, show.input, text.submit], show_view, controls, [counts, queries], api_name="per_query",
          queue=False, trigger_mode="always_last", **QUIET)
    ctx.on_load(restore, everything)
    ctx.on_new_data(refresh, controls, everything)
    for key, control in zip(KEYS, controls, strict=True):
        track(control, key, {"qshow": DEFAULT_SHOW, "qtext": ""}.get(key))


TAB = Tab(id="per_query", title="Per query", build=build)
