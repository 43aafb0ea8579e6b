"""Runs imported from VLM2Vec files show in the dashboard's views like any other source."""

from __future__ import annotations

from pathlib import Path

from app import figures
from app.store import StoreCache
from app.tabs.overview import SOURCE_KEYS, overview_view
from pipeline.interop.store_io import import_results
from storage.vocabulary import SOURCES

REPORT = Path(__file__).parents[1] / "data" / "fixtures" / "interop" / "vlm2vec_report.json"


def test_every_source_has_a_note_and_an_overview_choice() -> None:
    assert set(SOURCES) <= set(figures.SOURCE_NOTES)
    assert set(SOURCES) <= set(SOURCE_KEYS)


def test_an_imported_run_shows_alone_and_beside_the_paper(paper_store) -> None:
    import_results(paper_store, "vlm2vec", REPORT, "VLM2Vec-Qwen2VL-7B", paradigm="autoregressive")
    snap = StoreCache(paper_store).snapshot()
    note, *_, table = overview_view(snap, "vlm2vec")
    assert "imported from VLM2Vec" in note
    assert "VLM2Vec-Qwen2VL-7B" in set(table.data["model"])
    note, *_ = overview_view(snap, "compare")
    assert "**paper**" in note and "**vlm2vec**" in note
