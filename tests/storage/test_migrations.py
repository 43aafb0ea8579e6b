"""Old stores are migrated by writers in a transaction, or refused with a clear message."""

from __future__ import annotations

import duckdb
import pytest

from storage import SCHEMA_VERSION, StoreSchemaError, StoreWriter
from storage.migrations import ensure_current, stored_version


def test_new_store_gets_current_version(tmp_path):
    path = tmp_path / "s.duckdb"
    StoreWriter(path).publish()
    con = duckdb.connect(str(path), read_only=True)
    assert stored_version(con) == SCHEMA_VERSION


def test_migration_steps_run_in_order_and_bump_version(paper_store):
    con = duckdb.connect(str(paper_store))
    steps = {
        SCHEMA_VERSION: lambda c: c.execute("ALTER TABLE runs ADD COLUMN gpu_hours DOUBLE"),
        SCHEMA_VERSION + 1: lambda c: c.execute("UPDATE runs SET gpu_hours = 1.5"),
    }
    found = ensure_current(con, "test", steps, target=SCHEMA_VERSION + 2)
    assert found == SCHEMA_VERSION
    assert stored_version(con) == SCHEMA_VERSION + 2
    assert con.execute("SELECT DISTINCT gpu_hours FROM runs").fetchall() == [(1.5,)]


def test_failed_migration_rolls_back(paper_store):
    con = duckdb.connect(str(paper_store))

    def broken(c):
        c.execute("ALTER TABLE runs ADD COLUMN half_done INT")
        raise RuntimeError("migration bug")

    with pytest.raises(RuntimeError):
        ensure_current(con, "test", {SCHEMA_VERSION: broken}, target=SCHEMA_VERSION + 1)
    assert stored_version(con) == SCHEMA_VERSION
    cols = {r[0] for r in con.execute("DESCRIBE runs").fetchall()}
    assert "half_done" not in cols


def test_version_without_migration_path_is_refused(paper_store):
    con = duckdb.connect(str(paper_store))
    con.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(StoreSchemaError, match="no migration from version 0"):
        StoreWriter(paper_store)
