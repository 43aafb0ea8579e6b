"""Overview: the paper's headline comparisons, recomputed from the stored per-dataset numbers.

Meta-task averages per model (the paper's Figure 1), the AR-vs-diffusion gap per
meta-task, and in-domain vs OOD averages (Section 5). One source at a time by default;
"compare" puts the sources in side-by-side panels, each labelled with what it is.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from app import figures, tables
from app.store import Snapshot
from app.tabs.base import QUIET, Context, Tab
from app.urlstate import Params, track
from pipeline.demo.status import building_status
from storage.vocabulary import SOURCES, TEXT_META_TASK

SOURCE_CHOICES = [("paper's numbers", "paper"), ("pipeline runs", "pipeline"), ("demo runs", "demo"),
                  ("measured baselines", "baseline"),
                  ("imported from MTEB", "mteb"), ("imported from VLM2Vec", "vlm2vec"),
                  ("compare sources side by side", "compare")]
SOURCE_KEYS = [value for _, value in SOURCE_CHOICES]
DEFAULT_SOURCE = "paper"


def overview_view(snap: Snapshot, source: str, store_path: str | Path | None = None) -> tuple:
    """(note, averages figure, gap figure, ID/OOD figure, table) for one source or 'compare'."""
    if not snap.ok:
        message = figures.message_figure("The store could not be read: see the message above.")
        return f"**Store unavailable.** {snap.error}", message, message, message, tables.no_rows()
    demo = building_status(store_path) if store_path is not None and source == "demo" else None
    if demo is not None and "demo" not in set(snap.averages.get("source", ())):  # not memoised: the estimate moves
        message = figures.message_figure("The demo is building: see the note above.")
        return (demo.coming("each demo model's meta-task averages (after its fine-tuning)", needs_training=True),
                message, message, message, tables.no_rows())
    return snap.memo(("overview", source), lambda: _build(snap, source))


def _build(snap: Snapshot, source: str) -> tuple:
    averages = snap.averages
    if source != "compare":
        averages = averages[averages["source"] == source]
    present = [s for s in SOURCES if s in set(averages["source"])]
    if not present:
        empty = figures.message_figure(f"No {source} runs in the store yet.")
        return f"No **{source}** runs in the store yet.", empty, empty, empty, tables.no_rows()
    note = "  \n".join(f"**{name}**: {rest}" for name, _, rest in
                       (figures.SOURCE_NOTES[s].partition(": ") for s in present))
    note += ("  \nPrecision@1, default variant, final stage; averages are over the stored per-dataset numbers. "
             "Error bars: 95% intervals (a bootstrap over each run's queries; for the paper's numbers computed "
             "from each dataset's eval size n, which the paper does not publish). Hover a bar for its interval, "
             "or for why it has none.")
    if TEXT_META_TASK in set(averages["meta_task"]) or "paper" in present:
        note += ("  \n**text**: text-only retrieval (DiffEmbed's question: AR vs diffusion LMs as text embedders), "
                 "evaluated zero-shot: it has no training split. The paper has no text meta-task, so the paper's "
                 "numbers show none there (absent, not 0).")
    skipped = tables.skipped_data_note(snap.runs, present)
    if skipped:
        note += "  \n" + skipped
    gaps = snap.gaps if source == "compare" else snap.gaps[snap.gaps["source"] == source]
    table = tables.overview_table(averages, snap.reported)
    numbers = ["average", "in_domain", "ood", "printed"]
    return (note, figures.meta_task_bars(averages), figures.gap_bars(gaps), figures.id_ood_bars(averages),
            table.style.format("{:.1f}", subset=numbers, na_rep=""))


def build(ctx: Context) -> None:
    source = gr.Radio(SOURCE_CHOICES, value=DEFAULT_SOURCE, label="Source", elem_id="overview-source")
    note = gr.Markdown()
    bars = gr.Plot(label="Meta-task averages")
    id_ood = gr.Plot(label="In-domain vs OOD")
    gap = gr.Plot(label="AR vs diffusion gap")
    table = gr.Dataframe(label="Averages (with the average the paper printed)", interactive=False)
    views = [note, bars, gap, id_ood, table]

    def show(source_key: str) -> tuple:
        return overview_view(ctx.store.snapshot(), source_key if source_key in SOURCE_KEYS else DEFAULT_SOURCE,
                             ctx.store.path)

    def restore(request: gr.Request) -> tuple:
        chosen = Params.of(request).choice("source", SOURCE_KEYS, DEFAULT_SOURCE)
        return (chosen, *show(chosen))

    source.input(show, [source], views, api_name="overview", trigger_mode="always_last",
                 queue=False, **QUIET)
    ctx.on_load(restore, [source, *views])
    ctx.on_new_data(show, [source], views)
    track(source, "source", DEFAULT_SOURCE)


TAB = Tab(id="overview", title="Overview", build=build)
