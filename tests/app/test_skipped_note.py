"""The dashboard names the datasets a shown run skipped (its stored notes), and only for its source."""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict

import pandas as pd

from app.tables import skipped_data_note
from app.tabs.overview import overview_view

NOTE = "skipped (absent here): GQA eval, TextVQA eval"


def test_skipped_data_note_groups_cells_by_note():
    runs = pd.DataFrame({
        "source": ["pipeline", "pipeline", "pipeline", "paper"],
        "model": ["LLaVA-1.6", "LaViDa", "MMaDA", "LLaVA-1.6"],
        "train_task": ["vqa", "vqa", None, None],
        "notes": [NOTE, NOTE, None, "Table 1 as printed"],
    })
    assert skipped_data_note(runs, ["pipeline"]) == f"**Data skipped** (LLaVA-1.6 on vqa, LaViDa on vqa): {NOTE}"
    assert skipped_data_note(runs, ["paper"]) == ""  # a paper note is not about skipped data
    assert skipped_data_note(pd.DataFrame(), ["pipeline"]) == ""


def test_overview_shows_the_note_of_the_source_it_shows(snapshot):
    runs = snapshot.runs.copy()
    pipeline = runs.index[runs["source"] == "pipeline"]
    assert len(pipeline)
    runs.loc[pipeline[0], "notes"] = NOTE
    snap = dataclasses.replace(snapshot, runs=runs, _memo=OrderedDict(), _memo_lock=threading.Lock())
    assert NOTE in overview_view(snap, "pipeline")[0] and "**Data skipped**" in overview_view(snap, "compare")[0]
    assert NOTE not in overview_view(snap, "paper")[0]
