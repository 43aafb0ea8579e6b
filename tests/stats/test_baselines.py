"""Baselines: chance is uniform, the blind prior reads only the question, both land as 'baseline' runs."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from pipeline.stats.baselines import (
    AnswerPrior,
    baseline_run,
    blind_ranks,
    chance_ranks,
    question_key,
    store_baselines,
)
from storage import DatasetRecord, DatasetRow, ItemRecord, StoreReader, StoreWriter


def _rows(questions: list[str], answers: list[str], vocabulary: list[str]) -> pd.DataFrame:
    """Eval rows whose candidates are the gold answer first, then the rest of the vocabulary."""
    cands = [[a, *[v for v in vocabulary if v != a]] for a in answers]
    return pd.DataFrame({"dataset": "vqa", "row_idx": range(len(questions)), "query_instruction": "Answer:",
                         "query_text": questions, "candidates": [[f"id:{c}" for c in cs] for cs in cands],
                         "candidate_texts": cands})


def test_chance_ranks_are_uniform_over_each_rows_candidates():
    rows = _rows(["q"] * 4000, ["a"] * 4000, ["a", "b", "c", "d"])
    ranks = chance_ranks(rows)
    assert set(ranks) == {1, 2, 3, 4}
    assert abs((ranks == 1).mean() - 0.25) < 0.03  # 4000 draws: sd 0.007
    assert (ranks == chance_ranks(rows)).all()  # seeded


def _pair(question: str, answer: str):
    return SimpleNamespace(query=SimpleNamespace(instruction="Answer:", text=question),
                           positive=SimpleNamespace(text=answer))


def test_blind_prior_ranks_by_answer_type_given_the_question():
    # training: "how many" is answered by numbers, "what colour" by colours
    prior = AnswerPrior.from_pairs([_pair("How many squares?", n) for n in ("1", "2", "3")]
                                   + [_pair("What colour is the square?", c) for c in ("red", "blue")])
    assert question_key("", "How many 3 red squares") == "how many" and question_key("", "3 squares") == "# squares"
    assert question_key("", None) == question_key("", float("nan")) == ""  # an image-only query
    vocabulary = ["1", "2", "3", "red", "blue", "green"]
    rows = _rows(["How many circles?"] * 300 + ["What colour is the circle?"] * 300, ["2"] * 300 + ["red"] * 300,
                 vocabulary)
    ranks = blind_ranks(rows, prior)
    # the gold ties with its type's other seen answers (3 numbers, 2 colours): rank uniform among them
    assert set(ranks[:300]) == {1, 2, 3} and set(ranks[300:]) == {1, 2}
    assert abs((ranks[:300] == 1).mean() - 1 / 3) < 0.08 and abs((ranks[300:] == 1).mean() - 1 / 2) < 0.08
    unseen = blind_ranks(_rows(["Why?"] * 50, ["green"] * 50, vocabulary), prior)
    assert (unseen > 1).all()  # never a training answer: the back-off ranks it behind every seen one


def test_baselines_land_as_runs_with_ranks_and_intervals(tmp_path):
    path = tmp_path / "store.duckdb"
    vocabulary = ["1", "2", "red"]
    with StoreWriter(path) as writer:
        writer.upsert_datasets([DatasetRecord("vqa", "builtin", "vqa", True)])
        writer.add_items([ItemRecord("q", "text", "Answer:", "How many?")]
                         + [ItemRecord(f"id:{v}", "text", text=v) for v in vocabulary])
        writer.set_dataset_rows("vqa", [DatasetRow("vqa", i, "q", ("id:1", "id:2", "id:red")) for i in range(20)])
        reader = SimpleNamespace(datasets=lambda: [SimpleNamespace(name="vqa", meta_task="vqa", has_train=True)],
                                 train=lambda name, cap, seed: [_pair("How many?", "1")] * 3)
        landed = store_baselines(writer, reader)
    assert landed == ["baseline:chance", "baseline:blind"]
    store = StoreReader(path)
    scores = store.scores(sources=["baseline"]).set_index("run_id")["value"]
    assert scores["baseline:blind"] == 100.0  # "1" is the only answer training ever gave to "how many"
    assert 0 < scores["baseline:chance"] < 100
    intervals = store._frame("SELECT run_id, method FROM v_intervals WHERE scope = 'dataset'")
    assert set(intervals["run_id"]) == set(landed) and set(intervals["method"]) == {"bootstrap"}


def test_blind_run_skips_datasets_without_a_prior():
    rows = _rows(["q"] * 5, ["a"] * 5, ["a", "b"])
    assert baseline_run("blind", rows, priors={}).scores == []
    assert len(baseline_run("chance", rows).ranks) == 5
    with pytest.raises(KeyError):
        baseline_run("oracle", rows)
