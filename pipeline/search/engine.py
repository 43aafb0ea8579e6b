"""Live retrieval over stored candidates, with every chosen model side by side.

A query is encoded by each chosen run's own encoder (loaded once per process, see
`encoders`), ranked against that run's stored candidate embeddings held in memory (see
`index`), and placed on the run's stored 2-D map with `pipeline.analysis.projection.place`:
the similarity-weighted mean position of its nearest stored points, which is how UMAP
initialises `transform` for new points. Running UMAP's own `transform` would need the
fitted model, which the store does not keep, and its optimisation would cost seconds per
query; t-SNE and PCA maps get the same placement, so all methods behave alike.

Everything derived from the store is cached per store version; a newly published store
file clears it. A query that matches a stored eval query (same instruction, text and image)
gets that row's gold candidate marked, with its rank.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.analysis.projection import METHODS, place
from pipeline.search.encoders import EncoderPool, EncoderSource, EncoderUnavailable
from pipeline.search.index import BoundedCache
from pipeline.search.prefix_index import PoolIndex, PrefixIndex
from pipeline.search.query import Query, QueryError
from storage import StoreReader
from storage.vocabulary import META_TASKS

log = logging.getLogger(__name__)

CACHE_MB_ENV = "VLMEMBED_SEARCH_CACHE_MB"
MAX_K = 100
CARD_CACHE_ITEMS = 20_000


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    model: str
    label: str
    stage: str
    train_samples: int | None
    train_task: str | None
    experiment: str | None
    dim: int
    checkpoint: str | None
    config: Any = field(default=None, repr=False, compare=False)
    stored: str = field(default="", repr=False, compare=False)  # changes when the run's embeddings do

    @property
    def index_name(self) -> str:
        """The folder name of this run's saved search index: a new one when the run is replaced."""
        digest = hashlib.sha1(f"{self.run_id}|{self.stored}|{self.dim}".encode()).hexdigest()[:16]
        return f"{''.join(c if c.isalnum() else '_' for c in self.run_id)[:40]}-{digest}"

    @property
    def title(self) -> str:
        """What a results column is called: the model and the meta-task its final run was trained on,
        or, for any other stage, the run's label (which names its task and stage)."""
        if self.stage != "final":
            return f"{self.model} · {self.label}"
        return f"{self.model} · {self.train_task}" if self.train_task else self.model


@dataclass
class Hit:
    rank: int
    item_id: str
    score: float
    modality: str
    text: str | None
    thumbnail: bytes | None = field(default=None, repr=False)
    gold: bool = False
    image_path: str | None = None  # an image item's file, relative to its benchmark (names it where it has no text)


@dataclass
class MapPlacement:
    dataset: str
    method: str
    x: float
    y: float


@dataclass
class RunAnswer:
    run: RunInfo
    hits: list[Hit] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    gold_rank: int | None = None  # rank of the gold candidate in the pool, when the query is a stored one
    placement: MapPlacement | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class SearchResult:
    query: str
    pool: str  # a dataset name, or "all"
    gold: list[dict]  # stored eval rows this query is: dataset, row_idx, gold_item
    answers: list[RunAnswer]

    def to_dict(self) -> dict:
        """JSON-ready (thumbnails left out)."""
        out = {"query": self.query, "pool": self.pool, "gold": self.gold, "runs": []}
        for a in self.answers:
            out["runs"].append({
                "run_id": a.run.run_id, "model": a.run.model, "title": a.run.title, "stage": a.run.stage,
                "train_task": a.run.train_task,
                "train_samples": a.run.train_samples, "available": a.ok, "error": a.error,
                "seconds": round(a.seconds, 4), "gold_rank": a.gold_rank,
                "placement": asdict(a.placement) if a.placement else None,
                "hits": [{k: v for k, v in asdict(h).items() if k != "thumbnail"} for h in a.hits],
            })
        return out


