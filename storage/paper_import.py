"""Writing the paper's published numbers into a store (`vlmembed import-paper`)."""

from __future__ import annotations

from storage.paper import paper_datasets, paper_models, paper_runs
from storage.writer import StoreWriter


def import_paper(writer: StoreWriter) -> int:
    """Replace the store's paper runs with the published numbers; returns the number of runs."""
    runs = paper_runs()
    writer.upsert_models(paper_models())
    writer.upsert_datasets(paper_datasets())
    writer.delete_source("paper")
    for run in runs:
        writer.add_run(run)
    return len(runs)
