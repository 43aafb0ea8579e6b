"""Project stored runs to 2-D and measure their image-text alignment, writing both back.

For every run with embeddings and every dataset it was evaluated on, each eval row gives a
pair: its query and its gold target (the first candidate). A seeded sample of at most
`max_pairs` rows is drawn from the dataset's rows alone, never from a run, so every run of
every model is drawn and measured on the same pairs and two maps can be compared point for
point. Queries and targets are projected together (one map per run, dataset and method)
and the alignment metrics of `pipeline.analysis.alignment` are stored beside them.

This is pipeline work (`vlmembed project`); the dashboard only reads what it wrote.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.analysis.alignment import alignment_metrics
from pipeline.analysis.projection import METHODS, project
from storage import StoreReader, StoreWriter

log = logging.getLogger(__name__)

MIN_PAIRS = 3  # fewer points than this cannot be projected


class ProjectionInputError(ValueError):
    """A request `project_store` cannot serve; the message says what to do instead."""

    user_facing = True  # the CLI prints it as one line


@dataclass(frozen=True)
class PairSample:
    """The sampled pairs of one dataset: row i pairs query_items[i] with gold_items[i]."""

    dataset: str
    rows: list[int]
    query_items: list[str]
    gold_items: list[str]

    def __len__(self) -> int:
        return len(self.rows)


def _stable_seed(seed: int, name: str) -> list[int]:
    """A seed per dataset that does not depend on Python's hash randomisation."""
    return [seed, int.from_bytes(hashlib.sha1(name.encode()).digest()[:4], "little")]


def sample_pairs(dataset: str, pairs: pd.DataFrame, max_pairs: int, seed: int = 0) -> PairSample:
    """A seeded sample of a dataset's eval rows (all of them when there are few), in row order."""
    if max_pairs < MIN_PAIRS:
        raise ProjectionInputError(f"--max-pairs must be at least {MIN_PAIRS}, got {max_pairs}")
    pairs = pairs.sort_values("row_idx")
    if len(pairs) > max_pairs:
        keep = np.sort(np.random.default_rng(_stable_seed(seed, dataset)).choice(len(pairs), max_pairs, replace=False))
        pairs = pairs.iloc[keep]
    return PairSample(dataset, pairs["row_idx"].astype(int).tolist(), pairs["query_item"].tolist(),
                      pairs["gold_item"].tolist())


@dataclass(frozen=True)
class RunProjection:
    """What one (run, dataset) adds to the store: points per method, and the metrics."""

    item_ids: list[str]
    roles: list[str]
    xy: dict[str, np.ndarray]  # method -> (N, 2)
    metrics: dict[str, float]


def project_pairs(sample: PairSample, item_ids: Sequence[str], vectors: np.ndarray, methods: Sequence[str],
                  seed: int = 0, query_modality: str | None = None,
                  target_modality: str | None = None) -> RunProjection | None:
    """Project one run's embeddings of a sample's pairs; None when too few pairs are embedded.

    Each distinct item is one point per role (a label text shared by many images is one
    triangle with many dashed lines to it).
    """
    row_of = {item: i for i, item in enumerate(item_ids)}
    kept = [(q, t) for q, t in zip(sample.query_items, sample.gold_items, strict=True) if q in row_of and t in row_of]
    if len(kept) < len(sample):
        log.warning("%s: %d of %d sampled pairs have no stored embedding; left out", sample.dataset,
                    len(sample) - len(kept), len(sample))
    if len(kept) < MIN_PAIRS:
        return None
    queries, golds = [q for q, _ in kept], [t for _, t in kept]
    points = list(dict.fromkeys(queries)) + list(dict.fromkeys(golds))
    roles = ["query"] * len(dict.fromkeys(queries)) + ["target"] * len(dict.fromkeys(golds))
    if len(points) < MIN_PAIRS:
        return None
    x = vectors[[row_of[i] for i in points]]  # (P, D): queries then targets, projected together
    xy = {method: project(x, method, seed=seed) for method in methods}
    metrics = alignment_metrics(vectors[[row_of[q] for q in queries]], vectors[[row_of[t] for t in golds]],
                                query_modality, target_modality, query_ids=queries, target_ids=golds)
    metrics["n_pairs"] = float(len(kept))
    return RunProjection(points, roles, xy, metrics)


def _check_methods(methods: Sequence[str]) -> list[str]:
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ProjectionInputError(f"unknown projection method(s) {unknown}; use any of {', '.join(METHODS)}")
    return list(dict.fromkeys(methods))


