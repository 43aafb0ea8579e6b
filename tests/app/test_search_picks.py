"""Live retrieval's per-model picks: a tick and a stage per model, resolved to run ids."""

from __future__ import annotations

from app import search_picks as sp
from pipeline.search.engine import RunInfo


def run(model, stage, task, samples=None):
    label = f"{task or 'retrieval'} {stage}" + (f" @ {samples} samples" if samples else "")
    return RunInfo(f"{model}:{task}:{stage}:{samples}", model, label, stage, samples, task, "demo", 8, None)


RUNS = [run("AR", "zero-shot", None, 0), run("AR", "checkpoint", "vqa", 1600), run("AR", "final", "vqa", 4000),
        run("AR", "final", "retrieval", 4000), run("Diff", "final", "vqa", 4000), run("Diff", "final", "retrieval", 4000),
        run("Untrained", "zero-shot", None, 0)]


def test_final_means_the_final_run_on_the_chosen_task_and_a_run_id_means_that_run():
    got = sp.resolve(RUNS, ["AR", "Diff"], {"AR": "AR:vqa:checkpoint:1600", "Diff": sp.FINAL}, "retrieval")
    assert got.run_ids == ["AR:vqa:checkpoint:1600", "Diff:retrieval:final:4000"] and got.missing == []
    got = sp.resolve(RUNS, ["AR", "Diff"], {}, "vqa")
    assert got.run_ids == ["AR:vqa:final:4000", "Diff:vqa:final:4000"]
    # another model's run id is not a stage of this one: it means final
    assert sp.resolve(RUNS, ["Diff"], {"Diff": "AR:vqa:final:4000"}, "vqa").run_ids == ["Diff:vqa:final:4000"]


def test_a_model_without_a_final_run_on_the_task_is_reported_missing():
    runs = [*RUNS, run("RetOnly", "zero-shot", None, 0), run("RetOnly", "final", "retrieval", 4000)]
    got = sp.resolve(runs, ["AR", "RetOnly"], {}, "vqa")
    assert got.run_ids == ["AR:vqa:final:4000"] and got.missing == ["RetOnly"]
    assert "RetOnly" in got.note("vqa") and sp.Resolved(["x"], []).note("vqa") == ""


def test_a_model_with_no_final_run_at_all_is_searched_with_its_zero_shot_run():
    """Untrained baselines, and every miniature while the demo lands zero-shot runs first."""
    got = sp.resolve(RUNS, ["AR", "Untrained"], {}, "vqa")
    assert got.run_ids == ["AR:vqa:final:4000", "Untrained:None:zero-shot:0"] and got.missing == []


def test_stage_choices_start_with_final_then_run_in_training_order():
    values = [v for _, v in sp.stage_choices(RUNS, "AR")]
    assert values[0] == sp.FINAL and values[1] == "AR:None:zero-shot:0" and values[2] == "AR:vqa:checkpoint:1600"
    assert [v for _, v in sp.stage_choices(RUNS, "Untrained")] == ["Untrained:None:zero-shot:0"]  # no "final"


def test_default_ticks_are_the_models_with_a_default_run():
    assert sp.default_ticks(RUNS, ["Diff:vqa:final:4000"]) == ["Diff"]
    assert sp.models_of(RUNS) == ["AR", "Diff", "Untrained"]


def test_url_form_round_trips_and_drops_unknown_models():
    stages = {"AR": "AR:vqa:checkpoint:1600", "Diff": sp.FINAL}
    items = sp.encode(["AR", "Diff"], stages)
    assert items == ["AR@AR:vqa:checkpoint:1600", "Diff"]
    assert sp.decode(items + ["Gone", "Diff"], ["AR", "Diff", "A@B"]) == (["AR", "Diff"], stages)
    assert sp.decode(["A@B"], ["A", "A@B"]) == (["A@B"], {"A@B": sp.FINAL})  # a name holding "@"
