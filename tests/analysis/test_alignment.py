from __future__ import annotations

import numpy as np
import pytest

from pipeline.analysis.alignment import alignment_metrics, recall_at_1, uniformity
from pipeline.analysis.projection import exact_cosine_knn, pca_2d, place, project


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_perfectly_aligned_pairs():
    x = _unit(np.random.default_rng(0).normal(size=(50, 16)))
    m = alignment_metrics(x, x, "image", "text")
    assert m["paired_cosine_distance"] == pytest.approx(0, abs=1e-9)
    assert m["alignment"] == pytest.approx(0, abs=1e-9)
    assert m["modality_gap"] == pytest.approx(0, abs=1e-9)
    assert m["i2t_recall@1"] == 100.0 and m["t2i_recall@1"] == 100.0


def test_shifted_targets_have_the_shift_as_modality_gap():
    rng = np.random.default_rng(1)
    q = _unit(rng.normal(size=(400, 8)))
    shift = np.zeros(8)
    shift[0] = 3.0
    t = _unit(q + shift)  # every target pulled towards one direction: a modality gap
    m = alignment_metrics(q, t, "text", "image")
    assert m["modality_gap"] > 0.5
    assert m["paired_cosine_distance"] > 0.1
    assert "t2i_recall@1" in m and m["t2i_recall@1"] == m["q2t_recall@1"]
    same = alignment_metrics(q, t, "image", "image")
    assert "modality_gap" not in same and same["centroid_gap"] == pytest.approx(m["centroid_gap"])


def test_uniformity_prefers_spread_embeddings():
    rng = np.random.default_rng(2)
    spread = _unit(rng.normal(size=(300, 16)))
    clumped = _unit(np.ones((300, 16)) + 0.05 * rng.normal(size=(300, 16)))
    assert uniformity(spread) < uniformity(clumped)


def test_recall_counts_own_target():
    q = np.eye(3)
    t = np.eye(3)[[0, 2, 1]]
    assert recall_at_1(q, t) == pytest.approx(100 / 3)


def test_too_few_pairs_is_an_error():
    with pytest.raises(ValueError, match="two aligned pairs"):
        alignment_metrics(np.ones((1, 4)), np.ones((1, 4)))


@pytest.mark.parametrize("method", ["pca", "tsne", "umap"])
def test_projection_is_deterministic_and_separates_clusters(method):
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(2, 16)) * 5
    x = np.concatenate([centres[0] + rng.normal(size=(30, 16)), centres[1] + rng.normal(size=(30, 16))])
    a, b = project(x, method, seed=0), project(x, method, seed=0)
    assert a.shape == (60, 2) and np.allclose(a, b)
    between = np.linalg.norm(a[:30].mean(0) - a[30:].mean(0))
    within = np.mean([np.linalg.norm(a[:30] - a[:30].mean(0), axis=1).mean(),
                      np.linalg.norm(a[30:] - a[30:].mean(0), axis=1).mean()])
    assert between > within


def test_pca_signs_are_fixed():
    x = np.random.default_rng(4).normal(size=(20, 5))
    assert np.allclose(pca_2d(x), pca_2d(x.copy()))


def test_place_lands_next_to_its_neighbours():
    ref = _unit(np.random.default_rng(5).normal(size=(40, 8)))
    xy = pca_2d(ref)
    spot = place(ref[3], ref, xy, k=1)
    assert np.allclose(spot, xy[3])


def test_exact_knn_matches_brute_force_across_chunks():
    x = np.random.default_rng(6).normal(size=(300, 12)).astype(np.float32)
    indices, distances = exact_cosine_knn(x, k=6, chunk=64)
    cosine = 1.0 - _unit(x) @ _unit(x).T
    expected = np.argsort(cosine, axis=1)[:, :6]
    assert (indices == expected).all()
    assert np.allclose(distances, np.take_along_axis(np.clip(cosine, 0, 2), expected, axis=1), atol=1e-5)


