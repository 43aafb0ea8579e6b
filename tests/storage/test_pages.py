"""Reading a file through a memory map keeps none of it resident once its pages are let go."""

from __future__ import annotations

import numpy as np

from storage.pages import drop_pages, mmap_of, read_rows, resident_bytes


def _mapped(tmp_path, rows: int = 2048, dim: int = 512) -> tuple[np.ndarray, str]:
    path = tmp_path / "m.npy"
    np.save(path, np.random.default_rng(0).normal(size=(rows, dim)).astype(np.float16))
    return np.load(path, mmap_mode="r"), str(path)


def test_dropping_a_maps_pages_takes_them_out_of_rss_and_keeps_the_data(tmp_path):
    matrix, path = _mapped(tmp_path)
    before = np.asarray(matrix, dtype=np.float32).sum()  # touches every page: 2 MB resident
    assert resident_bytes(path)["matching"] >= matrix.nbytes // 2
    assert drop_pages(matrix[10:20])  # a view finds the map it belongs to
    assert resident_bytes(path)["matching"] < 64 * 1024
    assert np.asarray(matrix, dtype=np.float32).sum() == before  # read again from the page cache


def test_an_in_memory_array_has_no_map_to_drop():
    array = np.ones((4, 4))
    assert mmap_of(array) is None and mmap_of(array[1:]) is None
    assert not drop_pages(array)


def test_a_copy_on_write_map_keeps_its_changes(tmp_path):
    matrix, path = _mapped(tmp_path)
    private = np.load(path, mmap_mode="c")
    private[0, 0] = 7.0  # a change only this map holds
    assert not drop_pages(private[:5]) and private[0, 0] == 7.0


def test_rss_splits_into_anonymous_and_file_backed():
    found = resident_bytes()
    assert found["total"] > 0 and found["anon"] > 0 and found["file"] == found["total"] - found["anon"]


def test_rows_read_from_the_file_equal_the_maps_and_map_nothing(tmp_path):
    matrix, path = _mapped(tmp_path)
    want = np.load(path)  # in memory
    rows = np.array([0, 1, 2, 9, 500, 501, 2047])
    assert np.array_equal(read_rows(matrix, rows), want[rows])
    assert np.array_equal(read_rows(matrix[100:], rows[:-1]), want[100:][rows[:-1]])  # a view that starts later
    header = matrix.offset
    odd = np.memmap(path, dtype=np.float16, mode="r", offset=header + 3 * 512 * 2, shape=(2000, 512))
    assert np.array_equal(read_rows(odd, rows[:-1]), want[3:][rows[:-1]])  # a map at an unaligned offset
    assert resident_bytes(path)["matching"] == 0  # every read went around the map
    assert np.array_equal(read_rows(matrix[:, :8], rows), want[:, :8][rows])  # not whole rows: indexed as usual
    assert np.array_equal(read_rows(want, rows), want[rows])
