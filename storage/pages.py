"""Letting go of a memory map's resident pages, so reading a file through a map does not grow RSS.

Every page of a file read through a memory map stays mapped, and counted in the process's RSS,
until the map is closed: a search index built over a run's 98 MB matrix kept all 98 MB resident,
and exact re-ranks of a few hundred scattered rows per query (each fault maps its neighbours too)
touched whole files within ten queries (bench/bench_app.py --search-only). madvise(MADV_DONTNEED)
unmaps the pages; the data stays in the kernel's page cache (not this process's RSS), so reading it
again costs a minor page fault, not a disk read.

Read-only and shared writable maps only: a shared map's written pages stay in the page cache and
reach the file. Copy-on-write maps are left alone, since a written page would lose its change.
"""

from __future__ import annotations

import mmap
import os

import numpy as np


def mmap_of(array: object) -> mmap.mmap | None:
    """The mmap behind a numpy array (a np.memmap, or any view of one), or None for an in-memory array
    or a copy-on-write map (np.memmap mode "c": a page written to holds the only copy of the change)."""
    seen = 0
    while array is not None and seen < 64:  # a view's base chain ends at the mmap that owns the bytes
        if isinstance(array, mmap.mmap):
            return array
        if getattr(array, "mode", None) in ("c", "copyonwrite") and hasattr(array, "_mmap"):
            return None
        array, seen = getattr(array, "base", None), seen + 1
    return None


def drop_pages(array: object) -> bool:
    """Unmap the resident pages of the map behind `array` (all of it); True when there was a map to drop.

    Safe while other threads read the same map: their next access faults the page back in.
    """
    mm = mmap_of(array)
    if mm is None or mm.closed or not hasattr(mmap, "MADV_DONTNEED"):
        return False
    try:
        mm.madvise(mmap.MADV_DONTNEED)
    except (OSError, ValueError):  # a zero-length map, or a platform without madvise: nothing to drop
        return False
    return True


def resident_bytes(path_part: str = "") -> dict[str, int]:
    """This process's resident bytes: total, anonymous (what it allocated) and file-backed (mapped
    files' pages), plus `matching`: the file-backed bytes of maps whose path contains `path_part`
    (Linux /proc/self/smaps; zeros elsewhere). For benches and tests, not for hot paths."""
    out = {"total": 0, "anon": 0, "file": 0, "matching": 0}
    try:
        with open("/proc/self/smaps") as f:
            lines = f.read().splitlines()
    except OSError:
        return out
    name = ""
    for line in lines:
        head = line.split(None, 1)[0] if line else ""
        if "-" in head and not head.endswith(":"):  # a map's header: "start-end perms offset dev inode [path]"
            parts = line.split(None, 5)
            name = parts[5] if len(parts) > 5 else ""
        elif head == "Rss:":
            out["total"] += int(line.split()[1]) * 1024
            if path_part and path_part in name:
                out["matching"] += int(line.split()[1]) * 1024
        elif head == "Anonymous:":
            out["anon"] += int(line.split()[1]) * 1024
    out["file"] = out["total"] - out["anon"]
    return out


def _file_span(array: np.ndarray) -> tuple[str, int] | None:
    """(file, byte offset of array[0]) for a C-ordered view of a read-only or shared np.memmap."""
    obj, owner = array, None
    while obj is not None and owner is None:
        base = getattr(obj, "base", None)
        if isinstance(base, mmap.mmap):
            owner = obj  # the np.memmap that made the map: its filename and offset are the map's
        obj = base
    if owner is None or getattr(owner, "filename", None) is None or getattr(owner, "mode", "c") in ("c", "copyonwrite"):
        return None
    if array.ndim != 2 or array.strides != (array.shape[1] * array.itemsize, array.itemsize):
        return None
    map_start = owner.offset - owner.offset % mmap.ALLOCATIONGRANULARITY  # where np.memmap began the map
    map_address = np.frombuffer(owner.base, dtype=np.uint8).__array_interface__["data"][0]
    return owner.filename, map_start + array.__array_interface__["data"][0] - map_address


def read_rows(matrix: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """`matrix[rows]` for ascending row numbers. From a memory map, the rows are read from its file
    with pread (one call per run of consecutive rows), so none of its pages is mapped into this
    process: a gather through the map would fault in each row's neighbours too, and letting go of
    them after every query costs more than the read (bench/bench_topk.py --mapped)."""
    rows = np.asarray(rows, dtype=np.int64)
    span = _file_span(matrix) if len(rows) else None
    if span is None:
        return np.asarray(matrix[rows])
    path, start = span
    out = np.empty((len(rows), matrix.shape[1]), dtype=matrix.dtype)
    row_bytes = matrix.strides[0]
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    firsts, ends = np.r_[0, breaks].tolist(), np.r_[breaks, len(rows)].tolist()
    offsets = (start + rows[np.r_[0, breaks]] * row_bytes).tolist()
    into = memoryview(out).cast("B")
    fd = os.open(path, os.O_RDONLY)
    try:
        for first, end, offset in zip(firsts, ends, offsets, strict=True):
            want = (end - first) * row_bytes
            got = os.preadv(fd, [into[first * row_bytes:end * row_bytes]], offset)
            if got != want:
                raise OSError(f"{path}: read {got} of {want} bytes at offset {offset} (file truncated?)")
    finally:
        os.close(fd)
    return out