def test_exact_knn_puts_each_point_first_even_among_duplicates():
    x = np.repeat(np.random.default_rng(7).normal(size=(5, 4)), 3, axis=0).astype(np.float32)
    indices, distances = exact_cosine_knn(x, k=3)
    assert (indices[:, 0] == np.arange(15)).all()
    assert (distances[:, 0] == 0).all()
    # The other two neighbours are the point's copies, in index order.
    assert all(set(row) == set(range(3 * (i // 3), 3 * (i // 3) + 3)) for i, row in enumerate(indices))


def _recall_by_full_matrix(q, t, q_ids, t_ids):
    """The definition, directly: every distinct query's argmax over the whole similarity matrix."""
    gold = set(zip(q_ids, t_ids, strict=True))
    qi = {i: n for n, i in reversed(list(enumerate(q_ids)))}
    ti = {i: n for n, i in reversed(list(enumerate(t_ids)))}
    qs, ts = sorted(qi), sorted(ti)
    sims = _unit(q[[qi[i] for i in qs]]) @ _unit(t[[ti[i] for i in ts]]).T
    q2t = np.mean([(a, ts[j]) in gold for a, j in zip(qs, sims.argmax(axis=1), strict=True)]) * 100
    t2q = np.mean([(qs[j], b) in gold for b, j in zip(ts, sims.argmax(axis=0), strict=True)]) * 100
    return q2t, t2q


def test_one_matrix_gives_both_directions_as_two_would(monkeypatch):
    import pipeline.analysis.alignment as alignment

    monkeypatch.setattr(alignment, "RECALL_BLOCK", 7)  # several blocks, so the column maxima cross them
    rng = np.random.default_rng(3)
    q, t = rng.normal(size=(40, 8)), rng.normal(size=(40, 8))
    t[5] = t[9]  # a tie across blocks: the first row wins, as argmax over the whole matrix
    q_ids = [f"q{i}" for i in range(40)]
    t_ids = [f"label{i % 6}" for i in range(40)]  # classification: many queries share a target
    q2t, t2q = alignment.recall_both_ways(q, t, q_ids, t_ids)
    assert (q2t, t2q) == pytest.approx(_recall_by_full_matrix(q, t, q_ids, t_ids))
    assert 0 < q2t < 100


def test_pca_map_of_many_dimensions_matches_the_exact_svd():
    rng = np.random.default_rng(4)
    x = (rng.normal(size=(600, 300)) + np.outer(rng.normal(size=600), rng.normal(size=300)) * 6
         + np.outer(rng.normal(size=600), rng.normal(size=300)) * 3)  # two clear axes above the noise
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    exact = centred @ vt[:2].T
    got = pca_2d(x)
    for axis in range(2):  # the same axes, up to sign
        assert abs(np.corrcoef(got[:, axis], exact[:, axis])[0, 1]) > 0.999


def test_umap_maps_say_they_are_drawn_from_a_pca_and_the_reduction_keeps_the_axes():
    from pipeline.analysis.projection import METHOD_LABELS, UMAP_PCA_DIMS, pca_reduce

    assert f"{UMAP_PCA_DIMS}-d PCA" in METHOD_LABELS["umap"] and "PCA" not in METHOD_LABELS["tsne"]
    rng = np.random.default_rng(5)
    signal = rng.normal(size=(6000, 3)) @ rng.normal(size=(3, 400)) * 5
    reduced = pca_reduce(signal + rng.normal(size=(6000, 400)), 10)  # fitted on a sample of the rows
    assert reduced.shape == (6000, 10)
    assert np.var(reduced[:, :3], axis=0).min() > 20 * np.var(reduced[:, 3:], axis=0).max()


def test_float32_metrics_match_the_float64_definition():
    rng = np.random.default_rng(6)
    q, t = rng.normal(size=(300, 64)), rng.normal(size=(300, 64)) + 0.5 * rng.normal(size=(300, 64))
    t[:150] = q[:150] + 0.1 * rng.normal(size=(150, 64))  # half the pairs close: recall well inside (0, 100)
    got = alignment_metrics(q, t)
    qu, tu = _unit(q), _unit(t)
    points = np.vstack([qu, tu])
    sq = np.clip(2 - 2 * points @ points.T, 0, None)[np.triu_indices(600, k=1)]
    assert got["uniformity"] == pytest.approx(np.log(np.mean(np.exp(-2 * sq))), abs=1e-5)
    sims = qu @ tu.T
    assert got["q2t_recall@1"] == pytest.approx(np.mean(sims.argmax(1) == np.arange(300)) * 100)
    assert got["t2q_recall@1"] == pytest.approx(np.mean(sims.argmax(0) == np.arange(300)) * 100)
    assert got["alignment"] == pytest.approx(np.mean(np.sum((qu - tu) ** 2, axis=1)), rel=1e-12)


def test_exact_knn_bounds_its_similarity_blocks(monkeypatch):
    import torch

    import pipeline.analysis.projection as projection

    x = np.random.default_rng(8).normal(size=(300, 12)).astype(np.float32)
    expected = exact_cosine_knn(x, k=5)
    monkeypatch.setattr(projection, "KNN_BLOCK_BYTES", 4 * 300 * 7)  # room for 7 rows of 300 similarities
    blocks, topk = [], torch.topk
    monkeypatch.setattr(torch, "topk", lambda sims, *a, **kw: blocks.append(tuple(sims.shape)) or topk(sims, *a, **kw))
    found = projection.exact_cosine_knn(x, k=5)
    assert max(rows for rows, _ in blocks) == 7 and sum(rows for rows, _ in blocks) == 300
    assert (found[0] == expected[0]).all() and np.allclose(found[1], expected[1])
