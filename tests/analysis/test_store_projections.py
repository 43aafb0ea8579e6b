"""`project_store` / `vlmembed project`: maps and alignment metrics of stored runs."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from pipeline.analysis.alignment import alignment_metrics, recall_at_1
from pipeline.analysis.store_projections import ProjectionInputError, project_store, sample_pairs
from pipeline.cli import main
from storage import StoreReader
from tests.search.embedded_store import METHODS


@pytest.fixture
def writable_store(embedded_store, tmp_path):
    path = tmp_path / "store.duckdb"
    shutil.copy(embedded_store.path, path)
    return path


def test_every_run_and_dataset_is_projected_on_the_same_pairs(embedded_store):
    reader = StoreReader(embedded_store.path)
    projected = reader.projected()
    assert set(projected["run_id"]) == set(embedded_store.runs)
    assert set(projected["method"]) == set(METHODS)
    assert set(projected["dataset"]) == {"Colours", "ColoursOOD"}
    for dataset in ("Colours", "ColoursOOD"):
        point_sets = {frozenset(zip(reader.projection(r, dataset, "tsne")["item_id"],
                                    reader.projection(r, dataset, "tsne")["role"], strict=True))
                      for r in embedded_store.runs}
        assert len(point_sets) == 1  # every run drawn on the same points
        points = reader.projection(embedded_store.runs[0], dataset, "pca")
        # 16 image queries, and the 8 colour names as shared targets (each one triangle)
        assert (points["role"] == "query").sum() == 16 and (points["role"] == "target").sum() == 8
        assert np.isfinite(points[["x", "y"]].to_numpy()).all()


def test_stored_metrics_are_the_metrics_of_the_stored_embeddings(embedded_store):
    reader = StoreReader(embedded_store.path)
    run = embedded_store.finals[0]
    stored = reader.alignment([run])
    stored = stored[stored["dataset"] == "Colours"].set_index("metric")["value"]
    pairs = reader.pairs("Colours").sort_values("row_idx")
    ids, vecs = reader.embeddings(run)
    row = {item: i for i, item in enumerate(ids)}
    expected = alignment_metrics(vecs[[row[q] for q in pairs["query_item"]]], vecs[[row[t] for t in pairs["gold_item"]]],
                                 "image", "text", query_ids=list(pairs["query_item"]),
                                 target_ids=list(pairs["gold_item"]))
    for name in ("paired_cosine_distance", "modality_gap", "alignment", "uniformity", "i2t_recall@1", "t2i_recall@1"):
        assert stored[name] == pytest.approx(expected[name], rel=1e-5, abs=1e-6), name
    assert stored["n_pairs"] == 16


def test_recall_with_shared_targets_asks_each_item_once():
    # three images of two classes; the label texts are shared targets
    q = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    t = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert recall_at_1(q, t, ["a", "b", "c"], ["cat", "cat", "dog"]) == 100.0
    # text to image: "cat" finds image a (paired), "dog" finds c
    assert recall_at_1(t, q, ["cat", "cat", "dog"], ["a", "b", "c"]) == 100.0
    wrong = np.array([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    assert recall_at_1(q, wrong, ["a", "b", "c"], ["cat", "cat", "dog"]) == 0.0


def test_pair_sample_is_seeded_and_independent_of_runs():
    pairs = pd.DataFrame({"row_idx": range(100), "query_item": [f"q{i}" for i in range(100)],
                          "gold_item": [f"t{i % 7}" for i in range(100)]})
    a = sample_pairs("D", pairs, 10, seed=0)
    b = sample_pairs("D", pairs.sample(frac=1.0, random_state=3), 10, seed=0)
    assert a == b and len(a) == 10 and a.rows == sorted(a.rows)
    assert sample_pairs("D", pairs, 10, seed=1).rows != a.rows
    assert len(sample_pairs("D", pairs.head(5), 10)) == 5


def test_cli_projects_one_run_with_one_method(writable_store, embedded_store, capsys):
    run = embedded_store.finals[0]
    assert main(["project", "--store", str(writable_store), "--run", run, "--method", "pca", "--no-progress",
                 "--max-pairs", "5"]) == 0
    assert "2 projections" in capsys.readouterr().out
    reader = StoreReader(writable_store)
    pca = reader.projected().query("method == 'pca'")
    assert set(pca.query("n_queries == 5")["run_id"]) == {run} and set(pca.query("run_id != @run")["n_queries"]) == {16}
    assert reader.alignment([run]).query("metric == 'n_pairs'")["value"].tolist() == [5.0, 5.0]


@pytest.mark.parametrize("kwargs, message", [
    (dict(run_ids=["no-such-run"]), "unknown run id"),
    (dict(methods=["mds"]), "unknown projection method"),
    (dict(max_pairs=2), "--max-pairs must be at least 3"),
    (dict(datasets=["Nope"]), "unknown dataset"),
])
def test_bad_requests_are_clear_errors(writable_store, kwargs, message):
    with pytest.raises(ProjectionInputError, match=message):
        project_store(writable_store, progress=False, **kwargs)


def test_runs_without_embeddings_are_refused(paper_store, capsys):
    with pytest.raises(ProjectionInputError, match="has stored embeddings"):
        project_store(paper_store, progress=False)
    run = StoreReader(paper_store).runs()["run_id"].iloc[0]
    assert main(["project", "--store", str(paper_store), "--run", run]) == 2
    assert "stored no embeddings" in capsys.readouterr().err


def test_project_into_an_open_writer_publishes_with_its_owner(writable_store, embedded_store):
    from storage import StoreWriter

    run = embedded_store.finals[1]
    with StoreWriter(writable_store) as writer:
        assert project_store(writer, run_ids=[run], method="pca", datasets=["Colours"], max_pairs=4,
                             progress=False) == 1
        assert 4 not in set(StoreReader(writable_store).projected()["n_queries"])  # not published yet
    shrunk = StoreReader(writable_store).projected().query("n_queries == 4")
    assert shrunk[["run_id", "dataset", "method"]].values.tolist() == [[run, "Colours", "pca"]]
