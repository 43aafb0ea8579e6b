"""The built-in text-to-text task (meta-task 'text'): SceneParaphrase."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.data.builtin.build import BuildConfig, SizePlan, build_benchmark
from pipeline.data.builtin.extend import add_missing_datasets
from pipeline.data.builtin.scenes import Obj, Scene
from pipeline.data.builtin.specs import BUILTIN_DATASETS
from pipeline.data.builtin.text import HARD_NEGATIVES, paraphrase
from pipeline.data.catalog import select
from pipeline.data.mmeb import MMEBReader
from storage.vocabulary import META_TASKS, TEXT_META_TASK

PLAN = SizePlan(n_train=4, n_eval=60, n_captions=4)


def build(out: Path) -> Path:
    build_benchmark(BuildConfig(out=out, seed=0, only=("SceneParaphrase",), plan=PLAN, progress=False))
    return out


def test_the_text_task_is_registered_as_text_only_and_evaluation_only() -> None:
    info = BUILTIN_DATASETS["SceneParaphrase"]
    assert info.meta_task == TEXT_META_TASK and TEXT_META_TASK not in META_TASKS
    assert (info.query_modality, info.target_modality, info.in_domain, info.has_train) == ("T", "T", False, False)
    assert [d.name for d in select("builtin:text")] == ["SceneParaphrase"]
    assert "SceneParaphrase" not in {d.name for d in select("builtin:retrieval")}


def test_it_builds_deterministically_with_expected_counts_and_no_duplicates(tmp_path) -> None:
    first, second = build(tmp_path / "a"), build(tmp_path / "b")
    table = pq.read_table(first / "eval" / "SceneParaphrase.parquet")
    assert table.equals(pq.read_table(second / "eval" / "SceneParaphrase.parquet"))
    rows = MMEBReader(first).eval("SceneParaphrase", limit=None, seed=0)
    assert len(rows) == PLAN.n_eval
    queries = [r.query.text for r in rows]
    assert len(set(queries)) == len(queries)
    for row in rows:
        texts = [c.text for c in row.candidates]
        assert len(texts) == 50 and len(set(texts)) == 50
        assert all(c.image is None for c in row.candidates) and row.query.image is None
    manifest = json.loads((first / "manifest.json").read_text())
    assert manifest["datasets"][0]["meta_task"] == "text" and manifest["datasets"][0]["n_eval"] == PLAN.n_eval


def test_the_gold_states_the_query_facts_and_hard_negatives_change_one() -> None:
    scene = Scene((Obj("circle", "red", "large", 0), Obj("star", "blue", "small", 4)))
    assert scene.describe() == "a large red circle at the top left and a small blue star in the center"
    assert paraphrase(scene) == "In the middle there is a little blue star; in the upper left corner, a big red circle."


def test_each_row_holds_the_paraphrase_first_and_its_variants(tmp_path) -> None:
    rows = MMEBReader(build(tmp_path / "b")).eval("SceneParaphrase", limit=None, seed=0)
    for row in rows[:10]:
        gold, *rest = [c.text for c in row.candidates]
        colours_and_shapes = lambda t: sorted(w for w in t.replace(";", " ").replace(".", " ").replace(",", " ").split()  # noqa: E731
                                              if w in {"red", "blue", "green", "circle", "star", "square"})
        assert colours_and_shapes(gold) == colours_and_shapes(row.query.text)
        near = sum(len(t.split(";")) == len(gold.split(";")) for t in rest[:HARD_NEGATIVES])
        assert near == HARD_NEGATIVES  # the variants keep the number of objects


def test_a_benchmark_built_before_the_text_task_gains_it_in_place(tmp_path) -> None:
    out = build(tmp_path / "bench")
    manifest_path = out / "manifest.json"
    fresh = json.loads(manifest_path.read_text())
    reference = pq.read_table(out / "eval" / "SceneParaphrase.parquet")
    old = dict(fresh, datasets=[], files={})  # as if built before SceneParaphrase existed
    manifest_path.write_text(json.dumps(old))
    (out / "eval" / "SceneParaphrase.parquet").unlink()
    assert add_missing_datasets(out, ["SceneParaphrase"]) == ["SceneParaphrase"]
    assert pq.read_table(out / "eval" / "SceneParaphrase.parquet").equals(reference)
    assert json.loads(manifest_path.read_text())["datasets"] == fresh["datasets"]
    assert add_missing_datasets(out, ["SceneParaphrase"]) == []  # already there: nothing to do


def test_a_dataset_with_images_is_not_added_in_place(tmp_path) -> None:
    out = build(tmp_path / "bench")
    with pytest.raises(ValueError, match="rebuild the benchmark"):
        add_missing_datasets(out, ["SceneT2I"])
