"""2-D projections of embeddings (PCA, t-SNE, UMAP), computed in the pipeline, never in a
request handler. Queries and targets are projected together so pairs share one map."""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np

log = logging.getLogger(__name__)

Method = Literal["umap", "tsne", "pca"]
METHODS: tuple[Method, ...] = ("umap", "tsne", "pca")

# UMAP runs on the first UMAP_PCA_DIMS principal components, not the raw embeddings: at 4096-d its
# neighbour search and optimisation took 22.7 s for 10k pairs, 11.8 s after PCA to 50-d (issue 18).
# Its layout is optimised by pipeline.analysis.umap_layout (UMAP's graph and objective, with the
# deviations from umap-learn listed there). t-SNE stays on the raw embeddings, as in the paper's
# Figure 4. Maps name what they show:
UMAP_PCA_DIMS = 50
METHOD_LABELS = {"umap": f"UMAP of a {UMAP_PCA_DIMS}-d PCA", "tsne": "t-SNE", "pca": "PCA"}


PCA_FIT_ROWS = 4096  # the axes are fitted on a fixed-seed sample of this many points, then every point is projected
PCA_POWER_ITERATIONS = 4
PCA_OVERSAMPLING = 10


def pca_reduce(x: np.ndarray, dims: int) -> np.ndarray:
    """(N, D) -> (N, min(dims, D, N)) float32: the centred data on its top principal axes.

    A randomised SVD (Halko et al., 2011: power iterations, QR between them) of a 4096-point
    sample: exact enough for a neighbour graph. In torch, whose QR of a 4096 x 60 block takes
    10 ms where numpy's took 170-470 ms; scikit-learn's PCA took 1.3-2.5 s at 4096-d for 20k points.
    """
    import torch

    x = np.asarray(x, dtype=np.float32)
    dims = min(dims, x.shape[1], len(x))
    if dims >= x.shape[1]:
        return x
    rng = np.random.default_rng(0)
    sample = x if len(x) <= PCA_FIT_ROWS else x[np.sort(rng.choice(len(x), PCA_FIT_ROWS, replace=False))]
    mean = torch.from_numpy(sample.mean(axis=0))
    centred = torch.from_numpy(sample) - mean
    width = min(dims + PCA_OVERSAMPLING, *centred.shape)
    start = torch.from_numpy(rng.standard_normal((x.shape[1], width), dtype=np.float32))
    basis = torch.linalg.qr(centred @ start).Q
    for _ in range(PCA_POWER_ITERATIONS):
        basis = torch.linalg.qr(centred @ torch.linalg.qr(centred.T @ basis).Q).Q
    axes = torch.linalg.svd(basis.T @ centred, full_matrices=False).Vh[:dims]
    return (torch.from_numpy(x) @ axes.T - mean @ axes.T).numpy()  # never a centred copy of all of x


# Above this many dimensions the 2-D PCA map uses a randomised SVD of two components: a full SVD
# of 20k x 4096 float64 computes all 4096 axes to keep two.
EXACT_PCA_MAX_DIMS = 256


def pca_2d(x: np.ndarray) -> np.ndarray:
    centred = x - x.mean(axis=0, keepdims=True)
    if x.shape[1] > EXACT_PCA_MAX_DIMS and len(x) > EXACT_PCA_MAX_DIMS:
        from sklearn.utils.extmath import randomized_svd

        _, _, vt = randomized_svd(centred, 2, n_iter=7, random_state=0)
    else:
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ vt[:2].T
    # Fix the SVD's sign ambiguity so the same data always gives the same picture.
    signs = np.sign(xy[np.argmax(np.abs(xy), axis=0), [0, 1]])
    return xy * np.where(signs == 0, 1, signs)


def project(x: np.ndarray, method: Method = "umap", seed: int = 0) -> np.ndarray:
    """(N, D) -> (N, 2) float64, deterministic for a given seed."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or len(x) < 3:
        raise ValueError(f"need at least 3 embeddings of shape (N, D) to project, got {x.shape}")
    if method == "pca":
        return pca_2d(x.astype(np.float64))
    if method == "tsne":
        from openTSNE import TSNE

        perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 3)))
        embedding = TSNE(perplexity=perplexity, metric="cosine", random_state=seed, n_jobs=1,
                         initialization="pca", verbose=False).fit(x)
        return np.asarray(embedding, dtype=np.float64)
    if method == "umap":
        return _umap_2d(pca_reduce(x, UMAP_PCA_DIMS), seed)
    raise ValueError(f"unknown projection method {method!r}; use one of {METHODS}")


KNN_BLOCK_BYTES = 256 * 2**20  # at most this much of similarities at a time, whatever the map's size


def exact_cosine_knn(x: np.ndarray, k: int, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k nearest rows by cosine distance, itself first: (indices, distances), both (N, k).

    Chunked matrix products: memory stays at chunk x N similarities (fewer rows per chunk for
    large N). torch's top-k selects the neighbours about 6x faster than numpy's argpartition
    over 20k-wide rows.
    """
    import torch

    x = np.asarray(x, dtype=np.float32)
    chunk = max(1, min(chunk, KNN_BLOCK_BYTES // (4 * max(len(x), 1))))
    unit = torch.from_numpy(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12))
    n = len(unit)
    indices = np.empty((n, k), dtype=np.int64)
    distances = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        sims = unit[start:stop] @ unit.T
        # A point is its own nearest neighbour even when duplicates tie with it, as UMAP expects.
        sims[torch.arange(stop - start), torch.arange(start, stop)] = torch.inf
        nearest_sims, nearest = (t.numpy() for t in torch.topk(sims, k, dim=1))
        order = np.lexsort((nearest, -nearest_sims), axis=1)  # ties broken by index: deterministic
        indices[start:stop] = np.take_along_axis(nearest, order, axis=1)
        distances[start:stop] = 1.0 - np.take_along_axis(nearest_sims, order, axis=1)
    distances[:, 0] = 0.0
    np.clip(distances, 0.0, 2.0, out=distances)
    return indices, distances


def _umap_2d(x: np.ndarray, seed: int) -> np.ndarray:
    from pipeline.analysis.umap_layout import fuzzy_graph, initial_layout, optimise_layout

    neighbours = int(min(15, len(x) - 1))
    graph = fuzzy_graph(*exact_cosine_knn(x, neighbours))
    return optimise_layout(graph, initial_layout(pca_2d(x.astype(np.float64))), seed=seed)


def place(query: np.ndarray, reference: np.ndarray, reference_xy: np.ndarray, k: int = 10) -> np.ndarray:
    """Where a new embedding lands on an existing map: the similarity-weighted mean of its k
    nearest reference points' positions (UMAP's own initialisation for `transform`).

    (D,) or (M, D) query -> (2,) or (M, 2).
    """
    single = query.ndim == 1
    q = np.atleast_2d(query).astype(np.float64)
    ref = reference.astype(np.float64)
    sims = q @ ref.T  # unit vectors: cosine
    k = min(k, len(ref))
    nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    weights = np.exp(np.take_along_axis(sims, nearest, axis=1) * 10.0)
    weights /= weights.sum(axis=1, keepdims=True)
    xy = np.einsum("mk,mkd->md", weights, reference_xy[nearest])
    return xy[0] if single else xy
