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
