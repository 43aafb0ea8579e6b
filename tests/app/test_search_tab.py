"""The Live retrieval tab's "Trained on" choice, through the tab's own functions (no server)."""

from __future__ import annotations

import pytest

from app.store import StoreCache
from app.tabs import search as tab


@pytest.fixture(scope="module")
def store(embedded_store):
    return StoreCache(embedded_store.path)


def test_trained_on_choices_are_auto_then_each_meta_task():
    assert [v for _, v in tab.TASKS] == [tab.AUTO, "classification", "vqa", "retrieval"]
    assert tab.TASKS[0][0] == "auto (the pool's meta-task)"


def test_default_runs_follow_the_pool_or_the_chosen_task(store, embedded_store):
    finals = sorted(embedded_store.finals)  # both toy models trained on classification only
    assert tab.default_runs(store, "Colours", tab.AUTO) == finals
    assert tab.default_runs(store, tab.ALL, "classification") == finals
    assert tab.default_runs(store, "Colours", "vqa") == []
    assert tab.default_runs(store, tab.ALL, "nonsense") == []  # a hand-edited URL ticks nothing, raises nothing


def test_run_search_passes_the_task_when_no_model_is_ticked(store):
    status, _, _, raw, _ = tab.run_search(store, None, "red", "", tab.ALL, [], 2, "classification")
    assert "2 of 2 models answered" in status
    assert {r["train_task"] for r in raw["runs"]} == {"classification"}
    status, _, _, raw, _ = tab.run_search(store, None, "red", "", tab.ALL, [], 2, "vqa")
    assert status.startswith("⚠️") and "trained on vqa" in status and "error" in raw
