"""UMAP's 2-D layout, computed here so a 20k-point map takes seconds on 2 cores.

The graph and the objective are UMAP's (McInnes et al., 2018, as umap-learn 0.5 builds them):
a fuzzy k-nearest-neighbour graph (`fuzzy_graph`, checked edge for edge against umap-learn's
`fuzzy_simplicial_set` in the tests) and cross-entropy between it and the low-dimensional
similarities 1 / (1 + a d^2b), optimised by stochastic gradient descent with negative sampling,
umap-learn's edge schedule, learning-rate decay and gradient clipping.

Deviations from umap-learn, each measured in bench/bench_projection.py and tests/analysis:
* Updates are synchronous: every epoch computes each point's step from the previous epoch's
  positions, in parallel over points. umap-learn moves one point per edge, one edge after
  another, on one core when seeded (`random_state`), and its parallel mode is not reproducible.
  Synchronous steps are reproducible on any number of threads, as GPU UMAPs (cuML) update.
* Negative samples come from a counter-based hash of (seed, epoch, edge, sample), so a point's
  samples do not depend on which thread ran it.
* The initial layout is the first two principal axes (umap-learn's `init="pca"`), not the
  spectral embedding, which took 3.3 s of a 20k-point map.
* The kernel is compiled once per machine (numba's on-disk cache), not once per process.
"""

from __future__ import annotations

import threading

import numba
import numpy as np
import scipy.sparse as sp

SMOOTH_K_ITERATIONS = 64  # umap-learn's binary-search length for each point's bandwidth
MIN_K_DIST_SCALE = 1e-3  # umap-learn's floor on a bandwidth, relative to the mean neighbour distance
NEGATIVE_SAMPLE_RATE = 5
GRADIENT_CLIP = 4.0
INIT_SCALE = 10.0  # umap-learn scales the initial layout into [0, 10] on both axes
# numba's fallback threading layer (workqueue, where no OpenMP or TBB is found) aborts the process
# when two threads launch parallel kernels at once; one layout at a time is enough for every caller.
_KERNEL_LOCK = threading.Lock()


def default_epochs(n_points: int) -> int:
    """umap-learn's default: 500 epochs for small data, 200 above 10k points."""
    return 500 if n_points <= 10_000 else 200


# curve_parameters(0.1, 1.0), the only curve the maps use, so a fresh process does not import
# scipy.optimize (1 s of a cold 4096-d map) to fit it again; the tests refit it.
_FITTED_CURVES = {(0.1, 1.0): (1.5769434602697652, 0.8950608778515733)}


def curve_parameters(min_dist: float = 0.1, spread: float = 1.0, refit: bool = False) -> tuple[float, float]:
    """(a, b) of the low-dimensional similarity 1 / (1 + a d^2b), fitted as umap-learn fits them."""
    if not refit and (min_dist, spread) in _FITTED_CURVES:
        return _FITTED_CURVES[(min_dist, spread)]
    from scipy.optimize import curve_fit

    d = np.linspace(0, spread * 3, 300)
    target = np.where(d < min_dist, 1.0, np.exp(-(d - min_dist) / spread))
    (a, b), _ = curve_fit(lambda x, a, b: 1.0 / (1.0 + a * x ** (2 * b)), d, target)
    return float(a), float(b)


