"""The `intervals` table: added to old stores by migration, replaced per run, gone with its run, in v_intervals."""

from __future__ import annotations

import shutil

import duckdb
import pandas as pd
import pytest

from storage import SCHEMA_VERSION, StoreReader, StoreSchemaError, StoreWriter
from storage.intervals import read_intervals, replace_intervals, runs_without_intervals, sized_scores
from storage.migrations import stored_version
from storage.schema import INTERVAL_COLUMNS


def _rows(run_id: str, dataset: str, value: float) -> pd.DataFrame:
    return pd.DataFrame([{"run_id": run_id, "scope": "dataset", "name": dataset, "split": "all",
                          "metric": "precision@1", "value": value, "lower": value - 3, "upper": value + 3,
                          "level": 0.95, "method": "wilson-n", "n_queries": 1000, "n_datasets": 1,
                          "n_resamples": None, "seed": None}], columns=list(INTERVAL_COLUMNS))


def test_version_2_store_gains_an_empty_intervals_table(paper_store):
    con = duckdb.connect(str(paper_store))
    con.execute("DROP VIEW v_intervals")
    con.execute("DROP TABLE intervals")
    con.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(StoreSchemaError, match="vlmembed migrate"):
        StoreReader(paper_store)
    with StoreWriter(paper_store) as writer:  # what `vlmembed migrate` does
        assert len(runs_without_intervals(writer)) == 13  # every paper run, until `vlmembed stats`
    con = duckdb.connect(str(paper_store), read_only=True)
    assert stored_version(con) == SCHEMA_VERSION == 7
    assert con.execute("SELECT count(*) FROM v_intervals").fetchall() == [(0,)]


def test_intervals_are_replaced_per_run_and_leave_with_their_run(paper_store):
    a, b = "paper:LaViDa:table1", "paper:LLaVA-1.6:table1"
    with StoreWriter(paper_store) as writer:
        replace_intervals(writer, [a, b], pd.concat([_rows(a, "VOC2007", 84.9), _rows(b, "VOC2007", 92.9)]))
        replace_intervals(writer, [a], _rows(a, "SUN397", 68.2))  # a's VOC2007 row goes, b's stays
    reader = StoreReader(paper_store)
    view = read_intervals(reader)
    assert set(zip(view["run_id"], view["dataset"], strict=True)) == {(a, "SUN397"), (b, "VOC2007")}
    row = view.set_index("run_id").loc[b]
    assert (row["source"], row["meta_task"], row["split"], row["model"]) == ("paper", "classification",
                                                                             "in_domain", "LLaVA-1.6")
    reader.close()
    with StoreWriter(paper_store) as writer:
        writer.delete_run(b)
    assert set(read_intervals(StoreReader(paper_store))["run_id"]) == {a}


def test_sized_scores_take_n_from_table_5(paper_store):
    frame = sized_scores(StoreReader(paper_store), ["paper:MMaDA:table2"])
    assert len(frame) == 10 and set(frame["n"]) == {1000} and set(frame["meta_task"]) == {"vqa"}


def test_rows_missing_a_column_are_refused(paper_store):
    with StoreWriter(paper_store) as writer, pytest.raises(ValueError, match="lack columns"):
        replace_intervals(writer, ["x"], _rows("x", "VOC2007", 1.0).drop(columns="method"))


def test_version_3_store_accepts_baseline_runs_after_migration(paper_store):
    from storage import ModelRecord, RunRecord, ScoreRecord

    con = duckdb.connect(str(paper_store))
    # a table without the version-4 constraints stands in for version 3's (DuckDB cannot add a CHECK later)
    con.execute("CREATE TABLE runs_v3 AS SELECT * FROM runs")
    con.execute("DROP TABLE runs")
    con.execute("ALTER TABLE runs_v3 RENAME TO runs")
    before = con.execute("SELECT count(*) FROM runs").fetchall()
    con.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    con.close()
    with StoreWriter(paper_store) as writer:
        writer.upsert_models([ModelRecord("chance", "uniform chance", "baseline", "tiny")])
        writer.add_run(RunRecord(run_id="baseline:chance", source="baseline", model="chance", label="chance",
                                 scores=[ScoreRecord("VOC2007", "precision@1", 5.0, 1000)]))
    reader = StoreReader(paper_store)
    assert len(reader.runs()) == before[0][0] + 1
    assert set(reader.runs("baseline")["run_id"]) == {"baseline:chance"}
    row = duckdb.connect(str(paper_store), read_only=True).execute(
        "SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'runs' AND constraint_type = 'PRIMARY KEY'")
    assert row.fetchall() == [(1,)]  # the rebuilt table keeps its key


def test_merged_runs_bring_their_intervals(paper_store, tmp_path):
    """A demo worker's store lands runs with their intervals; merging them into the main store copies both."""
    worker = tmp_path / "worker.duckdb"
    shutil.copyfile(paper_store, worker)
    run = "paper:LaViDa:table1"
    with StoreWriter(worker) as writer:
        replace_intervals(writer, [run], _rows(run, "VOC2007", 84.9))
    with StoreWriter(paper_store) as writer:
        writer.merge_runs(worker, [run])
    merged = read_intervals(StoreReader(paper_store), [run])
    assert merged[["dataset", "value"]].values.tolist() == [["VOC2007", 84.9]]
