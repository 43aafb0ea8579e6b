"""VLM2Vec's published MMEB numbers: the data file the Data scale tab draws as a reference level."""

from __future__ import annotations

import pytest

from storage.reference import REFERENCE_LABEL, vlm2vec_data, vlm2vec_reference
from storage.vocabulary import META_TASKS


def test_the_file_cites_the_paper_and_its_table_and_says_it_is_a_deviation():
    data = vlm2vec_data()
    assert "arXiv:2410.05160" in data["source"] and "Table 2" in data["source"]
    assert "not a comparable point" in data["deviation"]
    assert data["reference"] in {r["backbone"] for r in data["rows"]}


def test_the_published_numbers_per_meta_task():
    rows = {r["backbone"]: r for r in vlm2vec_data()["rows"]}
    high = rows["LLaVA-1.6 HR"]
    assert (high["classification"], high["vqa"], high["retrieval"], high["grounding"]) == (61.2, 49.9, 67.4, 86.1)
    assert (high["in_domain"], high["ood"], high["overall"]) == (67.5, 57.1, 62.9)
    assert (rows["Phi-3.5-V"]["classification"], rows["Phi-3.5-V"]["overall"]) == (54.8, 60.1)
    for row in rows.values():  # the overall average lies between the meta-task averages it is made of
        tasks = [row[t] for t in ("classification", "vqa", "retrieval", "grounding")]
        assert min(tasks) <= row["overall"] <= max(tasks)


def test_the_reference_frame_has_every_meta_task_this_project_evaluates():
    frame = vlm2vec_reference()
    assert frame["meta_task"].tolist() == list(META_TASKS)
    assert frame["label"].str.startswith(REFERENCE_LABEL).all() and frame["source"].str.contains("VLM2Vec").all()
    assert vlm2vec_reference("Phi-3.5-V")["value"].tolist()[:2] == [54.8, 54.9]


def test_an_unknown_backbone_names_the_ones_there_are():
    with pytest.raises(ValueError, match="no VLM2Vec row for backbone 'Qwen'.*LLaVA-1.6 HR"):
        vlm2vec_reference("Qwen")
