"""MTEB and VLM2Vec files in and out: metric names and scales mapped, imported runs under their
own source, and every number surviving a round trip."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.cli import main
from pipeline.interop import mteb, vlm2vec
from pipeline.interop.store_io import export_results, import_results, run_scores
from storage import StoreReader

FIXTURES = Path(__file__).parents[1] / "data" / "fixtures" / "interop"


@pytest.fixture
def store(embedded_store, tmp_path) -> Path:
    """A private copy of the embedded store (tiny trained runs with every metric)."""
    path = tmp_path / "store.duckdb"
    shutil.copy(embedded_store.path, path)
    return path


def _scores(reader: StoreReader, run_id: str) -> dict[tuple[str, str], float]:
    return {(d.dataset, m): v for d in run_scores(reader, run_id).datasets for m, v in d.metrics.items()}


def test_vlm2vec_v1_and_v2_metrics_land_in_percent_under_our_names(paper_store, capsys) -> None:
    args = ["--store", str(paper_store), "--format", "vlm2vec"]
    assert main(["import", str(FIXTURES / "vlm2vec_v1"), "--model", "VLM2Vec-v1", *args]) == 2
    assert "--paradigm" in capsys.readouterr().err  # a new model must say what it is
    assert main(["import", str(FIXTURES / "vlm2vec_v1"), "--model", "VLM2Vec-v1", "--paradigm", "autoregressive",
                 *args]) == 0
    assert main(["import", str(FIXTURES / "vlm2vec_v2"), "--model", "LLaVA-1.6", *args]) == 0  # a paper model
    reader = StoreReader(paper_store)
    scores = reader.scores("precision@1", sources=["vlm2vec"])
    got = {(r.model, r.dataset): r.value for r in scores.itertuples()}
    assert got[("VLM2Vec-v1", "ImageNet-1K")] == pytest.approx(65.2)
    assert got[("LLaVA-1.6", "MSCOCO_t2i")] == pytest.approx(80.1)
    ndcg = reader.scores("ndcg@5", sources=["vlm2vec"])
    assert ndcg["value"].tolist() == [pytest.approx(88.32)]
    assert set(reader.scores("recall@5", sources=["vlm2vec"])["value"].round(6)) == {95.4}
    assert set(scores["source"]) == {"vlm2vec"} and set(scores["meta_task"]) == {"classification", "retrieval"}


def test_a_leaderboard_report_imports_its_image_tasks_and_lists_the_rest(paper_store) -> None:
    report = import_results(paper_store, "vlm2vec", FIXTURES / "vlm2vec_report.json", "VLM2Vec-Qwen2VL-7B",
                            paradigm="autoregressive")
    assert sorted(report.datasets) == ["ImageNet-1K", "VOC2007"] and "MSR-VTT" in report.skipped
    values = StoreReader(paper_store).scores(run_ids=[report.run_id])
    assert sorted(values["value"].round(6)) == [74.5, 85.7]


def test_mteb_results_import_with_scale_and_names_mapped(paper_store) -> None:
    report = import_results(paper_store, "mteb", FIXTURES / "mteb", "LaViDa")
    assert report.datasets == ["N24News"] and report.skipped == ["Banking77Classification"]
    reader = StoreReader(paper_store)
    assert reader.scores("precision@1", run_ids=[report.run_id])["value"].tolist() == [pytest.approx(71.234)]
    assert reader.scores("recall@5", run_ids=[report.run_id])["value"].tolist() == [pytest.approx(90.21)]
    assert reader.runs("mteb")["label"].tolist() == ["imported from mteb"]


@pytest.mark.parametrize("fmt", ["mteb", "vlm2vec"])
def test_store_to_file_to_store_keeps_every_number(store, tmp_path, fmt) -> None:
    reader = StoreReader(store)
    run_id = reader.runs()["run_id"].iloc[-1]
    before = _scores(reader, run_id)
    assert {m for _, m in before} == {"precision@1", "recall@5", "mrr", "ndcg@5"}
    written = export_results(store, fmt, tmp_path / "out", [run_id])
    assert written
    folder = written[0].parent
    report = import_results(store, fmt, folder, "round trip", paradigm="autoregressive")
    after = _scores(StoreReader(store), report.run_id)
    assert after.keys() == before.keys()
    for key, value in before.items():
        assert math.isclose(after[key], value, rel_tol=1e-12, abs_tol=1e-12), (key, value, after[key])


@pytest.mark.parametrize("fmt, source", [("mteb", FIXTURES / "mteb" / "N24News.json"),
                                         ("vlm2vec", FIXTURES / "vlm2vec_v2" / "MSCOCO_t2i_score.json")])
def test_file_to_store_to_file_writes_the_same_fields(paper_store, tmp_path, fmt, source) -> None:
    report = import_results(paper_store, fmt, source, "LaViDa")
    written = export_results(paper_store, fmt, tmp_path, [report.run_id])
    again = json.loads(next(p for p in written if p.name == source.name).read_text())
    original = json.loads(source.read_text())
    _assert_same(again, original)


def _assert_same(a, b) -> None:
    """Equal structures; numbers equal up to the scale change's last bit."""
    if isinstance(b, dict):
        assert a.keys() == b.keys(), (sorted(a), sorted(b))
        for k in b:
            _assert_same(a[k], b[k])
    elif isinstance(b, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    elif isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-12), (a, b)
    else:
        assert a == b


