"""Measured baselines, stored as runs of source 'baseline', so every model can be tested against them.

* **chance**: each query's gold rank drawn uniformly from its candidates (seeded): what a model that
  knows nothing scores, with per-query ranks, so a paired test against it is possible.
* **blind (text only)**: ranks the candidates from the query's words alone and never sees its image:
  a candidate scores how often it answered training questions that start with the same two words, backed
  off to how often it was any training answer. This is the answer-type prior: "how many ..." is
  answered by a number. An OOD dataset (no training split) uses its meta-task's in-domain training
  questions. Ties go by chance. (A prior from the eval queries themselves, leaving each one out, would
  rank a balanced dataset's gold below chance: its own answer is the one left out.)
* **untrained**: the demo's miniatures with random weights (`untrained_miniatures`), evaluated by the
  real pipeline.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.eval.metrics import all_metrics
from storage import ModelRecord, RankRecord, RunRecord, ScoreRecord, StoreWriter
from storage.queries import eval_rows

log = logging.getLogger(__name__)

SEED = 0
BACKOFF = 1e-3  # the dataset-wide answer frequency only breaks ties of the question-specific one
KINDS = {
    "chance": ModelRecord("chance (uniform)", "uniform chance", "baseline", "tiny",
                          description="Each query's gold rank drawn uniformly from its candidates (seeded)."),
    "blind": ModelRecord("blind (text only)", "blind text-only prior", "baseline", "tiny",
                         description="Ranks candidates by how often they answered training questions that start "
                                     "with the same words; never sees an image."),
}


def _generator(seed: int, dataset: str) -> np.random.Generator:
    import zlib

    return np.random.default_rng([seed, zlib.crc32(dataset.encode())])


def _others(candidates: Sequence[str]) -> list[int]:
    """Positions of the non-gold candidates (copies of the gold item are the gold, not rivals)."""
    return [j for j in range(1, len(candidates)) if candidates[j] != candidates[0]]


def chance_ranks(rows: pd.DataFrame, seed: int = SEED) -> np.ndarray:
    """One dataset's rows (candidates column): gold ranks drawn uniformly among each row's candidates."""
    rng = _generator(seed, str(rows["dataset"].iloc[0]))
    sizes = np.array([len(_others(c)) + 1 for c in rows["candidates"]])
    return 1 + rng.integers(0, sizes)


def question_key(instruction: str | None, text: str | None) -> str:
    """What a blind model conditions on: the query's first two words ('how many', 'what colour', 'is the'),
    which name the answer's type without its particulars; no text: ''."""
    text = text if isinstance(text, str) else ""  # None, or NaN from a frame, for an image-only query
    words = re.findall(r"[a-z#']+", re.sub(r"\d", "#", text.lower()))
    return " ".join(words[:2])


@dataclass(frozen=True)
class AnswerPrior:
    """How often each answer text followed each question key in training: all a blind model can learn."""

    pair: Counter
    answer: Counter

    @classmethod
    def from_pairs(cls, pairs) -> AnswerPrior:
        """From training pairs (pipeline.data.records.TrainPair): the query's key and the positive's text."""
        seen = [(question_key(p.query.instruction, p.query.text), p.positive.text or "") for p in pairs]
        return cls(Counter(seen), Counter(a for _, a in seen))

    def score(self, key: str, answer: str) -> float:
        return self.pair[(key, answer)] + BACKOFF * self.answer[answer]


def blind_ranks(rows: pd.DataFrame, prior: AnswerPrior, seed: int = SEED) -> np.ndarray:
    """One dataset's rows (query_instruction, query_text, candidates, candidate_texts): gold ranks when
    candidates are ranked by the training prior of their text given the query's first words. Candidates
    without text (images) all score 0: the blind model cannot tell them apart."""
    rng = _generator(seed + 1, str(rows["dataset"].iloc[0]))
    ranks = np.empty(len(rows), dtype=np.int64)
    for i, row in enumerate(rows.itertuples(index=False)):
        key, texts = question_key(row.query_instruction, row.query_text), row.candidate_texts
        gold = prior.score(key, str(texts[0] or ""))
        rivals = np.array([prior.score(key, str(texts[j] or "")) for j in _others(row.candidates)])
        greater, ties = int((rivals > gold).sum()), int((rivals == gold).sum())
        ranks[i] = 1 + greater + rng.integers(0, ties + 1)  # a tie is broken by chance
    return ranks


def training_priors(reader, datasets: Sequence[str]) -> dict[str, AnswerPrior]:
    """Each dataset's prior from its own training split, or (an OOD dataset has none) from the training
    splits of its meta-task's in-domain datasets. `reader`: a pipeline.data.mmeb.MMEBReader."""
    infos = {d.name: d for d in reader.datasets()}
    by_task: dict[str, list] = {}
    for info in infos.values():
        if info.has_train:
            by_task.setdefault(info.meta_task, []).extend(reader.train(info.name, cap=None, seed=SEED))
    priors = {}
    for name in datasets:
        info = infos.get(name)
        if info is None:
            continue
        pairs = reader.train(name, cap=None, seed=SEED) if info.has_train else by_task.get(info.meta_task, [])
        priors[name] = AnswerPrior.from_pairs(pairs)
    return priors


def baseline_run(kind: str, rows: pd.DataFrame, priors: dict[str, AnswerPrior] | None = None,
                 seed: int = SEED) -> RunRecord:
    """A 'baseline' run of one kind over the datasets in `rows` (storage.queries.eval_rows); the blind one
    only over datasets with a training prior."""
    scores, ranks = [], []
    for dataset, part in rows.groupby("dataset", sort=True):
        if kind == "chance":
            gold = chance_ranks(part, seed)
        elif priors and dataset in priors:
            gold = blind_ranks(part, priors[dataset], seed)
        else:
            continue
        scores += [ScoreRecord(str(dataset), m, v, len(gold)) for m, v in all_metrics(gold).items()]
        ranks += [RankRecord(str(dataset), int(r), int(g)) for r, g in zip(part["row_idx"], gold, strict=True)]
    model = KINDS[kind]
    return RunRecord(run_id=f"baseline:{kind}", source="baseline", model=model.model, label=model.display_name,
                     experiment="baselines", stage="final", config={"kind": kind, "seed": seed},
                     notes=model.description, scores=scores, ranks=ranks)


def store_baselines(writer: StoreWriter, data_reader=None, seed: int = SEED) -> list[str]:
    """Chance over every dataset with stored eval rows and, given the benchmark's reader (its training
    splits), the blind baseline; replaces earlier ones and stores their intervals."""
    from pipeline.stats.landing import store_intervals

    rows = eval_rows(writer)
    if rows.empty:
        log.info("no stored eval rows: no chance or blind baseline to measure")
        return []
    priors = training_priors(data_reader, sorted(set(rows["dataset"]))) if data_reader is not None else None
    writer.upsert_models(KINDS.values())
    runs = [baseline_run(kind, rows, priors, seed) for kind in KINDS]
    landed = [writer.add_run(run, replace=True) for run in runs if run.scores]
    store_intervals(writer, landed)
    return landed
