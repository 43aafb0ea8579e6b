"""Our UMAP layout against umap-learn: the same graph, the same curve, a map as good."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.analysis.projection import exact_cosine_knn, pca_2d
from pipeline.analysis.umap_layout import curve_parameters, fuzzy_graph, initial_layout, optimise_layout


def pca_init(x):
    return initial_layout(pca_2d(np.asarray(x, dtype=np.float64)))


def _clusters(n_per: int = 100, n_clusters: int = 6, dim: int = 20, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, dim)) * 3
    labels = np.repeat(np.arange(n_clusters), n_per)
    return (centres[labels] + rng.normal(size=(len(labels), dim))).astype(np.float32), labels


def test_graph_is_umap_learns_fuzzy_simplicial_set():
    from umap.umap_ import fuzzy_simplicial_set

    x, _ = _clusters()
    indices, distances = exact_cosine_knn(x, 15)
    theirs, _, _ = fuzzy_simplicial_set(x, 15, np.random.RandomState(0), "cosine",
                                        knn_indices=indices, knn_dists=distances)
    ours = fuzzy_graph(indices, distances).tocsr()
    theirs = theirs.tocsr()
    assert (ours != 0).toarray().sum() == (theirs != 0).toarray().sum()  # the same edges
    assert np.abs(ours - theirs).max() < 1e-4  # with the same weights (umap-learn stops its search at 1e-5)


def test_curve_parameters_are_umap_learns():
    from umap.umap_ import find_ab_params

    for min_dist in (0.1, 0.5):
        assert np.allclose(curve_parameters(min_dist), find_ab_params(1.0, min_dist), rtol=1e-4)
        assert np.allclose(curve_parameters(min_dist), curve_parameters(min_dist, refit=True), rtol=1e-9)


def _layout(x, seed=0, n_epochs=None):
    graph = fuzzy_graph(*exact_cosine_knn(x, 15))
    return optimise_layout(graph, pca_init(x), n_epochs=n_epochs, seed=seed)


def test_layout_is_the_same_for_the_same_seed_on_any_number_of_threads():
    import numba

    x, _ = _clusters(n_per=60)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = _layout(x, n_epochs=50)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = _layout(x, n_epochs=50)
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(one, many)
    assert not np.array_equal(one, _layout(x, seed=1, n_epochs=50))  # the seed matters


def _silhouette(xy, labels):
    from sklearn.metrics import silhouette_score

    return silhouette_score(xy, labels)


def _neighbours_kept(x, xy, k=10):
    """Mean share of each point's k nearest neighbours (cosine, full dimension) that stay among its
    k nearest on the map."""
    high = exact_cosine_knn(x, k + 1)[0][:, 1:]
    diff = xy[:, None, :] - xy[None, :, :]
    low = np.argsort((diff ** 2).sum(-1), axis=1)[:, 1:k + 1]
    return np.mean([len(set(a) & set(b)) / k for a, b in zip(high, low, strict=True)])


def test_layout_separates_clusters_and_keeps_neighbours_as_well_as_umap_learn():
    import warnings

    import umap

    x, labels = _clusters()
    ours = _layout(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = umap.UMAP(n_neighbors=15, min_dist=0.1, metric="cosine", random_state=0, n_jobs=1,
                           init="pca").fit_transform(x)
    assert np.isfinite(ours).all()
    assert _silhouette(ours, labels) > 0.5
    assert _silhouette(ours, labels) >= _silhouette(theirs, labels) - 0.1
    assert _neighbours_kept(x, ours) >= _neighbours_kept(x, theirs) - 0.05


@pytest.mark.parametrize("n", [3, 5, 16])
def test_tiny_maps_are_finite(n):
    x = np.random.default_rng(n).normal(size=(n, 8)).astype(np.float32)
    graph = fuzzy_graph(*exact_cosine_knn(x, min(15, n - 1)))
    xy = optimise_layout(graph, pca_init(x))
    assert xy.shape == (n, 2) and np.isfinite(xy).all()


def test_identical_points_map_without_error():
    x = np.ones((6, 4), dtype=np.float32)
    graph = fuzzy_graph(*exact_cosine_knn(x, 5))
    xy = optimise_layout(graph, pca_init(x))
    assert xy.shape == (6, 2) and np.isfinite(xy).all()
