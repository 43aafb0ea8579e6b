"""The SQL console reads and does nothing else; every refusal is a plain message."""

from __future__ import annotations

import time

import pytest

from storage import EXAMPLE_QUERIES, StoreReader, run_query

HOSTILE = {
    "insert": "INSERT INTO scores VALUES ('x', 'y', 'z', 1, 1)",
    "update": "UPDATE scores SET value = 0",
    "delete": "DELETE FROM scores",
    "drop": "DROP TABLE scores",
    "create": "CREATE TABLE evil AS SELECT 1",
    "attach": "ATTACH '/tmp/evil.duckdb' AS evil",
    "copy_out": "COPY scores TO '/tmp/stolen.csv'",
    "export": "EXPORT DATABASE '/tmp/stolen'",
    "install": "INSTALL httpfs",
    "load": "LOAD httpfs",
    "set": "SET memory_limit = '100GB'",
    "pragma": "PRAGMA memory_limit = '100GB'",
    "read_csv": "SELECT * FROM read_csv('/etc/passwd')",
    "read_text": "SELECT * FROM read_text('/etc/hostname')",
    "file_scan": "SELECT * FROM '/etc/passwd'",
    "glob": "SELECT * FROM glob('/etc/*')",
    "url": "SELECT * FROM read_parquet('https://example.com/x.parquet')",
    "multiple": "SELECT 1; DROP TABLE scores",
    "call_checkpoint": "CHECKPOINT",
    "transaction": "BEGIN TRANSACTION",
}


@pytest.fixture
def reader(paper_store):
    return StoreReader(paper_store)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_statement_is_refused_and_store_unchanged(reader, name):
    before = reader.summary()
    result = run_query(reader, HOSTILE[name])
    assert not result.ok, f"{name} was accepted"
    assert result.error and "\n" not in result.error
    assert reader.summary() == before


def test_runaway_query_is_interrupted(reader):
    start = time.perf_counter()
    result = run_query(reader, "SELECT sum(hash(a.range + b.range)) FROM range(100000000) a, range(1000) b",
                       timeout_s=0.5)
    assert time.perf_counter() - start < 5
    assert result.error and "took too long" in result.error


def test_row_cap(reader):
    result = run_query(reader, "SELECT * FROM range(5000)", max_rows=100)
    assert result.ok and len(result.rows) == 100 and result.truncated


def test_bad_sql_is_a_plain_message(reader):
    result = run_query(reader, "SELEC nonsense FROM")
    assert not result.ok and "rror" in result.error
    result = run_query(reader, "SELECT * FROM no_such_table")
    assert not result.ok and "no_such_table" in result.error
    assert not run_query(reader, "   ").ok


@pytest.mark.parametrize("title", sorted(EXAMPLE_QUERIES))
def test_example_queries_run(reader, title):
    result = run_query(reader, EXAMPLE_QUERIES[title])
    assert result.ok, result.error
