"""A run's scores in a form both the store and foreign result files can be written from.

The store keeps metrics under its own names in percent (`precision@1`, `recall@5`, `mrr`,
`ndcg@5`); MTEB and VLM2Vec write theirs on a 0-1 scale under other names. Each format maps
only metrics that mean the same thing here; every other number of a file is kept in
`DatasetScores.extra` so that writing an imported run back out loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PERCENT = 100.0  # the store's scale over the 0-1 scale of MTEB and VLM2Vec


@dataclass(frozen=True)
class MetricName:
    ours: str
    theirs: str
    note: str = ""


@dataclass
class DatasetScores:
    dataset: str  # the store's dataset name
    metrics: dict[str, float] = field(default_factory=dict)  # our metric name -> percent
    extra: dict = field(default_factory=dict)  # the file's other fields, written back unchanged
    n_queries: int | None = None
    spelled: dict[str, str] = field(default_factory=dict)  # our metric -> the file's name for it, when imported


@dataclass
class RunScores:
    run_id: str
    model: str
    datasets: list[DatasetScores] = field(default_factory=list)
    meta: dict = field(default_factory=dict)  # format-level fields (e.g. a leaderboard report's metadata)


def to_fraction(percent: float) -> float:
    return percent / PERCENT


def to_percent(fraction: float) -> float:
    return fraction * PERCENT


def map_in(record: dict, names: tuple[MetricName, ...]) -> DatasetScores:
    """A file's metric dict -> our metrics in percent, the rest kept as it was (dataset unset).

    Several of their names may mean one of ours (VLM2Vec's `hit@1` and `precision@1` with one
    gold candidate); the first listed wins, the others stay in `extra`, and `spelled` remembers
    which name the number came under so that it is written back under that name.
    """
    scores = DatasetScores("", extra=dict(record))
    for name in names:
        if name.ours not in scores.metrics and isinstance(record.get(name.theirs), int | float):
            scores.metrics[name.ours] = to_percent(float(record[name.theirs]))
            scores.spelled[name.ours] = name.theirs
            scores.extra.pop(name.theirs)
    return scores


def map_out(scores: DatasetScores, names: tuple[MetricName, ...], extra: dict) -> dict:
    """Our metrics (percent) -> the file's names on its scale, over the kept `extra` fields: each
    under the name it came in with, else the format's first name for it."""
    out = dict(extra)
    for ours, value in scores.metrics.items():
        theirs = scores.spelled.get(ours) or next((n.theirs for n in names if n.ours == ours), None)
        if theirs is not None and theirs not in out:
            out[theirs] = to_fraction(value)
    return out
