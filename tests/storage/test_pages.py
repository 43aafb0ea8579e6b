"""Reading a file through a memory map keeps none of it resident once its pages are let go."""

from __future__ import annotations

import numpy as np

from storage.pages import drop_pages, mmap_of, resident_bytes


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