@dataclass(frozen=True)
class _StoreView:
    """What the engine reads once per store version."""

    version: Any
    runs: dict[str, RunInfo]
    datasets: pd.DataFrame  # indexed by dataset
    targets: pd.DataFrame  # dataset, item_id of every candidate
    queries: dict[tuple, list[dict]]  # content key -> stored eval rows
    projected: pd.DataFrame


# Without a task or a pool: what each model's default final run was trained on, in this order
# ("all" = trained on every meta-task at once); any other task after these, alphabetically.
AUTO_TASK_ORDER = ("all", "retrieval")


def choose_runs(runs: Iterable[RunInfo], task: str | None) -> list[str]:
    """One final run per model, in the models' first-seen order.

    With a `task`: the model's final run trained on it, else one trained on "all"; a model with
    neither is left out rather than shown with a run trained on something else. Without: the
    model's final run trained on "all", else "retrieval", else the alphabetically first task.
    Ties (several runs of one model on one task) go to the first in `runs`.
    """
    runs = list(runs)
    finals = [r for r in runs if r.stage == "final"]
    if task is not None:
        wanted = (task, "all")
        rank = {t: i for i, t in enumerate(wanted)}
        candidates = [r for r in finals if r.train_task in rank]
    else:
        rank = {t: i for i, t in enumerate(AUTO_TASK_ORDER)}
        candidates = finals

    def order(run: RunInfo) -> tuple:
        known = run.train_task is not None
        return (rank.get(run.train_task, len(rank)), not known, run.train_task or "")

    chosen: dict[str, RunInfo] = {}
    for run in candidates:
        best = chosen.get(run.model)
        if best is None or order(run) < order(best):
            chosen[run.model] = run
    # A model with no final run yet (the demo lands its zero-shot runs first) is searched with its
    # zero-shot run, so the tab has something to show while fine-tuning goes on.
    early = [r for r in runs if r.stage == "zero-shot" and r.model not in chosen
             and not any(f.model == r.model for f in finals)]
    for run in early:
        chosen.setdefault(run.model, run)
    return [r.run_id for r in chosen.values()]


def _nothing_to_search(store: str | os.PathLike) -> str:
    """Why there is nothing to search: the demo still building (and when it lands), else what to run."""
    from pipeline.demo.status import building_status

    status = building_status(store)
    if status is not None:
        return status.coming("the models to search")
    return (f"no run in {store} has stored embeddings to search; run an experiment first "
            "(`vlmembed run experiments/smoke.toml`)")


def _none_if_nan(value):
    """None for a missing value of any kind (None, NaN, pandas NA / NaT)."""
    if value is None or (not isinstance(value, (bytes, bytearray, str, list, dict)) and pd.isna(value)):
        return None
    return value


