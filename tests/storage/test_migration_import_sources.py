"""Version 2 -> 3: `runs.source` admits the imported sources; no row changes."""

from __future__ import annotations

import duckdb
import pytest

from storage import RunRecord, ScoreRecord, StoreReader, StoreWriter
from storage.migrations import stored_version, table_ddl
from storage.schema import SCHEMA_VERSION


def _downgrade_to_v2(path) -> int:
    """Rebuild `runs` with version 2's CHECK (paper, pipeline, demo) and mark the store version 2."""
    con = duckdb.connect(str(path))
    ddl = table_ddl("runs", "runs_v2").replace(", 'mteb', 'vlm2vec'", "")
    assert "mteb" not in ddl
    con.execute(ddl)
    con.execute("INSERT INTO runs_v2 BY NAME SELECT * FROM runs")
    con.execute("DROP TABLE runs")
    con.execute("ALTER TABLE runs_v2 RENAME TO runs")
    con.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    with pytest.raises(duckdb.ConstraintException):
        con.execute("INSERT INTO runs (run_id, source, model, label) VALUES ('x', 'mteb', 'm', 'l')")
    n = con.execute("SELECT count(*) FROM runs").fetchone()[0]
    con.close()
    return n


def test_a_version_2_store_migrates_and_then_takes_imported_runs(paper_store) -> None:
    before = StoreReader(paper_store).scores()
    n_runs = _downgrade_to_v2(paper_store)
    with StoreWriter(paper_store) as writer:
        model = before["model"].iloc[0]
        writer.add_run(RunRecord(run_id="mteb:x", source="mteb", model=model, label="imported",
                                 scores=[ScoreRecord(before["dataset"].iloc[0], "precision@1", 12.5)]))
        writer.publish()
    con = duckdb.connect(str(paper_store), read_only=True)
    assert stored_version(con) == SCHEMA_VERSION
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == n_runs + 1
    con.close()
    after = StoreReader(paper_store).scores()
    kept = after[after["source"] == "paper"].reset_index(drop=True)
    assert kept[["run_id", "dataset", "value"]].equals(before[["run_id", "dataset", "value"]].reset_index(drop=True))
    assert after[after["source"] == "mteb"]["value"].tolist() == [12.5]