def test_formats_refuse_what_they_cannot_read(tmp_path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    with pytest.raises(ValueError, match="not an MTEB result"):
        mteb.read(bad)
    with pytest.raises(ValueError, match="not a VLM2Vec score file"):
        vlm2vec.read(bad)
    with pytest.raises(ValueError, match="_score.json"):
        vlm2vec.read(tmp_path)


def test_parquet_export_holds_scores_ranks_items_runs_and_fixed_size_embeddings(store, tmp_path) -> None:
    out = tmp_path / "pq"
    assert main(["export", "--format", "parquet", "--out", str(out), "--store", str(store)]) == 0
    reader = StoreReader(store)
    con = duckdb.connect()
    n_scores = con.execute(f"SELECT count(*) FROM '{out}/scores.parquet'").fetchone()[0]
    assert n_scores == len(reader._frame("SELECT * FROM v_scores"))
    assert con.execute(f"SELECT count(*) FROM '{out}/runs.parquet'").fetchone()[0] == len(reader.runs())
    for table in ("ranks", "items", "models", "datasets", "dataset_rows"):
        assert con.execute(f"SELECT count(*) FROM '{out}/{table}.parquet'").fetchone()[0] > 0
    files = sorted((out / "embeddings").glob("dim=*/data.parquet"))
    assert [f.parent.name for f in files] == ["dim=64"]
    vec_type = pq.read_schema(files[0]).field("vec").type
    assert pa.types.is_fixed_size_list(vec_type) and vec_type.list_size == 64
    ids, vecs = reader.embeddings(reader.runs()["run_id"].iloc[-1])
    n = con.execute(f"SELECT count(*) FROM read_parquet('{out}/embeddings/*/*.parquet')").fetchone()[0]
    assert n == reader._frame("SELECT count(*) AS n FROM embeddings")["n"][0] and len(ids) == vecs.shape[0]
    one = reader.runs()["run_id"].iloc[0]
    assert main(["export", "--format", "parquet", "--out", str(tmp_path / "one"), "--store", str(store),
                 "--run", one]) == 0
    assert con.execute(f"SELECT list(DISTINCT run_id) FROM '{tmp_path}/one/scores.parquet'").fetchone()[0] == [one]
    assert con.execute(f"SELECT count(*) FROM '{tmp_path}/one/runs.parquet'").fetchone()[0] == 1


def test_import_creates_a_store_that_is_not_there_yet(tmp_path) -> None:
    store = tmp_path / "new.duckdb"
    report = import_results(store, "vlm2vec", FIXTURES / "vlm2vec_v1", "VLM2Vec-v1", paradigm="autoregressive")
    scores = StoreReader(store).scores(run_ids=[report.run_id])
    assert scores["dataset"].tolist() == ["ImageNet-1K"] and scores["value"].tolist() == [pytest.approx(65.2)]
