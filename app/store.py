"""The dashboard's view of the store: everything a tab needs, read once per store version.

Handlers never query the store on a filter change: they filter a `Snapshot`, which is
rebuilt only when a writer has swapped a new store file in (`StoreReader.version`).
A missing or unreadable store becomes a snapshot that carries storage's error message
(which names the rebuild command), so every tab can show it instead of crashing.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from app.stats_view import averages_with_intervals, gap_with_intervals
from app.tables import (
    DEFAULT_METRIC,
    add_series,
    filter_scores,
    latest_per_cell,
    meta_task_averages,
    paradigm_gap,
    series_catalogue,
)
from pipeline.stats.landing import compare_runs
from storage import StoreError, StoreReader
from storage.intervals import read_intervals
from storage.vocabulary import TEXT_META_TASK

log = logging.getLogger(__name__)

MEMO_SIZE = 256
GAP_COLUMNS = ["source", "meta_task", "split", "ar_model", "ar", "diffusion_model", "diffusion", "gap", "lower",
               "upper", "how"]
SCORE_COLUMNS = ["source", "run_id", "model", "paradigm", "meta_task", "dataset", "in_domain", "metric", "value",
                 "variant", "stage", "train_samples", "label", "benchmark", "scale", "finished_at", "experiment"]


@dataclass(frozen=True)
class Snapshot:
    """Immutable frames of one store version; `memo` caches results derived from them."""

    version: str
    error: str | None = None
    scores: pd.DataFrame = field(default_factory=lambda: add_series(pd.DataFrame(columns=SCORE_COLUMNS)))
    series: pd.DataFrame = field(default_factory=pd.DataFrame)
    runs: pd.DataFrame = field(default_factory=pd.DataFrame)
    reported: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["source", "run_id", "model", "variant", "meta_task", "split", "metric", "value"]))
    averages: pd.DataFrame = field(default_factory=pd.DataFrame)  # overview: default variant, final stage
    intervals: pd.DataFrame = field(default_factory=pd.DataFrame)  # v_intervals, every metric
    gaps: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=GAP_COLUMNS))  # with their intervals
    compare: Callable[..., tuple] | None = field(default=None, repr=False, compare=False)  # (a, b, metric) -> a - b
    _memo: OrderedDict = field(default_factory=OrderedDict, repr=False, compare=False)
    _memo_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    def choices(self, column: str) -> list[str]:
        """Distinct values of a column of the series catalogue (model, variant ...), in display order."""
        if self.series.empty or column not in self.series:
            return []
        return list(dict.fromkeys(self.series[column].dropna()))

    def metrics(self) -> list[str]:
        found = sorted(set(self.scores["metric"]))
        return [DEFAULT_METRIC] + [m for m in found if m != DEFAULT_METRIC] if found else [DEFAULT_METRIC]

    def label_of(self, series: str) -> str:
        match = self.series.loc[self.series["series"] == series, "source_label"]
        return match.iloc[0] if len(match) else series

    def memo(self, key: tuple, compute: Callable[[], Any]) -> Any:
        """A bounded cache of derived results (figures, tables) for this version."""
        with self._memo_lock:
            if key in self._memo:
                self._memo.move_to_end(key)
                return self._memo[key]
        value = compute()
        with self._memo_lock:
            self._memo[key] = value
            while len(self._memo) > MEMO_SIZE:
                self._memo.popitem(last=False)
        return value

    @classmethod
    def load(cls, reader: StoreReader, version: str) -> Snapshot:
        runs = reader.runs()
        frames = [reader.scores(metric) for metric in reader.metrics()]
        raw = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=SCORE_COLUMNS[:-2])
        raw = raw.merge(runs[["run_id", "finished_at", "experiment"]], on="run_id", how="left")
        scores = latest_per_cell(add_series(raw))
        headline = headline_scores(scores)
        intervals = read_intervals(reader)
        averages = averages_with_intervals(meta_task_averages(headline), headline, intervals)
        compare = _comparer(reader)
        return cls(version=version, scores=scores, series=series_catalogue(scores), runs=runs,
                   reported=reader.reported_averages(), averages=averages, intervals=intervals,
                   gaps=gap_with_intervals(paradigm_gap(averages), averages, compare), compare=compare)

    def summary(self) -> str:
        if not self.ok:
            return self.error or ""
        counts = self.runs["source"].value_counts() if len(self.runs) else pd.Series(dtype=int)
        per_source = ", ".join(f"{n} {s}" for s, n in counts.items())
        return f"{len(self.runs)} runs ({per_source or 'none yet'}), {len(self.scores)} scores"


def _comparer(reader: StoreReader) -> Callable[..., tuple]:
    """compare_runs on this reader, each (a, b, metric) once (a gap's three splits share their two runs)."""
    return lru_cache(maxsize=None)(lambda a, b, metric=DEFAULT_METRIC: compare_runs(reader, a, b, metric))


def _stamp(path: Path) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return "absent"
    return f"{st.st_ino}-{st.st_mtime_ns}-{st.st_size}"


class StoreCache:
    """Opens the store lazily (it may appear later) and keeps one snapshot per version."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        self._reader: StoreReader | None = None
        self._snapshot: Snapshot | None = None
        self._failed: str | None = None  # a version that failed to load (not retried)

    def reader(self) -> StoreReader:
        """The open reader; raises storage's StoreError (with its rebuild hint) when there is none."""
        with self._lock:
            if self._reader is None:
                self._reader = StoreReader(self.path)
            return self._reader

    def snapshot(self) -> Snapshot:
        with self._lock:
            if self._reader is None:
                failed = f"error:{_stamp(self.path)}"
                if self._snapshot is not None and self._snapshot.version == failed:
                    return self._snapshot  # retry only when the file changes: one stat per call
                try:
                    self._reader = StoreReader(self.path)
                except StoreError as exc:
                    log.warning("store unreadable: %s", exc)
                    self._snapshot = Snapshot(version=failed, error=str(exc))
                    return self._snapshot
            # After the first open the reader follows swaps itself and keeps serving the last good file.
            version = "-".join(map(str, self._reader.version or ()))
            if self._snapshot is None or (version != self._snapshot.version and version != self._failed):
                self._load(version)
            return self._snapshot

    def _load(self, version: str) -> None:
        """Read a new version; one that fails half-way is refused and the last good snapshot kept."""
        try:
            self._snapshot = Snapshot.load(self._reader, version)
        except StoreError as exc:
            self._failed = version
            if self._snapshot is not None and self._snapshot.ok:
                log.warning("store %s version %s refused, still serving version %s: %s", self.path, version,
                            self._snapshot.version, exc)
                return
            log.warning("store unreadable: %s", exc)
            self._snapshot = Snapshot(version=f"error:{version}", error=str(exc))
            return
        log.info("store %s: version %s, %s", self.path, version, self._snapshot.summary())

    def version(self) -> str:
        return self.snapshot().version


def headline_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """What the Overview averages: default variant, final stage; and for the text meta-task, which has no
    training split and is only evaluated, the default variant's zero-shot runs."""
    final = filter_scores(scores, variants=["default"], stages=["final"])
    text = filter_scores(scores, meta_task=TEXT_META_TASK, variants=["default"], stages=["zero-shot"])
    return pd.concat([final, text], ignore_index=True) if len(text) else final
