"""What "every tab filled" means, measured on the store the dashboard reads.

A tab is filled when what it draws by default has rows from this machine's store, not a
placeholder: Overview and Per-dataset the paper's numbers (imported before anything else);
Per query a run with per-query ranks; Data scale a demo or pipeline run with a training-sample
count (a zero-shot point counts); Alignment a stored 2-D map; Live retrieval a model its
default search would use (a final or, before it lands, a zero-shot run with embeddings); SQL a query that
answers. Used by bench_demo.py (seconds to every tab filled during a build) and bench_app.py
(the same after a fresh `vlmembed app`). On a fresh store the demo's first look (labelled runs on
a sample, replaced by the full runs later) fills Per query, Data scale, Alignment and Live retrieval.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

TABS = ("overview", "datasets", "per_query", "data_scale", "alignment", "search", "sql")


def first_look_stage(store: Path) -> list[str]:
    """The demo's first look as its status file says now: [] or ["running"], ["landed"], ...
    (pipeline/demo/first_look.py), so a measurement says which content filled the tabs."""
    from pipeline.demo.status import read_status

    status = read_status(store)
    return [status.first_look] if status is not None and status.first_look else []


def filled_tabs(store: Path) -> dict[str, bool]:
    """Each tab: does its default view have content in `store` now? (All False while it cannot be read.)"""
    from storage import StoreError, StoreReader
    from storage.queries import ranked_runs

    out = dict.fromkeys(TABS, False)
    if not Path(store).exists():
        return out
    with contextlib.suppress(StoreError, OSError):
        reader = StoreReader(store)
        try:
            runs = reader.runs()
            scored = len(reader.scores()) > 0
            out["overview"] = out["datasets"] = scored
            out["per_query"] = len(ranked_runs(reader)) > 0
            staged = runs[runs["source"].isin(["demo", "pipeline"]) & runs["train_samples"].notna()]
            out["data_scale"] = len(staged) > 0
            out["alignment"] = len(reader.projected()) > 0
            embedded = reader.embedded_runs()  # the tab's default: each model's final run, else its zero-shot one
            out["search"] = bool(embedded["stage"].isin(["final", "zero-shot"]).any())
            out["sql"] = len(reader._frame("SELECT count(*) AS n FROM runs")) == 1
        finally:
            reader.close()
    return out
