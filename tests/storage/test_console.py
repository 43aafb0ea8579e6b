"""The SQL console reads and does nothing else; every refusal is a plain message."""

from __future__ import annotations

import time

import duckdb
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


# Each statement that changes something, in every catalog a console connection has: the store,
# the in-memory database it is attached to (`memory`) and the connection's own `temp`.
CHANGES = {
    "create_memory": "CREATE TABLE memory.main.pwn AS SELECT 42 AS x",
    "create_temp": "CREATE TEMP TABLE pwn AS SELECT 42 AS x",
    "create_temp_catalog": "CREATE TABLE temp.main.pwn AS SELECT 42 AS x",
    "create_store": "CREATE TABLE store.main.pwn AS SELECT 42 AS x",
    "create_view_memory": "CREATE VIEW memory.main.v AS SELECT 1",
    "create_macro": "CREATE MACRO pwn() AS 42",
    "create_schema": "CREATE SCHEMA memory.evil",
    "create_secret": "CREATE SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')",
    "alter_store": "ALTER TABLE scores RENAME TO gone",
    "alter_memory": "ALTER TABLE memory.main.pwn ADD COLUMN y INT",
    "drop_store": "DROP TABLE store.main.scores",
    "drop_memory": "DROP TABLE IF EXISTS memory.main.pwn",
    "insert_memory": "INSERT INTO memory.main.pwn VALUES (1)",
    "use": "USE memory",
    "detach": "DETACH store",
    "set_variable": "SET VARIABLE x = 1",
    "reset": "RESET memory_limit",
    "vacuum": "VACUUM",
    "call": "CALL pragma_version()",
    "pivot": "PIVOT (SELECT 1 AS a) ON a USING count(*)",
    "query_function": "SELECT * FROM query('CREATE TABLE memory.main.pwn AS SELECT 1')",
    "install": "INSTALL httpfs",
    "set": "SET threads = 64",
    "attach_memory": "ATTACH ':memory:' AS scratch",
}
EXPLAINED = {
    "explain_analyze": "EXPLAIN ANALYZE {}",
    "explain": "EXPLAIN {}",
    "explain_options": "EXPLAIN (FORMAT json) {}",
    "explain_commented": "/* hi */ EXPLAIN /* there */ ANALYZE {}",
    "explain_lower": "explain   analyse {}",
}


@pytest.mark.parametrize("wrapper", [None, *sorted(EXPLAINED)])
@pytest.mark.parametrize("name", sorted(CHANGES))
def test_no_change_in_any_catalog_even_explained(reader, name, wrapper):
    statement = CHANGES[name] if wrapper is None else EXPLAINED[wrapper].format(CHANGES[name])
    result = run_query(reader, statement)
    assert not result.ok, f"{statement!r} was accepted"
    assert "\n" not in result.error
    for table in ("memory.main.pwn", "temp.main.pwn", "store.main.pwn"):
        assert "does not exist" in run_query(reader, f"SELECT * FROM {table}").error
    assert run_query(reader, "SELECT count(*) FROM scores").ok


def test_explain_of_a_select_shows_a_plan_and_analyze_runs_it(reader):
    plan = run_query(reader, "EXPLAIN SELECT count(*) FROM scores")
    assert plan.ok and plan.rows[0][0] == "physical_plan" and "SCAN" in plan.rows[0][1].upper()
    analyzed = run_query(reader, "EXPLAIN ANALYZE SELECT count(*) FROM scores")
    assert analyzed.ok and analyzed.rows


def test_nothing_one_request_does_is_seen_by_another(reader):
    """Even past the console's checks, on a connection directly: the host database and the store are
    read-only, there is no `memory` catalog, and `temp` belongs to one connection and closes with it."""
    first = reader.isolated_connection()
    for statement in ("CREATE TABLE memory.main.pwn AS SELECT 1", "CREATE TABLE store.main.pwn AS SELECT 1",
                      "CREATE SCHEMA evil"):
        with pytest.raises(duckdb.Error):
            first.execute(statement)
    first.execute("CREATE TEMP TABLE pwn AS SELECT 42 AS x")
    first.execute("SET VARIABLE secret = 'mine'")
    assert first.execute("SELECT x FROM pwn").fetchall() == [(42,)]
    second = reader.isolated_connection()
    with pytest.raises(duckdb.CatalogException):
        second.execute("SELECT x FROM pwn")
    assert second.execute("SELECT getvariable('secret')").fetchall() == [(None,)]
    first.close()
    second.close()
    assert "does not exist" in run_query(reader, "SELECT * FROM temp.main.pwn").error


def test_queries_never_spill_to_disk(reader, tmp_path, monkeypatch):
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)  # DuckDB's default spill folder is .tmp in the working directory
    result = run_query(reader, "SELECT count(*) FROM (SELECT range, random() AS r FROM range(40000000) ORDER BY r)",
                       timeout_s=60)
    assert not result.ok and "\n" not in result.error and "memory" in result.error.lower()
    assert list(work.iterdir()) == []


@pytest.mark.parametrize("sql, rows", [("SELECT repeat('x', 30000000) AS big", 0),
                                       ("SELECT repeat('x', 1000) AS s FROM range(30000)", 20_971)])
def test_results_are_capped_in_bytes_with_a_note(reader, sql, rows):
    result = run_query(reader, sql, max_rows=100_000)
    assert result.ok and result.truncated and result.truncated_by == "bytes"
    assert len(result.rows) == rows and result.columns
    assert "truncated" in result.note() and "20 MB cap" in result.note()


def test_row_cap_note(reader):
    result = run_query(reader, "SELECT * FROM range(50)", max_rows=10)
    assert result.truncated_by == "rows" and result.note() == "truncated: cut at 10 rows (raise the row cap or add a LIMIT)"
    assert run_query(reader, "SELECT 1").note() == ""


def test_a_query_whose_client_went_away_is_stopped(reader):
    result = run_query(reader, "SELECT sum(hash(a.range + b.range)) FROM range(1000000000) a, range(1000) b",
                       timeout_s=600, cancelled=lambda: True)
    assert not result.ok and "went away" in result.error


def test_default_time_limit_is_ten_seconds():
    import inspect

    assert inspect.signature(run_query).parameters["timeout_s"].default == 10.0


@pytest.mark.parametrize("sql", ["EXPLAIN", "EXPLAIN ANALYZE", "EXPLAIN (FORMAT json)"])
def test_explain_of_nothing_says_what_to_write(reader, sql):
    result = run_query(reader, sql)
    assert not result.ok and "\n" not in result.error and ("SELECT" in result.error or "rror" in result.error)
