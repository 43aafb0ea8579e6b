"""The two-stage search is exact: the same rows and order as scoring every row, on data where the
prefix bound prunes (low rank plus noise) and where it cannot (isotropic), with ties, k > n,
float16 rows, pools and ranks; its files load instead of being rebuilt."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.search import prefix_index
from pipeline.search.prefix_index import PoolIndex, PrefixIndex


def low_rank(n: int, dim: int, rank: int = 16, noise: float = 0.05, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, rank)) @ rng.normal(size=(rank, dim)) + noise * np.sqrt(rank) * rng.normal(size=(n, dim))
    return x.astype(np.float32)


def brute_force(rows: np.ndarray, q: np.ndarray, k: int, pool=None) -> tuple[list[int], np.ndarray]:
    """The definition: every row's float64 cosine, best first, ties by row."""
    x = np.asarray(rows, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1)
    scores = (x * np.asarray(q, np.float64)).sum(axis=1) / np.where(norms > 0, norms, np.inf)
    candidates = np.arange(len(x)) if pool is None else np.asarray(pool)
    order = candidates[np.lexsort((candidates, -scores[candidates]))][:k]
    return order.tolist(), scores[order]


def queries(rows: np.ndarray, count: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    picked = rows[rng.choice(len(rows), count)].astype(np.float32)
    return picked + 0.1 * np.linalg.norm(picked, axis=1, keepdims=True) * rng.normal(size=picked.shape) / np.sqrt(rows.shape[1])


def ids(n: int) -> list[str]:
    return [f"i{r:05d}" for r in range(n)]


@pytest.mark.parametrize("data", ["low_rank", "isotropic"])
def test_top_k_equals_brute_force(data):
    rows = low_rank(3000, 256) if data == "low_rank" else np.random.default_rng(2).normal(size=(3000, 256)).astype(np.float32)
    index = PrefixIndex.build(ids(len(rows)), rows, p=32)
    for q in queries(rows, 20):
        got_rows, got_scores = index.top_k(q, 10)
        want_rows, want_scores = brute_force(rows, q, 10)
        assert got_rows.tolist() == want_rows
        assert np.allclose(got_scores, want_scores, atol=1e-12)


def test_low_rank_data_is_pruned_to_few_candidates(monkeypatch):
    rows = low_rank(3000, 256)
    index = PrefixIndex.build(ids(len(rows)), rows, p=32)
    scored = []
    real = index.exact_scores
    monkeypatch.setattr(index, "exact_scores", lambda q, r: scored.append(len(r)) or real(q, r))
    index.top_k(queries(rows, 1)[0], 10)
    assert scored[0] < 300  # a tenth of the rows or fewer are read in full


def test_isotropic_data_is_narrowed_by_the_int8_bound_and_stays_exact(monkeypatch):
    rows = np.random.default_rng(3).normal(size=(4000, 512)).astype(np.float32)
    index = PrefixIndex.build(ids(len(rows)), rows, p=64)
    passes, scored = [], []
    real_codes, real_exact = index._code_bounds, index.exact_scores
    monkeypatch.setattr(index, "_code_bounds", lambda q, r: passes.append(r) or real_codes(q, r))
    monkeypatch.setattr(index, "exact_scores", lambda q, r: scored.append(len(r)) or real_exact(q, r))
    for q in queries(rows, 5):
        assert index.top_k(q, 10)[0].tolist() == brute_force(rows, q, 10)[0]
    assert passes and passes[0] is None  # the prefix pruned little: one int8 pass over every row
    assert max(scored) < 400  # and the int8 bound left a tenth of the rows or fewer to read in full


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_both_bounds_hold_for_every_row(dtype):
    rows = np.vstack([low_rank(500, 300, seed=11), np.random.default_rng(12).normal(size=(500, 300))]).astype(dtype)
    index = PrefixIndex.build(ids(len(rows)), rows, p=40)
    everything = np.arange(len(rows))
    for q in queries(rows.astype(np.float32), 5, seed=13):
        exact = index.exact_scores(q, everything)
        for score, slack in (index._bounds(q, None), index._code_bounds(q, None)):
            assert np.all(np.abs(exact - score) <= slack)
            assert np.median(slack) < 0.5 * np.linalg.norm(q)  # and they say something


def test_ties_keep_row_order_and_k_beyond_n_returns_every_row():
    base = low_rank(50, 128, seed=4)
    rows = np.vstack([base, base[:10], base[:10]])  # rows 50-59 and 60-69 tie with 0-9
    index = PrefixIndex.build(ids(len(rows)), rows, p=16)
    q = base[3]
    got, _ = index.top_k(q, 3)
    assert got.tolist() == [3, 53, 63]
    everything, scores = index.top_k(q, 500)
    assert everything.tolist() == brute_force(rows, q, 500)[0] and len(everything) == 70
    assert np.all(np.diff(scores) <= 0)
    assert index.top_k(q, 0)[0].size == 0


def test_float16_rows_and_zero_rows_are_ranked_as_stored():
    rows = low_rank(2000, 256, seed=5).astype(np.float16)
    rows[7] = 0  # a zero row scores 0, never NaN
    index = PrefixIndex.build(ids(len(rows)), rows, p=32)
    for q in queries(rows.astype(np.float32), 10, seed=6):
        assert index.top_k(q, 10)[0].tolist() == brute_force(rows, q, 10)[0]
    assert index.exact_scores(queries(rows.astype(np.float32), 1)[0], np.array([7]))[0] == 0


def test_pools_and_ranks_match_brute_force():
    rows = low_rank(2000, 256, seed=7)
    index = PrefixIndex.build(ids(len(rows)), rows, p=32)
    pool = PoolIndex.of_items(index, [f"i{r:05d}" for r in range(0, 2000, 3)] + ["missing"])
    q = queries(rows, 1, seed=8)[0]
    want, _ = brute_force(rows, q, 2000, pool=np.arange(0, 2000, 3))
    assert [item for item, _ in pool.search(q, 10)] == [f"i{r:05d}" for r in want[:10]]
    assert pool.rank(q, f"i{want[4]:05d}") == 5
    assert pool.rank(q, f"i{want[-1]:05d}") == len(want)
    assert pool.rank(q, "i00001") is None  # not in this pool
    assert pool.rank(q, "missing") is None


def test_query_of_another_dimension_is_refused():
    index = PrefixIndex.build(ids(100), low_rank(100, 128), p=16)
    with pytest.raises(ValueError, match="query has 64 dimensions"):
        index.top_k(np.ones(64), 5)


def test_saved_index_loads_memory_mapped_with_the_same_answers(tmp_path):
    rows = low_rank(1500, 256, seed=9)
    built = PrefixIndex.build(ids(len(rows)), rows, p=32)
    built.save(tmp_path / "run")
    loaded = PrefixIndex.load(tmp_path / "run", rows)
    assert loaded is not None and isinstance(loaded.prefix, np.memmap)
    q = queries(rows, 1)[0]
    assert loaded.top_k(q, 10)[0].tolist() == built.top_k(q, 10)[0].tolist()
    assert not list(tmp_path.glob("*.tmp-*"))  # written through a temporary folder, renamed
    assert PrefixIndex.load(tmp_path / "absent", rows) is None
    assert PrefixIndex.load(tmp_path / "run", rows[:, :128]) is None  # other rows: rebuild, not misuse


def test_build_reads_rows_in_chunks(monkeypatch):
    monkeypatch.setattr(prefix_index, "CHUNK_ROWS", 64)
    rows = low_rank(1000, 128, seed=10)
    index = PrefixIndex.build(ids(len(rows)), rows, p=16)
    q = queries(rows, 1)[0]
    assert index.top_k(q, 10)[0].tolist() == brute_force(rows, q, 10)[0]


def test_a_loose_prefix_is_skipped_until_it_is_tried_again(monkeypatch):
    rows = np.random.default_rng(14).normal(size=(3000, 256)).astype(np.float32)
    index = PrefixIndex.build(ids(len(rows)), rows, p=32)
    prefix_passes = []
    real = index._bounds
    monkeypatch.setattr(index, "_bounds", lambda q, pool: prefix_passes.append(1) or real(q, pool))
    for q in queries(rows, prefix_index.PREFIX_RECHECK + 1, seed=15):
        assert index.top_k(q, 10)[0].tolist() == brute_force(rows, q, 10)[0]
    assert len(prefix_passes) == 2  # the first query, and the PREFIX_RECHECK-th


def test_building_and_searching_a_mapped_matrix_leaves_none_of_it_resident(tmp_path, monkeypatch):
    """The build reads the rows a chunk at a time and lets each chunk's pages go; a query's exact
    re-rank lets go of the rows it read. Else every run's whole matrix stays in RSS (issue 18)."""
    from storage.pages import resident_bytes

    monkeypatch.setattr(prefix_index, "CHUNK_ROWS", 1024)
    path = tmp_path / "rows.npy"
    np.save(path, np.random.default_rng(16).normal(size=(16384, 1024)).astype(np.float16))  # 32 MB
    rows = np.load(path, mmap_mode="r")
    resident = []  # how much of the file was resident each time the build let go of it
    real_drop = prefix_index.drop_pages

    def spying_drop(array):
        resident.append(resident_bytes(str(path))["matching"])
        return real_drop(array)

    monkeypatch.setattr(prefix_index, "drop_pages", spying_drop)
    index = PrefixIndex.build(ids(len(rows)), rows, p=32)
    monkeypatch.setattr(prefix_index, "drop_pages", real_drop)
    chunks = -(-len(rows) // 1024)
    assert len(resident) == 2 * chunks + 1  # after every chunk of both passes, and after the basis sample
    # one chunk at a time (plus what a fault maps around it: up to a 2 MB folio either side); only
    # the basis sample, scattered rows, spans the file
    assert sorted(resident)[-2] <= 1024 * 1024 * 2 + 4 * 2**20 < rows.nbytes // 4
    assert resident_bytes(str(path))["matching"] < 64 * 1024
    data = np.array(rows)  # the reference reads an in-memory copy
    real_drop(rows)
    for q in queries(data, 3, seed=17):
        assert index.top_k(q, 10)[0].tolist() == brute_force(data, q, 10)[0]
        assert resident_bytes(str(path))["matching"] < 64 * 1024
