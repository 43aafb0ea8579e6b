"""The dashboard reads the store once per version, follows swaps, and survives missing or broken stores."""

from __future__ import annotations

import shutil

import pytest

from app.store import StoreCache
from storage import StoreWriter
from tests.app.helpers import pipeline_run


@pytest.fixture
def store_copy(mixed_store_file, tmp_path):
    path = tmp_path / "store.duckdb"
    shutil.copyfile(mixed_store_file, path)
    return path


def test_snapshot_is_reused_until_a_new_file_is_published(store_copy):
    cache = StoreCache(store_copy)
    first = cache.snapshot()
    assert cache.snapshot() is first
    with StoreWriter(store_copy) as writer:
        writer.add_run(pipeline_run("Qwen2.5-VL", 2.0))
    second = cache.snapshot()
    assert second is not first and second.version != first.version
    assert "pipeline · Qwen2.5-VL" in set(second.series["source_label"])
    assert "pipeline · Qwen2.5-VL" not in set(first.series["source_label"])  # old snapshots never change


def test_missing_store_is_a_message_naming_the_rebuild_command(tmp_path):
    cache = StoreCache(tmp_path / "absent.duckdb")
    snap = cache.snapshot()
    assert not snap.ok and "vlmembed import-paper --store" in snap.error
    assert snap.scores.empty and snap.series.empty and snap.metrics() == ["precision@1"]
    assert cache.snapshot() is snap  # nothing changed on disk: no retry


def test_store_that_appears_later_is_picked_up(tmp_path, mixed_store_file):
    path = tmp_path / "later.duckdb"
    cache = StoreCache(path)
    assert not cache.snapshot().ok
    shutil.copyfile(mixed_store_file, path)
    snap = cache.snapshot()
    assert snap.ok and len(snap.series) > 10


@pytest.mark.parametrize("content", [b"", b"not a database" * 500])
def test_corrupt_store_is_a_message_too(tmp_path, content):
    path = tmp_path / "broken.duckdb"
    path.write_bytes(content)
    snap = StoreCache(path).snapshot()
    assert not snap.ok and "vlmembed import-paper" in snap.error and "Move it aside" in snap.error


def test_reader_error_names_the_rebuild_command(tmp_path):
    from storage import StoreMissingError

    with pytest.raises(StoreMissingError, match="vlmembed import-paper"):
        StoreCache(tmp_path / "absent.duckdb").reader()


def test_memo_computes_once_per_key(snapshot):
    calls = []
    for _ in range(3):
        snapshot.memo(("test", 1), lambda: calls.append(1) or len(calls))
    assert calls == [1]


@pytest.mark.parametrize("bad", ["truncated", "corrupt", "empty", "future-schema"])
def test_a_bad_file_swapped_in_is_refused_and_the_last_good_one_served(store_copy, tmp_path, bad, caplog):
    import logging
    import os

    from tests.app.test_store_problems import make_case

    cache = StoreCache(store_copy)
    good = cache.snapshot()
    assert good.ok
    broken = make_case(bad, tmp_path / "elsewhere", store_copy)
    with caplog.at_level(logging.WARNING):
        os.replace(broken, store_copy)  # how a writer publishes: an atomic rename over the old file
        after = cache.snapshot()
        again = cache.snapshot()
    assert after is good and again is good, "the last good version keeps serving"
    assert cache.reader()._frame("SELECT count(*) AS n FROM runs")["n"][0] == len(good.runs)
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1 and "still serving the previous one" in refusals[0]  # logged once, with why
    assert {"truncated": "truncated", "corrupt": "not a readable", "empty": "empty",
            "future-schema": "newer"}[bad] in refusals[0]
    from storage import run_query

    assert run_query(cache.reader(), "SELECT count(*) FROM runs").rows == [(len(good.runs),)]
