"""Image-text alignment, measured rather than only drawn.

Given the unit-norm embeddings of a dataset's queries and their gold targets (pair i is
(queries[i], targets[i])):

* paired_cosine_distance: mean 1 - cos(q_i, t_i) over pairs (the paper's dashed lines);
* centroid_gap: distance between the query centroid and the target centroid; when one side
  is images and the other text this is the modality gap of Liang et al. (2022), and it is
  also reported under that name;
* alignment: E ||q_i - t_i||^2 and uniformity: log E exp(-2 ||x - y||^2) over all pairs of
  distinct embeddings (Wang and Isola, 2020; lower is better for both);
* q2t / t2q recall@1 over the dataset's pairs (each query against every gold target, and
  back), reported as i2t / t2i when the query side is images and the target side text
  (swapped names when the query side is text).

Pairs may share items: in a classification dataset many images have the same label text
as their gold target. Given the pairs' item ids, the metrics of the point clouds (centroid
gap, uniformity) count each distinct item once, recall asks each distinct item once, and a
retrieved item is right when it is paired with the asking item in any pair. The pair
metrics (paired distance, alignment) average over pairs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MAX_UNIFORMITY_POINTS = 4000  # uniformity is O(n^2); a fixed-seed sample keeps it cheap
RECALL_BLOCK = 1024  # query rows per similarity block in recall_at_1
PAIR_BLOCK = 2048  # rows per float64 block of the O(N x D) pair metrics


def _unit(x: np.ndarray, dtype=np.float64) -> np.ndarray:
    # The O(N x N) similarity products (recall, uniformity) run in float32: they dominate at 4096-d
    # (10k pairs: 14.7 s in float64, 6.4 s in float32), and an argmax or a log-mean-exp loses nothing
    # that matters at 1e-7. The O(N x D) pair metrics stay float64, where exact pairs give exact zeros.
    x = np.asarray(x, dtype=dtype)
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))  # without np.linalg.norm's squared copy of x
    return x / np.clip(norms, 1e-12, None)[:, None]


def uniformity(x: np.ndarray, t: float = 2.0, seed: int = 0) -> float:
    x = np.asarray(x)
    if len(x) > MAX_UNIFORMITY_POINTS:
        x = x[np.sort(np.random.default_rng(seed).choice(len(x), MAX_UNIFORMITY_POINTS, replace=False))]
    if len(x) < 2:
        raise ValueError("uniformity needs at least two embeddings")
    x = _unit(x, np.float32)
    values = np.clip(2.0 - 2.0 * (x @ x.T), 0.0, None)  # squared distances of unit vectors
    np.fill_diagonal(values, np.inf)  # distinct pairs only: exp(-inf) adds nothing below
    values *= -t
    top = values.max()
    # log-mean-exp over the n(n-1) ordered pairs, which is the mean over unordered ones
    return float(top + np.log(np.exp(values - top).sum(dtype=np.float64) / (len(x) * (len(x) - 1))))


def _distinct(x: np.ndarray, ids: Sequence | None) -> tuple[np.ndarray, np.ndarray]:
    """(ids, positions of each id's first row), ids as an array; without ids every row is its own item."""
    ids = np.arange(len(x)) if ids is None else np.asarray(ids)
    return ids, np.unique(ids, return_index=True)[1]


def _nearest_both_ways(q: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(each q row's nearest t row, each t row's nearest q row) from one pass over q @ t.T, in
    blocks of rows so 10k x 10k pairs never hold the whole similarity matrix."""
    q_nearest = np.empty(len(q), dtype=np.int64)
    t_best = np.full(len(t), -np.inf, dtype=np.float32)
    t_nearest = np.zeros(len(t), dtype=np.int64)
    for i in range(0, len(q), RECALL_BLOCK):
        sims = q[i:i + RECALL_BLOCK] @ t.T
        q_nearest[i:i + RECALL_BLOCK] = np.argmax(sims, axis=1)
        col = np.argmax(sims, axis=0)
        col_best = sims[col, np.arange(len(t))]
        better = col_best > t_best  # strictly: an earlier block keeps ties, as argmax over all rows would
        t_best[better] = col_best[better]
        t_nearest[better] = col[better] + i
    return q_nearest, t_nearest


def _hits(asking_ids: np.ndarray, found_ids: np.ndarray, gold: set) -> float:
    return float(np.mean([(a, f) in gold for a, f in zip(asking_ids.tolist(), found_ids.tolist(), strict=True)]) * 100)


def recall_both_ways(queries: np.ndarray, targets: np.ndarray, query_ids: Sequence | None = None,
                     target_ids: Sequence | None = None) -> tuple[float, float]:
    """(q2t, t2q) recall@1 in percent: of distinct queries whose nearest distinct target is paired
    with them, and back. Row i of `queries` is paired with row i of `targets`."""
    q_ids, q_first = _distinct(queries, query_ids)
    t_ids, t_first = _distinct(targets, target_ids)
    gold = set(zip(q_ids.tolist(), t_ids.tolist(), strict=True))
    q_nearest, t_nearest = _nearest_both_ways(_unit(queries[q_first], np.float32),
                                              _unit(targets[t_first], np.float32))
    q2t = _hits(q_ids[q_first], t_ids[t_first][q_nearest], gold)
    t2q = _hits(q_ids[q_first][t_nearest], t_ids[t_first], gold)
    return q2t, t2q


def recall_at_1(queries: np.ndarray, targets: np.ndarray, query_ids: Sequence | None = None,
                target_ids: Sequence | None = None) -> float:
    """Percent of distinct queries whose nearest distinct target is paired with them."""
    return recall_both_ways(queries, targets, query_ids, target_ids)[0]


def _pair_sums(q: np.ndarray, t: np.ndarray, q_first: np.ndarray, t_first: np.ndarray) -> tuple[float, float, np.ndarray]:
    """(sum of cos(q_i, t_i), sum of ||q_i - t_i||^2 over unit rows, centroid gap vector), in one
    pass of float64 blocks, so the float64 copies of two 10k x 4096 matrices never exist at once.
    The centroids count the rows in q_first / t_first (each distinct item once)."""
    cos_sum = squared_sum = 0.0
    q_total, t_total = np.zeros(q.shape[1]), np.zeros(t.shape[1])
    q_counted, t_counted = np.zeros(len(q), dtype=bool), np.zeros(len(t), dtype=bool)
    q_counted[q_first], t_counted[t_first] = True, True
    for i in range(0, len(q), PAIR_BLOCK):
        qb, tb = _unit(q[i:i + PAIR_BLOCK]), _unit(t[i:i + PAIR_BLOCK])
        cos_sum += float(np.einsum("ij,ij->", qb, tb))
        squared_sum += float(np.einsum("ij,ij->", qb - tb, qb - tb))
        q_total += q_counted[i:i + PAIR_BLOCK] @ qb
        t_total += t_counted[i:i + PAIR_BLOCK] @ tb
    return cos_sum, squared_sum, q_total / len(q_first) - t_total / len(t_first)


def alignment_metrics(queries: np.ndarray, targets: np.ndarray, query_modality: str | None = None,
                      target_modality: str | None = None, query_ids: Sequence | None = None,
                      target_ids: Sequence | None = None) -> dict[str, float]:
    """All metrics above for paired (N, D) embeddings (row i of each is pair i)."""
    q, t = np.asarray(queries), np.asarray(targets)
    if q.shape != t.shape or q.ndim != 2 or len(q) < 2:
        raise ValueError(f"need at least two aligned pairs, got queries {q.shape} and targets {t.shape}")
    q_ids, q_first = _distinct(q, query_ids)  # each distinct item once
    t_ids, t_first = _distinct(t, target_ids)
    cos_sum, squared_sum, centroid_gap = _pair_sums(q, t, q_first, t_first)
    gap = float(np.linalg.norm(centroid_gap))
    out = {
        "paired_cosine_distance": 1.0 - cos_sum / len(q),
        "centroid_gap": gap,
        "alignment": squared_sum / len(q),
        "uniformity": uniformity(np.concatenate([q[q_first], t[t_first]])),
    }
    out["q2t_recall@1"], out["t2q_recall@1"] = recall_both_ways(q, t, q_ids, t_ids)
    sides = (query_modality, target_modality)
    if sides in (("image", "text"), ("text", "image")):
        out["modality_gap"] = gap
        forward, backward = ("i2t", "t2i") if sides[0] == "image" else ("t2i", "i2t")
        out[f"{forward}_recall@1"] = out["q2t_recall@1"]
        out[f"{backward}_recall@1"] = out["t2q_recall@1"]
    return out
