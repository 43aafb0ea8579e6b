"""`vlmembed merge`: runs from stores written on other machines land in one store, idempotently;
conflicting runs and stores of another schema are refused."""

from __future__ import annotations

import duckdb

from pipeline.cli import main
from storage import StoreReader, StoreWriter
from tests.storage.helpers import seed_catalogue, toy_run


def _store(path, runs: dict[str, float]):
    with StoreWriter(path) as writer:
        ids = seed_catalogue(writer)
        for run_id, value in runs.items():
            writer.add_run(toy_run(run_id, ids, value=value))
    return path


def _values(path) -> dict[str, float]:
    scores = StoreReader(path).scores(sources=["demo"])
    return dict(zip(scores["run_id"], scores["value"], strict=True))


def test_runs_of_two_machines_land_in_one_store_and_merging_again_changes_nothing(tmp_path, capsys):
    a = _store(tmp_path / "a.duckdb", {"machine-a:run": 40.0})
    b = _store(tmp_path / "b.duckdb", {"machine-b:run1": 60.0, "machine-b:run2": 70.0})
    target = tmp_path / "all.duckdb"
    assert main(["merge", str(a), str(b), "--store", str(target)]) == 0
    out = capsys.readouterr().out
    assert "a.duckdb: 1 runs added, 0 already here" in out and "b.duckdb: 2 runs added" in out
    assert _values(target) == {"machine-a:run": 40.0, "machine-b:run1": 60.0, "machine-b:run2": 70.0}
    ids, vecs = StoreReader(target).embeddings("machine-b:run2")
    assert len(ids) == 6 and vecs.shape == (6, 4)  # runs come whole, embeddings included
    assert main(["merge", str(a), str(b), "--store", str(target)]) == 0
    assert "b.duckdb: 0 runs added, 2 already here" in capsys.readouterr().out
    assert _values(target) == {"machine-a:run": 40.0, "machine-b:run1": 60.0, "machine-b:run2": 70.0}


def test_a_run_with_other_contents_is_reported_and_left_alone(tmp_path, capsys):
    target = _store(tmp_path / "all.duckdb", {"shared:run": 40.0})
    other = _store(tmp_path / "other.duckdb", {"shared:run": 55.0, "new:run": 10.0})
    assert main(["merge", str(other), "--store", str(target)]) == 1
    out = capsys.readouterr().out
    assert "left alone: shared:run" in out and "1 runs added" in out
    assert _values(target) == {"shared:run": 40.0, "new:run": 10.0}


def test_a_store_of_another_schema_version_is_refused_in_one_line(tmp_path, capsys):
    target = _store(tmp_path / "all.duckdb", {"kept:run": 40.0})
    other = _store(tmp_path / "future.duckdb", {"future:run": 10.0})
    with duckdb.connect(str(other)) as con:
        con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    assert main(["merge", str(other), "--store", str(target)]) == 2
    err = capsys.readouterr().err
    assert "schema version 99" in err and len(err.strip().splitlines()) == 1
    assert _values(target) == {"kept:run": 40.0}


def test_a_missing_store_or_the_target_itself_is_refused(tmp_path, capsys):
    target = _store(tmp_path / "all.duckdb", {"kept:run": 40.0})
    assert main(["merge", str(tmp_path / "nope.duckdb"), "--store", str(target)]) == 2
    assert "no such store" in capsys.readouterr().err
    assert main(["merge", str(target), "--store", str(target)]) == 2
    assert "is the store being merged into" in capsys.readouterr().err
    assert _values(target) == {"kept:run": 40.0}
