"""Embeddings in float16 files beside the store: what lands, what a crash leaves, what readers see."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from storage import RunRecord, StoreReader, StoreWriter, run_query
from storage.parquet_export import export_parquet
from storage.vectors import vectors_dir
from tests.storage.helpers import seed_catalogue, toy_run


def _store(tmp_path, runs=("r1",), dim: int = 8):
    path = tmp_path / "s.duckdb"
    with StoreWriter(path) as w:
        ids = seed_catalogue(w)
        for i, run_id in enumerate(runs):
            run = toy_run(run_id, ids, dim=dim)
            run.embeddings = np.roll(run.embeddings, i, axis=1)  # each run its own vectors
            w.add_run(run)
    return path, ids


def _files(path) -> set[str]:
    return {p.name for p in vectors_dir(path).iterdir()}


def test_a_run_lands_as_one_float16_file_that_readers_map_without_copying(tmp_path):
    path, ids = _store(tmp_path)
    (name,) = _files(path)
    assert name.endswith(".npy")
    reader = StoreReader(path)
    got_ids, matrix = reader.embedding_matrix("r1")
    assert got_ids == ids and matrix.dtype == np.float16 and isinstance(matrix, np.memmap)
    expected = toy_run("r1", ids, dim=8).embeddings
    np.testing.assert_allclose(matrix.astype(np.float32), expected, atol=1e-3)
    sorted_ids, vecs = reader.embeddings("r1", ids[:2])
    assert sorted_ids == sorted(ids[:2]) and vecs.dtype == np.float32 and vecs.shape == (2, 8)
    assert reader.embedding_matrix("nope")[0] == []


def test_sql_ranks_by_similarity_in_a_sandboxed_console(tmp_path):
    path, ids = _store(tmp_path)
    reader = StoreReader(path)
    expected = toy_run("r1", ids, dim=8).embeddings
    cos = expected @ expected[0] / np.linalg.norm(expected, axis=1) / np.linalg.norm(expected[0])
    result = run_query(reader, """
        WITH q AS (SELECT run_id, "row" FROM embedding_rows WHERE run_id = 'r1' AND item_id = 'item0')
        SELECT e.item_id, embedding_cosine(e.run_id, e."row", q.run_id, q."row") AS cos
        FROM embedding_rows e, q WHERE e.run_id = q.run_id ORDER BY cos DESC LIMIT 3""")
    assert result.ok, result.error
    assert [r[0] for r in result.rows] == [ids[i] for i in np.argsort(-cos)[:3]]
    np.testing.assert_allclose([r[1] for r in result.rows], np.sort(cos)[::-1][:3], atol=2e-3)
    vec = run_query(reader, "SELECT vec FROM embeddings WHERE run_id = 'r1' AND item_id = 'item1'")
    assert vec.ok and np.allclose(vec.rows[0][0], expected[1], atol=1e-3)
    refused = run_query(reader, f"SELECT * FROM read_csv('{path}')")  # external access stays off
    assert not refused.ok
    assert reader.nearest_to_item_sql("r1", "item0", k=2)["item_id"].tolist() == [ids[i] for i in np.argsort(-cos)[:2]]


def test_a_failed_run_leaves_no_file_and_a_dead_writers_files_are_removed(tmp_path, monkeypatch):
    path, ids = _store(tmp_path)
    before = _files(path)
    with StoreWriter(path) as w:
        monkeypatch.setattr(w, "_insert_run", lambda *a: (_ for _ in ()).throw(RuntimeError("disk full")))
        with pytest.raises(RuntimeError):
            w.add_run(toy_run("r2", ids, dim=8))
    assert _files(path) == before
    # a writer killed after writing its file, before publishing: no catalogue names the file
    (vectors_dir(path) / "r3-deadbeef.npy").write_bytes(b"half")
    (vectors_dir(path) / "r4-cafe.npy.partial").write_bytes(b"half")
    assert StoreReader(path).embedded_runs()["run_id"].tolist() == ["r1"]
    with StoreWriter(path) as w:
        w.add_run(toy_run("r2", ids, dim=8))
    assert len(_files(path)) == 2 and not {"r3-deadbeef.npy", "r4-cafe.npy.partial"} & _files(path)


def test_an_aborted_writer_takes_its_files_with_it(tmp_path):
    path, ids = _store(tmp_path)
    before = _files(path)
    w = StoreWriter(path)
    w.add_run(toy_run("r2", ids, dim=8))
    assert len(_files(path)) == 2
    w.abort()
    assert _files(path) == before
    assert StoreReader(path).embedded_runs()["run_id"].tolist() == ["r1"]


def test_replacing_a_run_while_a_reader_serves_the_old_one(tmp_path):
    path, ids = _store(tmp_path)
    reader = StoreReader(path)
    old_ids, old = reader.embedding_matrix("r1")
    old_copy = np.array(old)
    with StoreWriter(path) as w:
        run = toy_run("r1", ids, dim=8)
        run.embeddings = -run.embeddings
        w.add_run(run, replace=True)
    with StoreWriter(path):  # the next writer removes the replaced file ...
        pass
    assert len(_files(path)) == 1
    np.testing.assert_array_equal(old, old_copy)  # ... a map opened before still reads it
    _, new = reader.embedding_matrix("r1")  # and the refreshed reader serves the new run
    np.testing.assert_allclose(new.astype(np.float32), -old_copy.astype(np.float32))


def test_merge_brings_the_files_and_parquet_exports_the_vectors(tmp_path):
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a_dir.mkdir()
    b_dir.mkdir()
    a, ids = _store(a_dir, runs=("r1",))
    b, _ = _store(b_dir, runs=("r2",))
    with StoreWriter(a) as w:
        report = w.merge_store(b)
    assert report.added == ["r2"]
    expected = StoreReader(b).embedding_matrix("r2")[1].astype(np.float32)
    for stale in vectors_dir(b).iterdir():  # the merged store stands on its own
        stale.unlink()
    reader = StoreReader(a)
    assert reader.embedding_matrix("r2")[0] == ids
    np.testing.assert_array_equal(reader.embedding_matrix("r2")[1].astype(np.float32), expected)
    written = export_parquet(a, tmp_path / "out")
    (vec_file,) = [p for p in written if "embeddings" in p.parts]
    table = pq.read_table(vec_file)
    assert table.schema.field("vec").type.list_size == 8 and table.num_rows == 2 * len(ids)
    r2 = table.filter(table.column("run_id").to_numpy(zero_copy_only=False) == "r2")
    np.testing.assert_allclose(np.stack(r2.column("vec").to_numpy(zero_copy_only=False)), expected)


def test_values_beyond_float16_are_refused_with_a_reason(tmp_path):
    path, ids = _store(tmp_path)
    run = toy_run("big", ids, dim=8)
    run.embeddings = run.embeddings * 1e6
    with StoreWriter(path) as w, pytest.raises(ValueError, match="L2-normalised"):
        w.add_run(run)
    assert StoreReader(path).embedded_runs()["run_id"].tolist() == ["r1"]


def test_a_version_6_store_moves_its_embeddings_to_files(tmp_path):
    """6 -> 7: the vectors in the old `embeddings` table become a float16 file, rows in the same order."""
    path, ids = _store(tmp_path, runs=())
    expected = toy_run("old", ids, dim=8).embeddings
    con = duckdb.connect(str(path))
    con.execute("DROP VIEW v_embeddings")
    con.execute("DROP VIEW embeddings")
    con.execute("CREATE TABLE embeddings (run_id VARCHAR, item_id VARCHAR, dim INTEGER, vec FLOAT[])")
    con.execute("INSERT INTO runs (run_id, source, model, label) VALUES ('old', 'demo', 'm-tiny', 'final')")
    con.executemany("INSERT INTO embeddings VALUES ('old', ?, 8, ?)", [(i, v.tolist()) for i, v in zip(ids, expected, strict=True)])
    con.execute("DROP TABLE embedding_rows")
    con.execute("DROP TABLE embedding_files")
    con.execute("DROP TABLE dataset_items")
    con.execute("ALTER TABLE items DROP COLUMN thumbnail_md5")
    con.execute("UPDATE meta SET value = '6' WHERE key = 'schema_version'")
    con.close()
    with StoreWriter(path):  # what `vlmembed migrate` does
        pass
    reader = StoreReader(path)
    got, vecs = reader.embeddings("old")
    assert got == sorted(ids)
    np.testing.assert_allclose(vecs, expected[np.argsort(ids)], atol=1e-3)
    assert len(reader.dataset_items("target")) == 3


def _mapped_source(tmp_path, bad_row: int | None = None) -> tuple[np.ndarray, str]:
    """A 16384 x 512 float32 matrix in a file (32 MB), memory-mapped read-only as a big run hands it over."""
    path = tmp_path / ("bad.f32" if bad_row is not None else "source.f32")
    values = np.random.default_rng(3).normal(size=(16384, 512)).astype(np.float32) / 30
    if bad_row is not None:
        values[bad_row, 7] = np.nan
    values.tofile(path)
    return np.memmap(path, dtype=np.float32, mode="r", shape=values.shape), str(path)


def test_a_run_record_checks_a_mapped_matrix_without_keeping_it_resident(tmp_path):
    from storage.pages import resident_bytes

    source, path = _mapped_source(tmp_path)
    ids = [f"i{r}" for r in range(len(source))]
    RunRecord(run_id="big", source="demo", model="m", label="final", embedding_items=ids, embeddings=source)
    assert resident_bytes(path)["matching"] < 64 * 1024
    bad, _ = _mapped_source(tmp_path, bad_row=15000)  # the NaN in the last block is still found
    with pytest.raises(ValueError, match="NaN"):
        RunRecord(run_id="big", source="demo", model="m", label="final", embedding_items=ids, embeddings=bad)


def test_a_mapped_source_is_written_a_chunk_at_a_time_and_never_kept_resident(tmp_path, monkeypatch):
    """A 1M x 4096 float32 source is 16 GB: the writer reads one chunk, writes it, lets its pages
    go, and never holds more (issue 18: a 1M x 4096 insert under 4 GB RSS)."""
    from storage import vectors
    from storage.pages import resident_bytes

    monkeypatch.setattr(vectors, "CHUNK_ROWS", 1024)
    source, source_path = _mapped_source(tmp_path)  # 32 MB, 2 MB a chunk
    resident = []
    real_drop = vectors.drop_pages

    def spying_drop(array):
        resident.append(resident_bytes(str(source_path))["matching"])
        return real_drop(array)

    monkeypatch.setattr(vectors, "drop_pages", spying_drop)
    name = vectors.write_matrix(tmp_path / "out", "big", source)
    assert len(resident) == 16  # once per chunk
    assert max(resident) <= 1024 * 512 * 4 + 4 * 2**20 < source.nbytes // 4  # a chunk (and a fault's folio)
    assert resident_bytes(str(source_path))["matching"] < 64 * 1024
    written = np.load(tmp_path / "out" / name, mmap_mode="r")
    np.testing.assert_array_equal(written[5000], source[5000].astype(np.float16))


def test_reading_a_runs_embeddings_leaves_none_of_its_file_resident(tmp_path):
    from storage.pages import resident_bytes

    path, ids = _store(tmp_path, dim=4096)  # 6 rows x 8 KB
    reader = StoreReader(path)
    got_ids, vecs = reader.embeddings("r1")
    assert got_ids == sorted(ids) and vecs.shape == (len(ids), 4096)
    assert resident_bytes(str(vectors_dir(path)))["matching"] == 0
