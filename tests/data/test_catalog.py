from pathlib import Path

import pytest

from pipeline.data.catalog import select
from pipeline.data.dataset_info import DatasetInfo
from pipeline.data.mmeb_catalog import MMEB_DATASETS, PAPER32, TRAIN_CAP, UnknownDatasetError, mmeb_info

TABLE5 = Path(__file__).parent / "fixtures" / "paper_table5.tsv"
TASKS = {"Classification": "classification", "VQA": "vqa", "Retrieval": "retrieval"}


def _table5() -> list[dict]:
    rows, task = [], None
    lines = [ln for ln in TABLE5.read_text().splitlines() if ln and not ln.startswith("#")]
    for line in lines[1:]:
        cells = line.split("\t")
        task = TASKS.get(cells[0], task)
        name, query, target, ood, n_train, n_eval, n_cand = cells[1:8]
        rows.append({"name": name, "task": task, "query": query, "target": target, "ood": ood == "✓",
                     "n_train": 0 if n_train == "-" else int(n_train.rstrip("K")) * 1000,
                     "n_eval": int(n_eval), "n_cand": int(n_cand)})
    return rows


def test_paper32_is_table5_row_for_row():
    table = _table5()
    assert len(table) == 32
    chosen = select("paper32")
    for row, info in zip(table, chosen, strict=True):
        assert (info.paper_name or info.name) == row["name"]
        assert info.meta_task == row["task"], row["name"]
        assert info.in_domain == (not row["ood"]), row["name"]
        assert info.n_train == row["n_train"], row["name"]
        assert info.n_eval == row["n_eval"], row["name"]
        assert info.n_candidates == row["n_cand"], row["name"]
        assert info.query_modality == row["query"], row["name"]
        if row["name"] == "N24News":  # the one documented deviation: MMEB's candidates are text labels
            assert row["target"] == "I" and info.target_modality == "T" and "Table 5" in info.notes
        else:
            assert info.target_modality == row["target"], row["name"]


def test_paper_training_totals_per_meta_task():
    # Section 4 of the paper: 76k classification, 106k VQA, 153k retrieval pairs after the 20K cap.
    totals = {t: sum(d.n_train for d in select(f"paper32:{t}")) for t in ("classification", "vqa", "retrieval")}
    assert totals == {"classification": 76_000, "vqa": 106_000, "retrieval": 153_000}
    assert max(d.n_train for d in select("paper32")) == TRAIN_CAP
    assert len(select("paper32:id")) == 19 and len(select("paper32:ood")) == 13


def test_mmeb36_has_four_grounding_datasets_and_every_instruction():
    assert len(MMEB_DATASETS) == 36 and len(PAPER32) == 32
    assert {d.name for d in select("mmeb36:grounding")} == {"MSCOCO", "RefCOCO", "RefCOCO-Matching", "Visual7W-Pointing"}
    assert all(d.instruction for d in MMEB_DATASETS.values())
    # 20 in-domain subsets, as MMEB-train has
    assert len([d for d in MMEB_DATASETS.values() if d.in_domain]) == 20


def test_lookup_by_train_subset_and_paper_names():
    assert mmeb_info("ImageNet_1K").name == "ImageNet-1K"
    assert mmeb_info("Country-211").name == "Country211"
    assert mmeb_info("VisualNews.t2i").name == "VisualNews_t2i"
    with pytest.raises(UnknownDatasetError, match="did you mean"):
        mmeb_info("ImageNet1K")


def test_builtin_selections_come_from_the_static_specs():
    builtin = select("builtin")
    assert builtin and all(d.benchmark == "builtin" and d.role == "benchmark" for d in builtin)
    assert {d.meta_task for d in builtin} == {"classification", "vqa", "retrieval", "text"}  # text: text-only task
    assert select("builtin:vqa:ood") and all(d.meta_task == "vqa" and not d.in_domain for d in select("builtin:vqa:ood"))
    with pytest.raises(UnknownDatasetError):
        select("paper33")
    with pytest.raises(UnknownDatasetError):
        select("paper32:detection")


@pytest.mark.parametrize("bad", [
    {"meta_task": "detection"},
    {"query_modality": "V"},
    {"in_domain": False, "n_train": 100},
    {"n_eval": -1},
    {"name": "a/b"},
])
def test_dataset_info_rejects_bad_records(bad):
    good = dict(name="X", benchmark="builtin", meta_task="vqa", query_modality="I+T", target_modality="T",
                in_domain=True, n_train=10, n_eval=5, n_candidates=3, instruction="Answer:")
    with pytest.raises(ValueError):
        DatasetInfo(**{**good, **bad})
    assert DatasetInfo.from_dict({**DatasetInfo(**good).to_dict(), "unknown_key": 1}) == DatasetInfo(**good)
