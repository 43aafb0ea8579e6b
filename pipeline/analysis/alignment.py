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


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)


def uniformity(x: np.ndarray, t: float = 2.0, seed: int = 0) -> float:
    x = _unit(x)
    if len(x) > MAX_UNIFORMITY_POINTS:
        x = x[np.random.default_rng(seed).choice(len(x), MAX_UNIFORMITY_POINTS, replace=False)]
    if len(x) < 2:
        raise ValueError("uniformity needs at least two embeddings")
    sq = np.clip(2.0 - 2.0 * (x @ x.T), 0.0, None)  # squared distances of unit vectors
    iu = np.triu_indices(len(x), k=1)
    values = -t * sq[iu]
    m = values.max()
    return float(m + np.log(np.mean(np.exp(values - m))))  # log-mean-exp, stable


def recall_at_1(queries: np.ndarray, targets: np.ndarray, query_ids: Sequence | None = None,
                target_ids: Sequence | None = None) -> float:
    """Percent of distinct queries whose nearest distinct target is paired with them.

    Row i of `queries` is paired with row i of `targets`; without ids every row is its own item.
    """
    q_ids = np.arange(len(queries)) if query_ids is None else np.asarray(query_ids)
    t_ids = np.arange(len(targets)) if target_ids is None else np.asarray(target_ids)
    gold = set(zip(q_ids.tolist(), t_ids.tolist(), strict=True))
    q_first = np.unique(q_ids, return_index=True)[1]
    t_first = np.unique(t_ids, return_index=True)[1]
    q, t = _unit(queries[q_first]), _unit(targets[t_first])
    # in blocks of rows, so 10k x 10k pairs never hold the whole similarity matrix
    nearest = np.concatenate([np.argmax(q[i:i + RECALL_BLOCK] @ t.T, axis=1) for i in range(0, len(q), RECALL_BLOCK)])
    found = t_ids[t_first][nearest]
    hits = [(q, t) in gold for q, t in zip(q_ids[q_first].tolist(), found.tolist(), strict=True)]
    return float(np.mean(hits) * 100.0)


def alignment_metrics(queries: np.ndarray, targets: np.ndarray, query_modality: str | None = None,
                      target_modality: str | None = None, query_ids: Sequence | None = None,
                      target_ids: Sequence | None = None) -> dict[str, float]:
    """All metrics above for paired (N, D) embeddings (row i of each is pair i)."""
    q, t = _unit(queries), _unit(targets)
    if q.shape != t.shape or len(q) < 2:
        raise ValueError(f"need at least two aligned pairs, got queries {q.shape} and targets {t.shape}")
    q_ids = np.arange(len(q)) if query_ids is None else np.asarray(query_ids)
    t_ids = np.arange(len(t)) if target_ids is None else np.asarray(target_ids)
    q_points = q[np.unique(q_ids, return_index=True)[1]]  # each distinct item once
    t_points = t[np.unique(t_ids, return_index=True)[1]]
    cos = np.sum(q * t, axis=1)
    gap = float(np.linalg.norm(q_points.mean(axis=0) - t_points.mean(axis=0)))
    out = {
        "paired_cosine_distance": float(np.mean(1.0 - cos)),
        "centroid_gap": gap,
        "alignment": float(np.mean(np.sum((q - t) ** 2, axis=1))),
        "uniformity": uniformity(np.concatenate([q_points, t_points])),
        "q2t_recall@1": recall_at_1(q, t, q_ids, t_ids),
        "t2q_recall@1": recall_at_1(t, q, t_ids, q_ids),
    }
    sides = (query_modality, target_modality)
    if sides in (("image", "text"), ("text", "image")):
        out["modality_gap"] = gap
        forward, backward = ("i2t", "t2i") if sides[0] == "image" else ("t2i", "i2t")
        out[f"{forward}_recall@1"] = out["q2t_recall@1"]
        out[f"{backward}_recall@1"] = out["t2q_recall@1"]
    return out
