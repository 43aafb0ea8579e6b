"""The Data scale tab (the paper's Figure 3): curves per model and meta-task, intervals, the reference."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from app import data_scale_view as view
from app.store import StoreCache
from app.tabs import TABS
from app.tabs.data_scale import data_scale_view, default_source
from pipeline.demo.status import DemoStatus
from storage.reference import REFERENCE_LABEL, vlm2vec_reference
from tests.app.helpers import DEMO_CHECKPOINTS, DEMO_FINAL, DEMO_FINAL_SAMPLES


def test_the_tab_is_registered_between_per_query_and_alignment():
    ids = [t.id for t in TABS]
    assert "data_scale" in ids and ids.index("data_scale") == ids.index("alignment") - 1


def test_one_point_per_model_meta_task_and_stage_ordered_by_training_samples(snapshot):
    points = view.data_scale_points(snapshot.scores, snapshot.intervals, "demo")
    assert set(points["model"]) == set(DEMO_FINAL)
    assert set(points["meta_task"]) == {"classification", "vqa", "retrieval"}
    samples = sorted([*DEMO_CHECKPOINTS, DEMO_FINAL_SAMPLES])
    for (_, _), curve in points.groupby(["model", "meta_task"]):
        assert curve["train_samples"].tolist() == samples
        assert curve["stage"].tolist() == ["checkpoint"] * len(DEMO_CHECKPOINTS) + ["final"]
    # classification has two datasets: the point is their mean, offset by the checkpoint's known amount
    lavida = points[(points["model"] == "lavida-tiny") & (points["meta_task"] == "classification")]
    expected = (DEMO_FINAL["lavida-tiny"]["emoji-names"] + DEMO_FINAL["lavida-tiny"]["fashion-mnist"]) / 2
    assert lavida["value"].tolist() == pytest.approx([expected + off for off in DEMO_CHECKPOINTS.values()] + [expected])
    in_domain = view.data_scale_points(snapshot.scores, snapshot.intervals, "demo", "in_domain")
    assert set(in_domain["meta_task"]) == {"classification", "vqa"}  # the retrieval dataset is OOD


def test_runs_without_training_samples_are_left_out_and_a_bad_split_is_refused(snapshot):
    assert view.data_scale_points(snapshot.scores, snapshot.intervals, "paper").empty  # published rows: no x
    with pytest.raises(ValueError, match="split must be one of all, in_domain, ood"):
        view.data_scale_points(snapshot.scores, snapshot.intervals, "demo", "held-out")


def _scores() -> pd.DataFrame:
    rows = []
    for stage, samples, value in (("final", 300, 30.0), ("zero-shot", 0, 10.0), ("checkpoint", 100, 20.0)):
        for dataset, delta in (("A", -1.0), ("B", 1.0)):
            rows.append(dict(source="demo", experiment="e", model="M", paradigm="diffusion", variant="default",
                             meta_task="vqa", stage=stage, train_samples=samples, run_id=f"r-{stage}",
                             dataset=dataset, in_domain=dataset == "A", metric="precision@1", value=value + delta))
    return pd.DataFrame(rows)


def test_intervals_attach_to_their_run_and_split_and_stages_sort_from_zero_shot():
    intervals = pd.DataFrame([
        dict(run_id="r-final", meta_task="vqa", scope="average", metric="precision@1", split="all", lower=27.0,
             upper=33.0),
        dict(run_id="r-final", meta_task="vqa", scope="average", metric="precision@1", split="ood", lower=1.0,
             upper=2.0),
        dict(run_id="r-final", meta_task="vqa", scope="average", metric="mrr", split="all", lower=5.0, upper=6.0)])
    points = view.data_scale_points(_scores(), intervals, "demo")
    assert points["stage"].tolist() == ["zero-shot", "checkpoint", "final"]
    assert points["value"].tolist() == [10.0, 20.0, 30.0]
    final = points.iloc[-1]
    assert (final["lower"], final["upper"]) == (27.0, 33.0)
    assert points["lower"].iloc[:2].isna().all()  # no interval stored: no error bar, nothing made up
    figure = view.data_scale_figure(points, vlm2vec_reference())
    model = next(t for t in figure.data if t.name == "M")
    assert list(model.error_y.array)[-1] == pytest.approx(3.0) and pd.isna(list(model.error_y.array)[0])


def test_the_figure_draws_the_reference_level_labelled_as_published_full_scale(snapshot):
    points = view.data_scale_points(snapshot.scores, snapshot.intervals, "demo")
    reference = vlm2vec_reference()
    figure = view.data_scale_figure(points, reference)
    lines = [t for t in figure.data if t.name and t.name.startswith(REFERENCE_LABEL)]
    assert len(lines) == 3 and sum(bool(t.showlegend) for t in lines) == 1
    assert {t.y[0] for t in lines} == set(reference["value"])
    assert "full MMEB training" in lines[0].name
    without = view.data_scale_figure(points, None)
    assert not [t for t in without.data if t.name and t.name.startswith(REFERENCE_LABEL)]
    assert {t.name for t in without.data} == set(DEMO_FINAL)


def test_each_point_links_to_its_run_in_the_alignment_tab():
    projected = pd.DataFrame([
        dict(run_id="r-zero", dataset="D", method="umap", model="M", experiment="e", variant="default",
             train_task=None),
        dict(run_id="r-final", dataset="D", method="umap", model="M", experiment="e", variant="default",
             train_task="vqa")])
    links = view.alignment_links(projected)
    assert "tab=alignment" in links["r-zero"] and "stage_a=r-zero" in links["r-zero"]
    assert "model_a=M%7Ce%7Cdefault%7Cvqa" in links["r-zero"]  # the zero-shot run joins its lineage's key
    alone = view.alignment_links(projected.iloc[:1])
    assert "model_a=M%7Ce%7Cdefault%7C&" in alone["r-zero"]  # no trained run mapped yet: an empty task
    table = view.points_table(view.data_scale_points(_scores(), None, "demo"), {"r-final": links["r-final"]})
    assert table["map"].tolist()[:2] == ["", ""] and table["map"].iloc[-1].startswith("[open](?tab=alignment")


def test_the_view_prefers_pipeline_runs_and_cites_the_reference_in_its_note(mixed_store_file, tmp_path):
    store = StoreCache(mixed_store_file)
    assert default_source(store.snapshot()) == "pipeline"  # the mixed store has a pipeline run with samples
    note, _, table = data_scale_view(store, "demo", "all", True)
    assert REFERENCE_LABEL in note and "Source: Jiang et al." in note and len(table) == 2 * 3 * 3
    assert REFERENCE_LABEL not in data_scale_view(store, "demo", "all", False)[0]
    assert default_source(StoreCache(tmp_path / "none.duckdb").snapshot()) == "demo"  # unreadable: no crash


def test_while_the_demo_builds_an_empty_view_says_what_is_coming_and_when(tmp_path):
    from storage import StoreWriter
    from storage.paper_import import import_paper

    path = tmp_path / "store.duckdb"
    with StoreWriter(path) as writer:
        import_paper(writer)
    status = DemoStatus(families=["A", "B", "C", "D"], costs={}, expected_s=600, started_at=time.time() - 20,
                        running=["A: pretraining and zero-shot"])
    status.write(path)
    note, _, table = data_scale_view(StoreCache(path), "demo", "all", True)
    assert table.empty
    assert "zero-shot points will appear here in about" in note and "0/4 families done" in note
    assert "Demo building in the background" in note
    assert "left (estimate)" in note and "A: pretraining and zero-shot" in note
    assert "vlmembed demo` lands" not in note  # no advice to run what is already running
