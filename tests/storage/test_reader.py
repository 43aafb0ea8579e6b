"""Readers: clear errors for missing, corrupt and out-of-date stores; swaps never break a query."""

from __future__ import annotations

import threading

import duckdb
import pytest

from storage import StoreCorruptError, StoreMissingError, StoreReader, StoreSchemaError, StoreWriter
from tests.storage.helpers import seed_catalogue, toy_run


def test_missing_store_names_the_rebuild_command(tmp_path):
    with pytest.raises(StoreMissingError, match="vlmembed import-paper --store"):
        StoreReader(tmp_path / "absent.duckdb")


@pytest.mark.parametrize("content", [b"", b"this is not a database" * 100, b"\x00" * 4096])
def test_corrupt_store_names_the_rebuild_command(tmp_path, content):
    path = tmp_path / "broken.duckdb"
    path.write_bytes(content)
    with pytest.raises(StoreCorruptError, match="vlmembed import-paper"):
        StoreReader(path)


def test_corrupt_store_refused_by_writer_too(tmp_path):
    path = tmp_path / "broken.duckdb"
    path.write_bytes(b"garbage" * 1000)
    with pytest.raises(StoreCorruptError, match="Move it aside"):
        StoreWriter(path)
    assert path.read_bytes() == b"garbage" * 1000  # nothing lost


def test_foreign_duckdb_file_is_refused(tmp_path):
    path = tmp_path / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE unrelated (x INT)")
    con.close()
    with pytest.raises(StoreSchemaError, match="version 0"):
        StoreReader(path)


def test_older_schema_is_refused_with_migrate_hint(paper_store):
    con = duckdb.connect(str(paper_store))
    con.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(StoreSchemaError, match="vlmembed migrate --store"):
        StoreReader(paper_store)


def test_newer_schema_is_refused(paper_store):
    con = duckdb.connect(str(paper_store))
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(StoreSchemaError, match="newer"):
        StoreReader(paper_store)


def test_reader_sees_swapped_file_and_running_query_survives(tmp_path):
    path = tmp_path / "s.duckdb"
    with StoreWriter(path) as w:
        ids = seed_catalogue(w)
        w.add_run(toy_run("r1", ids))
    reader = StoreReader(path)
    old_version = reader.version
    cur = reader.cursor()
    started, results, errors = threading.Event(), [], []

    def slow_query():
        try:
            started.set()
            results.append(cur.execute(
                "SELECT count(*) FROM runs, range(3000000) t WHERE hash(t.range) % 7 = 0").fetchone()[0])
        except Exception as exc:  # noqa: BLE001 - the assertion below reports it
            errors.append(exc)

    thread = threading.Thread(target=slow_query)
    thread.start()
    started.wait()
    with StoreWriter(path) as w:  # swap a new file in while the query runs
        w.add_run(toy_run("r2", ids))
    thread.join()
    assert not errors, errors
    assert results and results[0] > 0
    assert reader.version != old_version
    assert sorted(reader.runs()["run_id"]) == ["r1", "r2"]


def test_reader_cannot_write(paper_store):
    reader = StoreReader(paper_store)
    cur = reader.cursor()
    with pytest.raises(duckdb.Error):
        cur.execute("DELETE FROM scores")
    assert reader.summary()["scores"] > 0


@pytest.mark.parametrize("error", [
    StoreMissingError("/data/store.duckdb"),
    StoreCorruptError("/data/store.duckdb.vectors", "the embedding file a.npy of run r is missing"),
    StoreSchemaError("schema 3 is too old"),
], ids=lambda e: type(e).__name__)
def test_store_errors_cross_process_boundaries_as_themselves(error):
    """A demo worker's store error is pickled to its parent; one that failed to unpickle broke the
    whole process pool ("a child process terminated abruptly", every worker alive)."""
    import pickle

    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error) and str(again) == str(error)