def select_runs(reader: StoreReader, run_ids: Sequence[str] | None) -> pd.DataFrame:
    """The embedded runs to project; a clear error for an unknown run or one without embeddings."""
    embedded = reader.embedded_runs()
    if not run_ids:
        if embedded.empty:
            raise ProjectionInputError(
                f"no run in {reader.path} has stored embeddings; produce some with `vlmembed run EXPERIMENT.toml "
                f"--store {reader.path}` (store_embeddings = \"all\" or \"pairs\" in the TOML) or `vlmembed eval`")
        return embedded
    known = set(reader.runs()["run_id"])
    unknown = [r for r in run_ids if r not in known]
    if unknown:
        raise ProjectionInputError(f"unknown run id(s) {unknown}; list them with "
                                   f"`vlmembed sql --store {reader.path} \"SELECT run_id FROM runs\"`")
    bare = [r for r in run_ids if r not in set(embedded["run_id"])]
    if bare:
        raise ProjectionInputError(
            f"run(s) {bare} stored no embeddings (paper runs never have any); re-run them with "
            "store_embeddings = \"all\" or \"pairs\" in the experiment TOML "
            f"(`vlmembed run EXPERIMENT.toml --store {reader.path}`), or evaluate the model with `vlmembed eval`")
    return embedded[embedded["run_id"].isin(run_ids)]


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="project", unit="map", disable=not enabled)


def project_store(store: str | os.PathLike | StoreWriter, run_ids: Sequence[str] | None = None,
                  methods: Sequence[str] | str = ("umap",), datasets: Sequence[str] | None = None,
                  max_pairs: int = 1000, seed: int = 0, progress: bool = True, method: str | None = None) -> int:
    """Project and measure every (run, dataset) asked for; returns the number of
    (run, dataset, method) projections written.

    `store` is a store path (a writer is opened and the store published after each run, so
    the dashboard shows each run as soon as it is done) or an open `StoreWriter` (its owner
    publishes; the runs to project must already be published, because they are read from
    the store file). One process can hold only one writer of a store, hence the second form.
    `method="umap"` is short for `methods=("umap",)`.
    """
    if method is not None:
        methods = (method,)
    methods = _check_methods([methods] if isinstance(methods, str) else methods)
    path = store.path if isinstance(store, StoreWriter) else store
    reader = StoreReader(path)
    runs = select_runs(reader, run_ids)
    catalogue = reader.datasets().set_index("dataset")
    if datasets:
        unknown = sorted(set(datasets) - set(catalogue.index))
        if unknown:
            raise ProjectionInputError(f"unknown dataset(s) {unknown}; stored: {', '.join(catalogue.index)}")
    work = {run: [d for d in reader.run_datasets(run) if not datasets or d in datasets] for run in runs["run_id"]}
    own = not isinstance(store, StoreWriter)
    writer = StoreWriter(path) if own else store
    try:
        with _progress(sum(map(len, work.values())), progress) as bar:
            written = _project_runs(reader, writer, work, catalogue, methods, max_pairs, seed, bar, publish=own)
    except BaseException:
        if own:
            writer.abort()
        raise
    if own:
        writer.publish()
    return written


def _project_runs(reader: StoreReader, writer: StoreWriter, work: dict[str, list[str]], catalogue: pd.DataFrame,
                  methods: list[str], max_pairs: int, seed: int, bar, publish: bool) -> int:
    samples: dict[str, PairSample] = {}
    written = 0
    for run_id, names in work.items():
        for dataset in names:
            if dataset not in samples:
                samples[dataset] = sample_pairs(dataset, reader.pairs(dataset), max_pairs, seed)
            sample = samples[dataset]
            ids, vecs = reader.embeddings(run_id, sample.query_items + sample.gold_items)
            info = catalogue.loc[dataset]
            result = project_pairs(sample, ids, vecs, methods, seed, info["query_modality"], info["target_modality"])
            bar.update(1)
            bar.set_postfix_str(dataset)
            if result is None:
                log.warning("%s / %s: fewer than %d embedded pairs; nothing to project", run_id, dataset, MIN_PAIRS)
                continue
            for method, xy in result.xy.items():
                writer.set_projection(run_id, dataset, method, result.item_ids, result.roles, xy)
                written += 1
            writer.set_alignment(run_id, dataset, result.metrics)
        if publish:
            writer.publish(keep_open=True)  # the dashboard shows each run as soon as it is done
    return written
