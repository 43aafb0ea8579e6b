"""Data scale: the paper's Figure 3, Precision@1 per meta-task against training samples.

Each model's zero-shot, data-scale checkpoint and final runs of one source (pipeline or demo
runs: they carry their stage and training-sample count), with bootstrap intervals where the
store has them, beside VLM2Vec's published full-scale MMEB result as a labelled reference
level. The table under the figure links each point to its map in the Alignment tab.
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

from app import data_scale_view as view
from app.figures import message_figure
from app.store import Snapshot, StoreCache
from app.tabs.base import QUIET, Context, Tab
from app.urlstate import Params, track
from pipeline.demo.status import building_status
from storage.reference import vlm2vec_reference

SOURCE_CHOICES = [("pipeline runs", "pipeline"), ("demo runs", "demo")]
SOURCE_KEYS = [value for _, value in SOURCE_CHOICES]
SPLIT_CHOICES = [(label, key) for key, label in view.SPLITS.items()]
TABLE_TYPES = ["str", "str", "str", "number", "number", "str", "markdown"]


def default_source(snap: Snapshot) -> str:
    """Pipeline runs when the store has staged ones, else the demo's."""
    staged = snap.scores[snap.scores["train_samples"].notna()] if snap.ok else snap.scores
    return "pipeline" if "pipeline" in set(staged["source"]) else "demo"


def data_scale_view(store: StoreCache, source: str, split: str, reference: bool) -> tuple:
    """(note, figure, table) for one source and split; with or without the VLM2Vec reference level."""
    snap = store.snapshot()
    if not snap.ok:
        return f"**Store unavailable.** {snap.error}", message_figure("No store."), view.points_table(pd.DataFrame())
    if source == "demo" and building_status(store.path) is not None:  # its estimates change between versions
        return _build(store, snap, source, split, reference)
    return snap.memo(("data-scale", source, split, reference), lambda: _build(store, snap, source, split, reference))


def _build(store: StoreCache, snap: Snapshot, source: str, split: str, reference: bool) -> tuple:
    points = view.data_scale_points(snap.scores, snap.intervals, source, split)
    ref = vlm2vec_reference() if reference else None
    status = building_status(store.path) if source == "demo" else None
    if points.empty:
        if status is not None:
            text = status.coming("each miniature's zero-shot points") + (
                " Checkpoint and final points follow as each family's fine-tuning lands.")
        else:
            text = (f"No {source} runs with training stages in this store yet: `vlmembed demo` lands the demo's, "
                    "`vlmembed run` a pipeline experiment's (zero-shot, checkpoints at `checkpoint_samples`, final).")
        return text, message_figure(text if len(text) < 90 else "Nothing to draw yet: see the note above."), \
            view.points_table(points)
    label = view.SPLITS[split]
    note = [f"{label[0].upper()}{label[1:]}, mean Precision@1 over each meta-task's datasets; x: training "
            "samples (0 = zero-shot). Error bars: 95% bootstrap intervals over each run's queries, where stored."]
    if status is not None:
        note.append(status.coming("more points (checkpoints and final runs)", needs_training=True))
    if source == "demo":
        note.append("Demo runs are tiny models on the built-in benchmark: read the shape of the curves, not their "
                    "level against the reference.")
    if ref is not None:
        note.append(view.reference_note(ref))
    links = snap.memo(("data-scale-links",), lambda: view.alignment_links(store.reader().projected()))
    return "  \n".join(note), view.data_scale_figure(points, ref), view.points_table(points, links)


def build(ctx: Context) -> None:
    with gr.Row():
        source = gr.Radio(SOURCE_CHOICES, value="demo", label="Source", elem_id="scale-source")
        split = gr.Radio(SPLIT_CHOICES, value="all", label="Datasets", elem_id="scale-split")
        reference = gr.Checkbox(True, label="VLM2Vec reference level", elem_id="scale-reference")
    note = gr.Markdown(elem_id="scale-note")
    plot = gr.Plot(label="Precision@1 against training samples", elem_id="scale-plot")
    table = gr.Dataframe(view.points_table(pd.DataFrame()), label="Points (map: the run in the Alignment tab)",
                         interactive=False, datatype=TABLE_TYPES, elem_id="scale-table")
    controls, outputs = [source, split, reference], [note, plot, table]

    def show(source_key: str, split_key: str, with_reference: bool) -> tuple:
        source_key = source_key if source_key in SOURCE_KEYS else default_source(ctx.store.snapshot())
        split_key = split_key if split_key in view.SPLITS else "all"
        return data_scale_view(ctx.store, source_key, split_key, bool(with_reference))

    def restore(request: gr.Request) -> tuple:
        p = Params.of(request)
        chosen = p.choice("scale_source", SOURCE_KEYS, default_source(ctx.store.snapshot()))
        split_key = p.choice("scale_split", list(view.SPLITS), "all")
        with_reference = p.text("scale_reference") != "false"
        return (chosen, split_key, with_reference, *show(chosen, split_key, with_reference))

    gr.on([c.input for c in controls], show, controls, outputs, api_name="data_scale",
          trigger_mode="always_last", queue=False, **QUIET)
    ctx.on_load(restore, [*controls, *outputs])
    ctx.on_new_data(show, controls, outputs)
    for key, control in zip(("scale_source", "scale_split", "scale_reference"), controls, strict=True):
        track(control, key)


TAB = Tab(id="data_scale", title="Data scale", build=build)
