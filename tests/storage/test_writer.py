"""A run lands whole or not at all; the published file only ever changes by atomic swap."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import duckdb
import numpy as np
import pytest

from storage import ModelRecord, RunConflictError, StoreBusyError, StoreReader, StoreWriter
from storage.vectors import vectors_dir
from tests.storage.helpers import seed_catalogue, toy_run


def _count(path, table: str) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        con.close()


def test_run_lands_with_scores_and_embeddings(tmp_path):
    path = tmp_path / "s.duckdb"
    with StoreWriter(path) as w:
        ids = seed_catalogue(w)
        w.add_run(toy_run("r1", ids))
    reader = StoreReader(path)
    got_ids, vecs = reader.embeddings("r1")
    assert got_ids == sorted(ids)
    assert vecs.shape == (6, 4)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-3)  # stored as float16
    scores = reader.scores()
    assert scores[["run_id", "dataset", "value"]].values.tolist() == [["r1", "toy", 50.0]]
    assert set(reader._frame("SELECT role FROM v_embeddings WHERE run_id = 'r1'")["role"]) == {"query", "target"}


def test_exception_half_way_leaves_no_trace(tmp_path, monkeypatch):
    path = tmp_path / "s.duckdb"
    with StoreWriter(path) as w:
        ids = seed_catalogue(w)
    writer = StoreWriter(path)
    real_insert = StoreWriter._insert_run

    def insert_then_fail(self, con, run, file):
        real_insert(self, con, run, file)  # every row of the run is written ...
        raise RuntimeError("disk full")  # ... and then the transaction fails

    monkeypatch.setattr(StoreWriter, "_insert_run", insert_then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        writer.add_run(toy_run("r1", ids))
    monkeypatch.setattr(StoreWriter, "_insert_run", real_insert)
    for table in ("runs", "scores", "embedding_rows", "embedding_files"):
        assert writer.execute(f"SELECT count(*) FROM {table}")[0][0] == 0, table
    assert not list(vectors_dir(path).iterdir())  # nor its matrix file
    writer.add_run(toy_run("r2", ids))  # the writer is still usable
    writer.publish()
    assert _count(path, "runs") == 1


def test_exception_inside_context_discards_everything(tmp_path):
    path = tmp_path / "s.duckdb"
    with StoreWriter(path) as w:
        ids = seed_catalogue(w)
    with pytest.raises(ValueError, match="boom"), StoreWriter(path) as w:
        w.add_run(toy_run("r1", ids))
        raise ValueError("boom")
    assert _count(path, "runs") == 0
    assert not list(tmp_path.glob(".s.duckdb.writing-*"))


def test_killed_writer_leaves_published_file_untouched(tmp_path):
    path = tmp_path / "s.duckdb"
    with StoreWriter(path) as w:
        ids = seed_catalogue(w)
        w.add_run(toy_run("before", ids))
    before = path.read_bytes()
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(__import__('pathlib').Path.cwd())!r})
        from storage import StoreWriter
        from tests.storage.helpers import toy_run
        w = StoreWriter({str(path)!r})
        w.add_run(toy_run("during", {ids!r}))
        os._exit(9)  # killed before publish
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    assert path.read_bytes() == before
    assert list(tmp_path.glob(".s.duckdb.writing-*")), "the dead writer's copy is still there"
    with StoreWriter(path) as w:  # the next writer cleans up after it
        assert not w.has_run("during") and w.has_run("before")
    assert not list(tmp_path.glob(".s.duckdb.writing-*"))


def test_one_writer_at_a_time(tmp_path):
    path = tmp_path / "s.duckdb"
    first = StoreWriter(path)
    with pytest.raises(StoreBusyError, match="one writer at a time"):
        StoreWriter(path)
    first.abort()
    StoreWriter(path).abort()  # free again


def test_duplicate_run_is_refused_unless_replaced(tmp_path):
    path = tmp_path / "s.duckdb"
    with StoreWriter(path) as w:
        ids = seed_catalogue(w)
        w.add_run(toy_run("r1", ids, value=10.0))
        with pytest.raises(RunConflictError, match="already stored"):
            w.add_run(toy_run("r1", ids))
        w.add_run(toy_run("r1", ids, value=20.0), replace=True)
    assert StoreReader(path).scores()["value"].tolist() == [20.0]


def test_run_refers_to_unknown_model_or_dataset(tmp_path):
    with StoreWriter(tmp_path / "s.duckdb") as w:
        ids = seed_catalogue(w)
        run = toy_run("r1", ids)
        run.model = "nobody"
        with pytest.raises(ValueError, match="not in `models`"):
            w.add_run(run)
        run = toy_run("r2", ids)
        run.variant = "vision-unfrozen"  # the model is known, but not this variant of it
        with pytest.raises(ValueError, match="variant 'vision-unfrozen' is not in `models`"):
            w.add_run(run)


def test_a_variant_keeps_its_own_model_record(tmp_path):
    path = tmp_path / "s.duckdb"
    with StoreWriter(path) as w:
        ids = seed_catalogue(w)
        w.upsert_models([ModelRecord("m-tiny", "m tiny", "diffusion", "tiny", family="lavida",
                                     vision_update="trained", variant="unfrozen")])
        w.add_run(toy_run("r1", ids))
        run = toy_run("r2", ids, value=70.0)
        run.variant = "unfrozen"
        w.add_run(run)
        w.upsert_models([ModelRecord("m-tiny", "m tiny (again)", "diffusion", "tiny", family="lavida")])  # replaces
    reader = StoreReader(path)
    models = reader.models().set_index("variant")
    assert models["vision_update"].fillna("-").to_dict() == {"default": "-", "unfrozen": "trained"}
    assert models.loc["default", "display_name"] == "m tiny (again)"
    scores = reader._frame("SELECT run_id, variant, value FROM v_scores ORDER BY run_id")
    assert scores.values.tolist() == [["r1", "default", 50.0], ["r2", "unfrozen", 70.0]]
    assert len(reader.runs()) == 2 and len(reader.embedded_runs()) == 2
    reader.close()


@pytest.mark.parametrize("model, variant", [(" ", "default"), ("m", "")])
def test_model_record_needs_a_name_and_variant(model, variant):
    with pytest.raises(ValueError, match="model name and a variant"):
        ModelRecord(model, "m", "diffusion", "tiny", variant=variant)


@pytest.mark.parametrize("bad", ["nan_embedding", "wrong_shape", "nan_score"])
def test_malformed_run_records_are_rejected_before_writing(bad):
    ids = ["a", "b"]
    with pytest.raises(ValueError):
        if bad == "nan_embedding":
            run = toy_run("r", ids)
            run.embeddings[0, 0] = np.nan
            run.__post_init__()
        elif bad == "wrong_shape":
            run = toy_run("r", ids)
            run.embeddings = run.embeddings[:1]
            run.__post_init__()
        else:
            from storage import ScoreRecord

            ScoreRecord("toy", "precision@1", float("inf"))


def test_publish_keep_open_continues_on_a_new_copy(tmp_path):
    path = tmp_path / "s.duckdb"
    w = StoreWriter(path)
    ids = seed_catalogue(w)
    w.add_run(toy_run("r1", ids))
    w.publish(keep_open=True)
    assert _count(path, "runs") == 1
    w.add_run(toy_run("r2", ids))
    assert _count(path, "runs") == 1  # not yet published
    w.publish()
    assert _count(path, "runs") == 2


def test_a_writer_that_changed_nothing_leaves_the_published_file_alone(tmp_path):
    path = tmp_path / "s.duckdb"
    with StoreWriter(path) as w:
        ids = seed_catalogue(w)
        w.add_run(toy_run("r1", ids), replace=True)
        w.publish(keep_open=True)  # as the runner does after each run
    published = path.stat()
    with StoreWriter(path) as w:  # reads only: readers must not see a new version
        assert w.has_run(source="demo") and not w.has_run(source="paper") and w.has_run("r1")
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (published.st_ino, published.st_mtime_ns)
    assert not list(tmp_path.glob(".*.writing-*")), "the unchanged working copy is removed"
    with StoreWriter(path) as w:
        w.add_run(toy_run("r2", ids))
    assert path.stat().st_ino != published.st_ino and _count(path, "runs") == 2


def test_projection_and_alignment_round_trip(tmp_path):
    path = tmp_path / "s.duckdb"
    with StoreWriter(path) as w:
        ids = seed_catalogue(w)
        w.add_run(toy_run("r1", ids))
        xy = np.arange(12, dtype=float).reshape(6, 2)
        w.set_projection("r1", "toy", "pca", ids, ["query"] * 3 + ["target"] * 3, xy)
        w.set_alignment("r1", "toy", {"modality_gap": 0.5})
        with pytest.raises(ValueError, match="NaN"):
            w.set_projection("r1", "toy", "pca", ids, ["query"] * 6, xy * np.nan)
    reader = StoreReader(path)
    proj = reader.projection("r1", "toy", "pca")
    assert len(proj) == 6 and set(proj["role"]) == {"query", "target"}
    assert reader.alignment(["r1"])["value"].tolist() == [0.5]


def test_merge_runs_copies_the_runs_whole_and_replaces_stored_ones(tmp_path):
    main, worker = tmp_path / "main.duckdb", tmp_path / "worker.duckdb"
    with StoreWriter(main) as w:
        ids = seed_catalogue(w)
        w.add_run(toy_run("kept", ids))
        w.add_run(toy_run("r1", ids, value=10.0))
    with StoreWriter(worker) as w:
        ids = seed_catalogue(w)
        w.add_run(toy_run("r1", ids, value=75.0))
        w.add_run(toy_run("r2", ids, value=25.0))
        w.add_run(toy_run("not-asked-for", ids))
        w.set_alignment("r2", "toy", {"modality_gap": 0.5})
    with StoreWriter(main) as w:
        w.merge_runs(worker, ["r1", "r2"])
    reader = StoreReader(main)
    values = dict(reader._frame("SELECT run_id, value FROM scores").values.tolist())
    assert values == {"kept": 50.0, "r1": 75.0, "r2": 25.0}
    assert reader.embeddings("r2")[1].shape == (6, 4)
    assert reader._frame("SELECT value FROM alignment WHERE run_id = 'r2'")["value"].tolist() == [0.5]
    reader.close()
    assert _count(worker, "runs") == 3  # the source is only read


def test_merge_runs_of_an_unknown_run_changes_nothing(tmp_path):
    main, worker = tmp_path / "main.duckdb", tmp_path / "worker.duckdb"
    with StoreWriter(worker) as w:
        w.add_run(toy_run("r1", seed_catalogue(w)))
    with StoreWriter(main) as w:
        seed_catalogue(w)
    with StoreWriter(main) as w, pytest.raises(ValueError, match="no run 'ghost'"):
        w.merge_runs(worker, ["r1", "ghost"])
    assert _count(main, "runs") == 0


def test_merge_runs_refuses_a_store_of_another_schema_version(tmp_path):
    main, worker = tmp_path / "main.duckdb", tmp_path / "worker.duckdb"
    with StoreWriter(worker) as w:
        w.add_run(toy_run("r1", seed_catalogue(w)))
    con = duckdb.connect(str(worker))
    con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    con.close()
    with StoreWriter(main) as w:
        seed_catalogue(w)
        with pytest.raises(ValueError, match="schema version 1.*vlmembed migrate"):
            w.merge_runs(worker, ["r1"])
        assert w.execute("SELECT count(*) FROM runs")[0][0] == 0
        # the refused store is detached again
        assert w.execute("SELECT count(*) FROM duckdb_databases() WHERE database_name = 'other'")[0][0] == 0


def test_thumbnail_hashes_and_dataset_items_are_kept_when_rows_land(tmp_path):
    """App start reads them from two small tables instead of hashing every thumbnail and unnesting
    every candidate list (issue 18)."""
    import hashlib

    from storage import DatasetRow, ItemRecord

    path = tmp_path / "s.duckdb"
    with StoreWriter(path) as w:
        ids = seed_catalogue(w)
        w.add_items([ItemRecord("img", "image", thumbnail=b"\x89PNG not really")])
        w.set_dataset_rows("toy", [DatasetRow("toy", 0, "img", (ids[4], ids[5]))])
    reader = StoreReader(path)
    queries = reader.eval_queries()
    assert queries["thumbnail_md5"].tolist() == [hashlib.md5(b"\x89PNG not really").hexdigest()]
    # the same value DuckDB's md5 gives, which the 6 -> 7 migration uses for stored items
    assert reader._frame("SELECT md5(thumbnail) AS h FROM items WHERE item_id = 'img'")["h"][0] == \
        queries["thumbnail_md5"][0]
    assert set(map(tuple, reader.dataset_items().values.tolist())) == {
        ("toy", "img", "query"), ("toy", ids[4], "target"), ("toy", ids[5], "target")}
