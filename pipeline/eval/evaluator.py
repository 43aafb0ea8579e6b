"""MMEB-style evaluation: encode each unique item once, rank each query's own candidates.

Items (queries and candidates) are deduplicated by content id across all datasets, looked
up in an embedding cache keyed by the model's checkpoint, and encoded in length-sorted
batches. Under `accelerate launch` the items are sharded across processes and gathered.
An item that cannot be embedded (a bad image, say) drops only the rows that need it, and
is reported.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.eval.metrics import all_metrics, gold_rank
from pipeline.models.base import EmptyExampleError, Example, ImageError, InputTooLongError, VLMEncoder

log = logging.getLogger(__name__)

ItemLoader = Callable[[str], Example]  # item id -> the example to embed
_ITEM_ERRORS = (ImageError, EmptyExampleError, InputTooLongError, OSError)


@dataclass(frozen=True)
class EvalTask:
    """One dataset's queries, each with its candidate list (gold first)."""

    name: str
    meta_task: str
    in_domain: bool
    rows: Sequence[tuple[str, Sequence[str]]]  # (query item id, candidate item ids)


@dataclass
class TaskResult:
    name: str
    meta_task: str
    in_domain: bool
    metrics: dict[str, float]
    n_queries: int
    row_indices: list[int]  # which rows were scored (rows with unusable items are skipped)
    gold_ranks: np.ndarray
    top_items: list[str]
    gold_scores: np.ndarray
    top_scores: np.ndarray


@dataclass
class EvalResult:
    tasks: list[TaskResult]
    item_ids: list[str]
    embeddings: np.ndarray  # (N, D) float32, rows aligned with item_ids
    failed_items: dict[str, str] = field(default_factory=dict)

    def averages(self, metric: str = "precision@1") -> dict[tuple[str, str], float]:
        """{(meta_task, 'all'|'in_domain'|'ood'): mean over datasets}."""
        out: dict[tuple[str, str], float] = {}
        for task in {t.meta_task for t in self.tasks}:
            groups = {"all": [t for t in self.tasks if t.meta_task == task]}
            groups["in_domain"] = [t for t in groups["all"] if t.in_domain]
            groups["ood"] = [t for t in groups["all"] if not t.in_domain]
            for split, members in groups.items():
                if members:
                    out[(task, split)] = float(np.mean([m.metrics[metric] for m in members]))
        return out


class EmbeddingCache:
    """Embeddings by (model key, item id), in memory and optionally in a directory of .npz files."""

    def __init__(self, directory: str | Path | None = None):
        self.directory = Path(directory) if directory else None
        self._mem: dict[str, dict[str, np.ndarray]] = {}

    def _file(self, model_key: str) -> Path | None:
        if self.directory is None:
            return None
        import hashlib

        return self.directory / f"{hashlib.sha256(model_key.encode()).hexdigest()[:24]}.npz"

    def _table(self, model_key: str) -> dict[str, np.ndarray]:
        if model_key not in self._mem:
            table: dict[str, np.ndarray] = {}
            path = self._file(model_key)
            if path is not None and path.is_file():
                with np.load(path, allow_pickle=False) as data:
                    table = dict(zip(data["ids"].tolist(), data["vecs"], strict=True))
            self._mem[model_key] = table
        return self._mem[model_key]

    def get(self, model_key: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        table = self._table(model_key)
        return {i: table[i] for i in ids if i in table}

    def put(self, model_key: str, ids: Sequence[str], vecs: np.ndarray) -> None:
        table = self._table(model_key)
        table.update(zip(ids, vecs, strict=True))
        path = self._file(model_key)
        if path is not None and len(table):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, ids=np.array(list(table)), vecs=np.stack(list(table.values())))
            tmp.replace(path)


