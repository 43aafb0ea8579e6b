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


def test_search_picked_resolves_each_ticked_model_at_its_own_stage(store, embedded_store):
    runs = tab.engine_runs(store)
    models = tab.search_picks.models_of(runs)
    checkpoint = next(r for r in runs if r.model == models[0] and r.stage == "checkpoint")
    # model 0 at its checkpoint, model 1 at "final": two columns, each the run asked for
    status, _, _, raw, _ = tab.search_picked(store, None, "red", "", tab.ALL, 2, tab.AUTO, models, [True, True],
                                             [checkpoint.run_id, tab.search_picks.FINAL])
    assert "2 of 2 models answered" in status
    assert [r["run_id"] for r in raw["runs"]] == [checkpoint.run_id,
                                                  next(f for f in embedded_store.finals if models[1] in f)]
    # a ticked model with no final run on the chosen task is named, not silently swapped
    status, *_ = tab.search_picked(store, None, "red", "", tab.ALL, 2, "vqa", models, [True, False],
                                   [tab.search_picks.FINAL, None])
    assert status.startswith("⚠️") and "vqa" in status


def test_model_slots_show_one_tick_and_one_stage_list_per_model(store):
    runs = tab.engine_runs(store)
    models = tab.search_picks.models_of(runs)
    out = tab.slot_updates(runs, [models[1]], {models[1]: "nope"})
    rows, ticks, stages = out[:tab.MAX_MODELS], out[tab.MAX_MODELS:2 * tab.MAX_MODELS], out[2 * tab.MAX_MODELS:-1]
    assert out[-1] == models and len(models) == 2
    assert [r["visible"] for r in rows[:3]] == [True, True, False]
    assert [t["label"] for t in ticks[:2]] == models and [t["value"] for t in ticks[:2]] == [False, True]
    assert stages[1]["value"] == tab.search_picks.FINAL  # an unknown stage falls back to the default
    assert [v for _, v in stages[0]["choices"]][0] == tab.search_picks.FINAL and len(stages[0]["choices"]) == 3


def test_preview_on_upload_is_the_upright_image_or_a_message(embedded_store, tmp_path):
    path, message = tab.preview(str(embedded_store.eval_image(1)))
    assert path.endswith(".png") and message == ""
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    path, message = tab.preview(str(broken))
    assert path is None and message.startswith("⚠️")
    assert tab.preview(None) == (None, "")
