"""The text meta-task in the dashboard: a fourth meta-task in the Overview, absent (not 0) for the paper."""

from __future__ import annotations

from app import figures
from app.store import StoreCache
from app.tabs.overview import overview_view
from storage import DatasetRecord, ModelRecord, RunRecord, ScoreRecord, StoreWriter
from storage.paper_import import import_paper

TEXT_SET = DatasetRecord("SceneParaphrase", "builtin", "text", False, "text", "text")


def _text_run(model: str, variant: str, stage: str, value: float) -> RunRecord:
    return RunRecord(run_id=f"demo:x:{model}:text:{variant}:{stage}", source="demo", model=model, label="text",
                     variant=variant, stage=stage, train_task="retrieval" if stage == "final" else None,
                     scores=[ScoreRecord("SceneParaphrase", "precision@1", value, 100)])


def test_text_runs_show_as_a_fourth_meta_task_and_the_paper_has_none(tmp_path) -> None:
    path = tmp_path / "store.duckdb"
    with StoreWriter(path) as writer:
        import_paper(writer)
        writer.upsert_models([ModelRecord("ar-tiny", "AR tiny", "autoregressive", "tiny"),
                              ModelRecord("diff-tiny", "Diffusion tiny", "diffusion", "tiny"),
                              ModelRecord("diff-tiny", "Diffusion tiny", "diffusion", "tiny", variant="causal-last")])
        writer.upsert_datasets([TEXT_SET])
        writer.add_run(_text_run("ar-tiny", "default", "zero-shot", 4.0))
        writer.add_run(_text_run("diff-tiny", "default", "zero-shot", 9.0))
        writer.add_run(_text_run("diff-tiny", "causal-last", "zero-shot", 1.0))  # not the headline
        writer.add_run(_text_run("diff-tiny", "default", "final", 12.0))
    snap = StoreCache(path).snapshot()
    text = snap.averages[snap.averages["meta_task"] == "text"]
    assert sorted(zip(text["label"], text["average"], strict=True)) == [
        ("ar-tiny (zero-shot)", 4.0), ("diff-tiny", 12.0), ("diff-tiny (zero-shot)", 9.0)]
    assert "text" not in set(snap.averages[snap.averages["source"] == "paper"]["meta_task"])
    gap = snap.gaps[(snap.gaps["meta_task"] == "text") & (snap.gaps["split"] == "all")]
    assert list(gap["gap"]) == [4.0 - 12.0]
    note, bars, _gap, _id_ood, table = overview_view(snap, "demo")
    assert "**text**" in note and "not 0" in note
    assert "text" in set(table.data["meta_task"])
    assert "text" in {x for trace in bars.data for x in trace.x}
    _, _, _, id_ood, _ = overview_view(snap, "compare")
    assert "not in the paper" in {a.text for a in id_ood.layout.annotations}


def test_absent_note_says_the_paper_has_no_text_task() -> None:
    assert figures.absent_note("paper", "text") == "not in the paper"
    assert figures.absent_note("demo", "vqa") == "no demo runs on vqa"