class Evaluator:
    def __init__(self, encoder: VLMEncoder, load_item: ItemLoader, batch_size: int = 16,
                 cache: EmbeddingCache | None = None, model_key: str | None = None,
                 accelerator: Any = None, progress: bool = True):
        self.encoder = encoder
        self.load_item = load_item
        self.batch_size = batch_size
        self.cache = cache
        self.model_key = model_key
        self.accelerator = accelerator
        self.progress = progress

    # -- encoding ------------------------------------------------------------------------
    def _encode_ids(self, ids: list[str]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        """Embeddings of `ids` (this process's share), and the ids that failed with why."""
        examples, usable, failed = [], [], {}
        for item_id in ids:
            try:
                examples.append(self.load_item(item_id))
                usable.append(item_id)
            except _ITEM_ERRORS as exc:
                failed[item_id] = str(exc)
        vecs: dict[str, np.ndarray] = {}
        try:
            out = self.encoder.encode(examples, batch_size=self.batch_size, progress=self.progress)
            vecs = dict(zip(usable, out.numpy(), strict=True))
        except _ITEM_ERRORS:
            # One bad item spoils its batch: fall back to one at a time to find it.
            for item_id, example in zip(usable, examples, strict=True):
                try:
                    vecs[item_id] = self.encoder.encode([example], batch_size=1)[0].numpy()
                except _ITEM_ERRORS as exc:
                    failed[item_id] = str(exc)
        return vecs, failed

    def embed_items(self, ids: Sequence[str]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        unique = sorted(set(ids))
        found = self.cache.get(self.model_key, unique) if self.cache and self.model_key else {}
        todo = [i for i in unique if i not in found]
        failed: dict[str, str] = {}
        if todo:
            rank, world = self._world()
            vecs, failed = self._encode_ids(todo[rank::world])
            if world > 1:
                from accelerate.utils import gather_object

                vecs = {k: v for part in gather_object([vecs]) for k, v in part.items()}
                failed = {k: v for part in gather_object([failed]) for k, v in part.items()}
            if self.cache and self.model_key and vecs:
                self.cache.put(self.model_key, list(vecs), np.stack(list(vecs.values())))
            found.update(vecs)
        return found, failed

    def _world(self) -> tuple[int, int]:
        if self.accelerator is None:
            return 0, 1
        return self.accelerator.process_index, self.accelerator.num_processes

    # -- scoring -------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, tasks: Sequence[EvalTask]) -> EvalResult:
        ids = [i for t in tasks for q, cands in t.rows for i in (q, *cands)]
        vecs, failed = self.embed_items(ids)
        if failed:
            log.warning("%d items could not be embedded and their rows are skipped, e.g. %s",
                        len(failed), next(iter(failed.items())))
        results = [self._score(task, vecs) for task in tasks]
        item_ids = sorted(vecs)
        matrix = np.stack([vecs[i] for i in item_ids]).astype(np.float32) if item_ids else np.zeros((0, 0), np.float32)
        return EvalResult(results, item_ids, matrix, failed)

    @staticmethod
    def _score(task: EvalTask, vecs: dict[str, np.ndarray]) -> TaskResult:
        kept, ranks, tops, gold_scores, top_scores = [], [], [], [], []
        for idx, (query, candidates) in enumerate(task.rows):
            if query not in vecs or any(c not in vecs for c in candidates):
                continue
            cand = np.stack([vecs[c] for c in candidates])  # (C, D) unit vectors
            scores = cand @ vecs[query]  # (C,) cosine
            best = int(np.argmax(scores))
            kept.append(idx)
            ranks.append(gold_rank(scores, np.array([c == candidates[0] for c in candidates])))
            tops.append(candidates[best])
            gold_scores.append(float(scores[0]))
            top_scores.append(float(scores[best]))
        if not kept:
            raise ValueError(f"{task.name}: no query could be scored (every row has an unusable item)")
        ranks_arr = np.array(ranks)
        return TaskResult(task.name, task.meta_task, task.in_domain, all_metrics(ranks_arr), len(kept), kept,
                          ranks_arr, tops, np.array(gold_scores), np.array(top_scores))