class SearchEngine:
    """Search a store's candidates with the encoders of its runs; safe to call from many threads."""

    def __init__(self, reader: StoreReader, device: str | None = None, cache_mb: int | None = None,
                 max_encoders: int | None = None):
        self.reader = reader
        self.encoders = EncoderPool(device, max_encoders)
        budget = (cache_mb or int(os.environ.get(CACHE_MB_ENV, "1024"))) * 2**20
        self._indexes = BoundedCache(budget)  # PrefixIndex by run, across store versions
        self._pools = BoundedCache(budget // 16)  # PoolIndex (row selections) by version, run and pool
        self.index_builds = 0  # indexes built (not loaded) by this engine: a bench and a test read it
        self._maps = BoundedCache(budget // 4, size_of=lambda v: v[1].nbytes + v[0].memory_usage(deep=True).sum())
        self._cards = BoundedCache(CARD_CACHE_ITEMS, size_of=lambda v: 1)
        self._view: _StoreView | None = None
        self._lock = threading.Lock()

    # -- the store, once per version ----------------------------------------------------
    def view(self) -> _StoreView:
        version = self.reader.version
        with self._lock:
            if self._view is not None and self._view.version == version:
                return self._view
        fresh = self._load_view(version)
        with self._lock:
            if self._view is None or self._view.version != version:
                if self._view is not None:
                    log.info("store changed: search caches cleared")
                self._pools.clear()  # a run's PrefixIndex stays: its name changes when its rows do
                self._maps.clear()
                self._cards.clear()
                self._view = fresh
                if self.reader.version == version:  # an older version must not prune a newer one's indexes
                    self.prune_index_folder({run.index_name for run in fresh.runs.values()})
            return self._view

    def prune_index_folder(self, keep: set[str]) -> list[str]:
        """Remove saved indexes of runs this store version no longer holds (replaced or merged
        away), so `<store>.search/` does not grow with every re-run. In-progress saves
        (`.tmp-<pid>`) are left to their writer; a process still mapping a removed index keeps
        its pages (Linux unlinks, it does not truncate). Returns the names removed."""
        folder = self.index_folder()
        try:
            stale = [p for p in folder.iterdir() if p.is_dir() and ".tmp-" not in p.name and p.name not in keep]
        except OSError:  # no folder yet, or not readable: nothing to prune
            return []
        for path in stale:
            shutil.rmtree(path, ignore_errors=True)
            log.info("removed the saved search index %s: its run is no longer in the store", path.name)
        return [p.name for p in stale]

    def _load_view(self, version) -> _StoreView:
        embedded = self.reader.embedded_runs()
        runs = {r.run_id: RunInfo(r.run_id, r.model, r.label, r.stage, _none_if_nan(r.train_samples),
                                  _none_if_nan(r.train_task), _none_if_nan(r.experiment), int(r.dim),
                                  _none_if_nan(r.checkpoint), r.config, f"{r.finished_at}|{r.n_items}")
                for r in embedded.itertuples()}
        queries: dict[tuple, list[dict]] = {}
        for r in self.reader.eval_queries().itertuples():
            key = ((r.instruction or "").strip(), (_none_if_nan(r.text) or "").strip() or None,
                   _none_if_nan(r.thumbnail_md5))
            queries.setdefault(key, []).append({"dataset": r.dataset, "row_idx": int(r.row_idx),
                                                "query_item": r.query_item, "gold_item": r.gold_item})
        return _StoreView(version, runs, self.reader.datasets().set_index("dataset"),
                          self.reader.dataset_items("target"), queries, self.reader.projected())

    # -- choices for a UI ----------------------------------------------------------------
    def runs(self) -> list[RunInfo]:
        return list(self.view().runs.values())

    def datasets(self) -> list[str]:
        """Datasets with candidates to search, in the store's display order."""
        view = self.view()
        present = set(view.targets["dataset"])
        return [d for d in view.datasets.index if d in present]

    def instruction_of(self, dataset: str | None) -> str:
        view = self.view()
        if not dataset or dataset not in view.datasets.index:
            return ""
        return _none_if_nan(view.datasets.loc[dataset, "instruction"]) or ""

    def default_runs(self, dataset: str | None = None, task: str | None = None) -> list[str]:
        """Each model's final run trained on one meta-task, so the columns compare like with like:
        `task` when given, else the pool dataset's meta-task, else the `choose_runs` default."""
        if task is not None and task not in META_TASKS:
            raise QueryError(f"unknown task {task!r}; choose the meta-task the runs were trained on: "
                             f"{', '.join(META_TASKS)} (or none, for the pool's own)")
        return choose_runs(self.view().runs.values(), task if task is not None else self.task_of(dataset))

    def task_of(self, dataset: str | None) -> str | None:
        """A pool dataset's meta-task; None for all candidates or an unknown pool."""
        view = self.view()
        return str(view.datasets.loc[dataset, "meta_task"]) if dataset and dataset in view.datasets.index else None

    # -- the search ----------------------------------------------------------------------
    def search(self, query: Query, run_ids: Sequence[str] | None = None, dataset: str | None = None,
               k: int = 10, method: str = "umap", task: str | None = None) -> SearchResult:
        """Every run's top-k; without `run_ids`, each model's final run trained on `task` (else on
        the pool's meta-task, else the `choose_runs` default)."""
        view = self.view()
        if not view.runs:
            raise QueryError(_nothing_to_search(self.reader.path))
        if dataset and dataset not in set(view.targets["dataset"]):
            raise QueryError(f"unknown candidate pool {dataset!r}; pick a dataset with stored candidates "
                             "or leave it empty for all candidates")
        ids = list(run_ids) if run_ids else self.default_runs(dataset, task)
        if not ids:
            wanted = task or (f"{dataset}'s meta-task" if dataset else None)
            raise QueryError((f"no model has a final run trained on {wanted} (or on all meta-tasks) with stored "
                              "embeddings; pick another task or choose the runs yourself") if wanted else
                             "no final run has stored embeddings; choose the runs to search with yourself")
        unknown = [r for r in ids if r not in view.runs]
        if unknown:
            raise QueryError(f"no embeddings stored for run(s) {unknown}; choose among {len(view.runs)} runs "
                             "(`vlmembed sql \"SELECT DISTINCT run_id FROM embeddings\"`)")
        k = int(min(max(k, 1), MAX_K))
        gold = [g for g in view.queries.get(query.content_key(), []) if not dataset or g["dataset"] == dataset]
        example = query.example()
        answers = [self._answer(view, view.runs[r], query, example, dataset, k, method, gold) for r in ids]
        return SearchResult(query.describe(), dataset or "all", gold, answers)

    def _answer(self, view: _StoreView, run: RunInfo, query: Query, example, dataset: str | None, k: int,
                method: str, gold: list[dict]) -> RunAnswer:
        start = time.perf_counter()
        answer = RunAnswer(run)
        vec = np.zeros(0, dtype=np.float32)
        try:
            loaded = self.encoders.get(EncoderSource.of_run(run.checkpoint, run.config))
            vec = loaded.encode(example)
        except EncoderUnavailable as exc:
            answer.error = f"unavailable: {exc}"
        except (ValueError, RuntimeError) as exc:  # e.g. text over the model's limit
            answer.error = f"this model could not encode the query: {str(exc).splitlines()[0]}"
        if answer.error is None and vec.shape[0] != run.dim:
            answer.error = (f"unavailable: its encoder gives {vec.shape[0]}-d vectors but the run stored "
                            f"{run.dim}-d embeddings (the checkpoint no longer matches the run)")
        if answer.error is not None:
            answer.seconds = time.perf_counter() - start
            return answer
        index = self.index(run.run_id, dataset)
        gold_items = {g["gold_item"] for g in gold}
        found = index.search(vec, k)
        cards = self.cards([item for item, _ in found])
        for rank, (item, score) in enumerate(found, start=1):
            card = cards.get(item, {})
            answer.hits.append(Hit(rank, item, score, card.get("modality", "?"), card.get("text"),
                                   card.get("thumbnail"), item in gold_items, card.get("image_path")))
        ranks = [r for r in (index.rank(vec, g) for g in gold_items) if r is not None]
        answer.gold_rank = min(ranks) if ranks else None
        answer.placement = self._place(view, run, vec, dataset or self._map_dataset(view, answer, gold), method)
        answer.seconds = time.perf_counter() - start
        return answer

    # -- cached pieces -------------------------------------------------------------------
    def pool(self, dataset: str | None) -> list[str]:
        targets = self.view().targets
        chosen = targets if not dataset else targets[targets["dataset"] == dataset]
        return sorted(set(chosen["item_id"]))

    def index(self, run_id: str, dataset: str | None) -> PoolIndex:
        """A run's candidates of a pool (a dataset's targets, or every dataset's), cached."""
        view = self.view()

        def build() -> PoolIndex:
            return PoolIndex.of_items(self.run_index(view.runs[run_id]), self.pool(dataset))

        return self._pools.get((view.version, run_id, dataset), build)

    def index_folder(self) -> Path:
        """Where saved search indexes live: beside the store file."""
        path = Path(self.reader.path)
        return path.with_name(f"{path.stem}.search")

    def run_index(self, run: RunInfo) -> PrefixIndex:
        """The run's PrefixIndex over every item it embedded: memory-mapped from its saved files,
        built and saved once when they are missing (one build per run, whoever asks first)."""

        def load_or_build() -> PrefixIndex:
            folder = self.index_folder() / run.index_name
            ids, rows = self._stored_rows(run)
            found = PrefixIndex.load(folder, rows)
            if found is not None:
                return found
            start = time.perf_counter()
            built = PrefixIndex.build(ids, rows)
            self.index_builds += 1
            try:
                built.save(folder)
                built = PrefixIndex.load(folder, rows) or built  # memory-mapped: pages the OS may drop
            except OSError as exc:  # a read-only store folder: keep it in memory for this process
                log.warning("search index for %s not saved (%s); it is rebuilt per process", run.run_id, exc)
            log.info("search index of %s: %d x %d built in %.1f s", run.run_id, len(built.item_ids), built.dim,
                     time.perf_counter() - start)
            return built

        return self._indexes.get(run.index_name, load_or_build)

    def _stored_rows(self, run: RunInfo) -> tuple[np.ndarray, np.ndarray]:
        """(item ids, (N, D) float16 rows) the run stored: the store's own file, memory-mapped (no copy)."""
        ids, rows = self.reader.embedding_matrix(run.run_id)
        return np.asarray(ids, dtype=str), rows

    def cards(self, item_ids: Sequence[str]) -> dict[str, dict]:
        """modality, text and thumbnail of items, from a per-version cache."""
        version = self.view().version
        out, missing = {}, []
        for item in item_ids:
            card = self._cards.peek((version, item))
            if card is None:
                missing.append(item)
            else:
                out[item] = card
        if missing:
            for row in self.reader.items(missing).itertuples():
                card = {"modality": row.modality, "text": _none_if_nan(row.text),
                        "thumbnail": _none_if_nan(row.thumbnail), "image_path": _none_if_nan(row.image_path)}
                out[row.item_id] = self._cards.get((version, row.item_id), lambda c=card: c)
        return out

    def map_of(self, run_id: str, dataset: str, method: str) -> tuple[pd.DataFrame, np.ndarray] | None:
        """(stored projection points, their embeddings) of a run's map, or None when not projected."""
        view = self.view()
        p = view.projected
        if p.empty or not ((p["run_id"] == run_id) & (p["dataset"] == dataset) & (p["method"] == method)).any():
            return None

        def build():
            points = self.reader.projection(run_id, dataset, method).drop(columns=["thumbnail"])
            ids, vecs = self.reader.embeddings(run_id, sorted(set(points["item_id"])))
            row_of = {item: i for i, item in enumerate(ids)}
            points = points[points["item_id"].isin(row_of)].reset_index(drop=True)
            return points, vecs[[row_of[i] for i in points["item_id"]]]

        return self._maps.get((view.version, run_id, dataset, method), build)

    def _map_dataset(self, view: _StoreView, answer: RunAnswer, gold: list[dict]) -> str | None:
        """Without a chosen pool: the stored query's dataset, else the top hits' most common one."""
        if gold:
            return gold[0]["dataset"]
        hits = [h.item_id for h in answer.hits]
        found = view.targets[view.targets["item_id"].isin(hits)]["dataset"]
        return found.mode().iloc[0] if len(found) else None

    def _place(self, view: _StoreView, run: RunInfo, vec: np.ndarray, dataset: str | None,
               method: str) -> MapPlacement | None:
        if not dataset:
            return None
        for m in dict.fromkeys([method, *METHODS]):
            found = self.map_of(run.run_id, dataset, m)
            if found is not None:
                points, refs = found
                x, y = place(vec, refs, points[["x", "y"]].to_numpy(), k=10)
                return MapPlacement(dataset, m, float(x), float(y))
        return None