def _bandwidths(knn_dists: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sigma, rho) per point: rho is the nearest non-zero distance, sigma makes the point's
    memberships sum to log2(k), both vectorised over points."""
    d = knn_dists.astype(np.float64)
    k = d.shape[1]
    positive = np.where(d > 0, d, np.inf)
    rho = positive.min(axis=1)
    rho[~np.isfinite(rho)] = 0.0
    target = np.log2(k)
    lo, hi, mid = np.zeros(len(d)), np.full(len(d), np.inf), np.ones(len(d))
    beyond = np.maximum(d[:, 1:] - rho[:, None], 0.0)  # column 0 is the point itself
    for _ in range(SMOOTH_K_ITERATIONS):
        total = np.exp(-beyond / mid[:, None]).sum(axis=1)
        too_wide = total > target
        hi = np.where(too_wide, mid, hi)
        lo = np.where(too_wide, lo, mid)
        mid = np.where(too_wide | np.isfinite(hi), (lo + hi) / 2, mid * 2)
    floor = MIN_K_DIST_SCALE * np.where(rho > 0, d.mean(axis=1), d.mean())
    return np.maximum(mid, floor), rho


def fuzzy_graph(knn_indices: np.ndarray, knn_dists: np.ndarray) -> sp.coo_matrix:
    """UMAP's symmetric fuzzy graph (fuzzy union, set_op_mix_ratio 1) from each point's k nearest
    neighbours, the point itself first at distance 0."""
    n, k = knn_indices.shape
    sigma, rho = _bandwidths(knn_dists)
    weights = np.exp(-np.maximum(knn_dists - rho[:, None], 0.0) / sigma[:, None])
    weights[knn_indices == np.arange(n)[:, None]] = 0.0
    directed = sp.csr_matrix((weights.ravel(), (np.repeat(np.arange(n), k), knn_indices.ravel())), shape=(n, n))
    directed.eliminate_zeros()
    transposed = directed.T.tocsr()
    union = directed + transposed - directed.multiply(transposed)
    union.eliminate_zeros()
    return union.tocoo()


def initial_layout(xy: np.ndarray) -> np.ndarray:
    """2-D starting positions (the first two principal axes, from the caller) scaled into
    [0, INIT_SCALE] as umap-learn scales its initialisation."""
    xy = np.asarray(xy, dtype=np.float64)
    span = np.maximum(xy.max(axis=0) - xy.min(axis=0), 1e-12)
    return INIT_SCALE * (xy - xy.min(axis=0)) / span


@numba.njit(cache=True, inline="always")
def _mix(x):
    # splitmix64's finaliser: a well-spread 64-bit hash of a counter
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


# The kernel computes in float32, as umap-learn's does (1.4x faster than float64 here); its
# constants are float32 scalars so numba does not promote the arithmetic to float64.
_CLIP = np.float32(GRADIENT_CLIP)
_ONE, _TWO, _EPSILON = np.float32(1.0), np.float32(2.0), np.float32(0.001)


@numba.njit(cache=True, parallel=True, fastmath=True)
def _optimise(xy, indptr, neighbours, epochs_per_sample, n_epochs, a, b, negative_rate, seed):  # pragma: no cover
    n = xy.shape[0]
    next_sample = epochs_per_sample.copy()
    epochs_per_negative = epochs_per_sample / negative_rate
    next_negative = epochs_per_negative.copy()
    moved = xy.copy()
    for epoch in range(n_epochs):
        rate = np.float32(1.0 - epoch / n_epochs)
        for i in numba.prange(n):
            step_x = np.float32(0.0)
            step_y = np.float32(0.0)
            xi = xy[i, 0]
            yi = xy[i, 1]
            for edge in range(indptr[i], indptr[i + 1]):
                if next_sample[edge] > epoch:
                    continue
                j = neighbours[edge]
                dx = xi - xy[j, 0]
                dy = yi - xy[j, 1]
                d2 = dx * dx + dy * dy
                if d2 > 0:
                    d2b = np.exp(b * np.log(d2))
                    c = (-_TWO * a * b * d2b / d2) / (a * d2b + _ONE)
                    # twice: the graph holds (i, j) and (j, i), and umap-learn moves both ends of each
                    step_x += _TWO * min(max(c * dx, -_CLIP), _CLIP)
                    step_y += _TWO * min(max(c * dy, -_CLIP), _CLIP)
                next_sample[edge] += epochs_per_sample[edge]
                n_negative = max(0, int((epoch - next_negative[edge]) / epochs_per_negative[edge]))
                for s in range(n_negative):
                    key = _mix(np.uint64(edge) * np.uint64(1024) + np.uint64(s)) ^ np.uint64(epoch)
                    k = int(_mix(_mix(key) ^ np.uint64(seed)) % np.uint64(n))
                    if k == i:
                        continue
                    dx = xi - xy[k, 0]
                    dy = yi - xy[k, 1]
                    d2 = dx * dx + dy * dy
                    if d2 > 0:
                        c = _TWO * b / ((_EPSILON + d2) * (a * np.exp(b * np.log(d2)) + _ONE))
                        step_x += min(max(c * dx, -_CLIP), _CLIP)
                        step_y += min(max(c * dy, -_CLIP), _CLIP)
                    else:
                        step_x += _CLIP
                        step_y += _CLIP
                next_negative[edge] += n_negative * epochs_per_negative[edge]
            moved[i, 0] = xi + rate * step_x
            moved[i, 1] = yi + rate * step_y
        xy[:, :] = moved
    return xy


def optimise_layout(graph: sp.coo_matrix, init: np.ndarray, n_epochs: int | None = None, seed: int = 0,
                    min_dist: float = 0.1) -> np.ndarray:
    """(N, 2) float64 positions minimising UMAP's cross-entropy, the same for the same seed."""
    n_epochs = n_epochs or default_epochs(graph.shape[0])
    weights = graph.tocsr()
    weights.sum_duplicates()
    weights.sort_indices()
    xy = np.array(init, dtype=np.float32, order="C", copy=True)
    if weights.nnz == 0:  # no neighbours to pull together: the initial layout is the map
        return xy.astype(np.float64)
    # umap-learn's schedule: an edge is sampled every max_w / w epochs, and edges sampled less
    # than once in the whole run are dropped.
    weights.data[weights.data < weights.data.max() / n_epochs] = 0.0
    weights.eliminate_zeros()
    a, b = curve_parameters(min_dist)
    with _KERNEL_LOCK:
        xy = _optimise(xy, weights.indptr.astype(np.int64), weights.indices.astype(np.int64),
                       weights.data.max() / weights.data.astype(np.float64), n_epochs, np.float32(a),
                       np.float32(b), float(NEGATIVE_SAMPLE_RATE), seed)
    return xy.astype(np.float64)
