"""Live search against a real store: encoders rebuilt from their runs' recipes, exact top-k,
gold items, map placement, unavailable encoders and the `vlmembed search` command."""

from __future__ import annotations

import json
import shutil
import threading

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.search import (
    BoundedCache,
    CandidateIndex,
    EncoderSource,
    Query,
    QueryError,
    RunInfo,
    SearchEngine,
    top_k,
)
from pipeline.search.engine import choose_runs
from storage import StoreReader, StoreWriter

INSTRUCTION = "Identify the colour of the square"


@pytest.fixture(scope="module")
def engine(embedded_store):
    return SearchEngine(StoreReader(embedded_store.path))


def test_top_k_is_exact_and_breaks_ties_by_row():
    rng = np.random.default_rng(0)
    index = CandidateIndex([f"i{n}" for n in range(500)], rng.normal(size=(500, 16)))
    q = rng.normal(size=16).astype(np.float32)
    q /= np.linalg.norm(q)
    scores = index.matrix @ q
    rows, got = top_k(index.matrix, q, 10)
    assert rows.tolist() == np.argsort(-scores, kind="stable")[:10].tolist()
    assert np.allclose(got, np.sort(scores)[::-1][:10])
    tied = np.ones((5, 2), np.float32) / np.sqrt(2)
    assert top_k(tied, tied[0], 3)[0].tolist() == [0, 1, 2]
    assert index.rank(q, index.item_ids[rows[3]]) == 4
    assert top_k(index.matrix, q, 0)[0].size == 0


def test_bounded_cache_stays_under_its_budget_and_builds_once():
    cache = BoundedCache(max_bytes=3000)
    calls = []

    def build(n):
        calls.append(n)
        return np.zeros(1000 // 8)  # 1000 bytes

    threads = [threading.Thread(target=cache.get, args=("a", lambda: build("a"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["a"]
    for key in "bcdef":
        cache.get(key, lambda k=key: build(k))
    assert cache.nbytes <= 3000 and len(cache) == 3 and cache.peek("a") is None


def test_live_encoding_of_a_stored_query_reproduces_its_stored_embedding(embedded_store, engine):
    reader = engine.reader
    row = reader.pairs("Colours").iloc[0]
    query = Query.build(image=embedded_store.eval_image(0), instruction=INSTRUCTION)
    for run in engine.runs():
        loaded = engine.encoders.get(EncoderSource.of_run(run.checkpoint, run.config))
        live = loaded.encode(query.example())
        _, stored = reader.embeddings(run.run_id, [row["query_item"]])
        assert float(live @ stored[0]) == pytest.approx(1.0, abs=1e-4), run.run_id


def test_stored_query_finds_its_gold_item_and_lands_on_every_map(embedded_store, engine):
    query = Query.build(image=embedded_store.eval_image(2), instruction=INSTRUCTION)
    result = engine.search(query, dataset="Colours", k=8)
    pairs = engine.reader.pairs("Colours").set_index("row_idx")
    assert [g["row_idx"] for g in result.gold] == [2] and result.gold[0]["gold_item"] == pairs.loc[2, "gold_item"]
    assert sorted(a.run.run_id for a in result.answers) == sorted(embedded_store.finals)
    for answer in result.answers:
        assert answer.ok, answer.error
        assert len(answer.hits) == 8 and {h.modality for h in answer.hits} == {"text"}  # the 8 colour names
        golds = [h for h in answer.hits if h.gold]
        assert len(golds) == 1 and golds[0].rank == answer.gold_rank
        assert [h.score for h in answer.hits] == sorted((h.score for h in answer.hits), reverse=True)
        assert answer.placement is not None and answer.placement.dataset == "Colours"
        points = engine.map_of(answer.run.run_id, "Colours", answer.placement.method)[0]
        assert points["x"].min() - 1 <= answer.placement.x <= points["x"].max() + 1


def test_each_encoder_loads_once_per_process(engine):
    first = engine.search(Query.build(text="red"), k=3)
    before = engine.encoders.loaded
    pooled = dict(engine.encoders._loaded)
    second = engine.search(Query.build(text="blue"), k=3)
    assert engine.encoders.loaded == before and len(first.answers) == len(second.answers) == 2
    assert dict(engine.encoders._loaded) == pooled  # the same objects, not reloaded


def test_bad_pool_or_run_is_a_query_error(engine):
    with pytest.raises(QueryError, match="unknown candidate pool"):
        engine.search(Query.build(text="red"), dataset="Nope")
    with pytest.raises(QueryError, match="no embeddings stored"):
        engine.search(Query.build(text="red"), run_ids=["nope"])


def test_missing_checkpoint_makes_one_model_unavailable_not_the_search(embedded_store, tmp_path):
    path = tmp_path / "store.duckdb"
    shutil.copy(embedded_store.path, path)
    broken = embedded_store.finals[0]
    with StoreWriter(path) as writer:
        writer.execute("UPDATE runs SET checkpoint = ?, config = NULL WHERE run_id = ?",
                       [str(tmp_path / "gone"), broken])
    result = SearchEngine(StoreReader(path)).search(Query.build(text="green"), k=2)
    by_run = {a.run.run_id: a for a in result.answers}
    assert "unavailable" in by_run[broken].error and "missing" in by_run[broken].error
    assert all(a.ok and len(a.hits) == 2 for r, a in by_run.items() if r != broken)


def test_cli_search_prints_every_models_top_k(embedded_store, capsys):
    assert main(["search", "--store", str(embedded_store.path), "--image", str(embedded_store.eval_image(1)),
                 "--dataset", "Colours", "--k", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["pool"] == "Colours" and out["gold"][0]["row_idx"] == 1
    assert len(out["runs"]) == 2 and all(len(r["hits"]) == 3 for r in out["runs"])
    assert out["query"].startswith("image eval1.png")  # the pool's instruction was used: it is a stored query
    assert main(["search", "--store", str(embedded_store.path), "--text", "red", "--k", "2"]) == 0
    text = capsys.readouterr().out
    assert text.count("== ") == 2 and "+" in text
    assert main(["search", "--store", str(embedded_store.path)]) == 2
    assert "empty query" in capsys.readouterr().err


def test_cli_search_refuses_a_bad_image_in_one_line(embedded_store, tmp_path, capsys):
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    assert main(["search", "--store", str(embedded_store.path), "--image", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "image not usable" in err and "notes.png" in err


def _run(model: str, task: str | None, stage: str = "final") -> RunInfo:
    where = "final" if stage == "final" else f"{stage}-8"
    return RunInfo(f"demo:{model}:{task}:{where}", model, f"{task} {stage}", stage, None, task, "demo", 64, None)


# What `vlmembed demo` stores per model: zero-shot, a checkpoint and a final run per meta-task.
DEMO_RUNS = [_run(m, t, s) for m in ("A", "B") for t in ("classification", "vqa", "retrieval")
             for s in ("zero-shot", "checkpoint", "final")]


@pytest.mark.parametrize("task", ["classification", "vqa", "retrieval"])
def test_a_task_picks_each_models_final_run_trained_on_it(task):
    assert choose_runs(DEMO_RUNS, task) == [f"demo:A:{task}:final", f"demo:B:{task}:final"]


def test_without_task_or_pool_the_choice_is_documented_not_the_last_run():
    assert choose_runs(DEMO_RUNS, None) == ["demo:A:retrieval:final", "demo:B:retrieval:final"]
    assert choose_runs(DEMO_RUNS[::-1], None) == ["demo:B:retrieval:final", "demo:A:retrieval:final"]
    with_all = [*DEMO_RUNS, _run("B", "all")]
    assert choose_runs(with_all, None) == ["demo:A:retrieval:final", "demo:B:all:final"]
    no_retrieval = [r for r in DEMO_RUNS if r.train_task != "retrieval"]
    assert choose_runs(no_retrieval, None) == ["demo:A:classification:final", "demo:B:classification:final"]


def test_a_task_falls_back_to_a_run_trained_on_all_tasks_and_leaves_other_models_out():
    runs = [_run("A", "vqa"), _run("B", "all"), _run("C", "retrieval"), _run("D", "vqa", "checkpoint")]
    assert choose_runs(runs, "vqa") == ["demo:A:vqa:final", "demo:B:all:final"]


def test_engine_task_wins_over_the_pool_and_bad_tasks_are_refused(engine, embedded_store):
    finals = sorted(embedded_store.finals)  # the engine lists models by name
    assert engine.default_runs() == finals  # the toy store trains on classification only
    assert engine.default_runs("Colours") == engine.default_runs(task="classification") == finals
    assert engine.default_runs("Colours", task="vqa") == []
    with pytest.raises(QueryError, match="no model has a final run trained on vqa"):
        engine.search(Query.build(text="red"), dataset="Colours", task="vqa")
    with pytest.raises(QueryError, match="unknown task 'colours'.*classification, vqa, retrieval"):
        engine.default_runs(task="colours")
    result = engine.search(Query.build(text="red"), k=2, task="classification")
    assert [a.run.run_id for a in result.answers] == finals
    assert all(r["train_task"] == "classification" for r in result.to_dict()["runs"])


def test_cli_search_task_chooses_the_runs(embedded_store, capsys):
    store = str(embedded_store.path)
    assert main(["search", "--store", store, "--text", "red", "--k", "2", "--task", "classification", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in out["runs"]] == sorted(embedded_store.finals)
    assert main(["search", "--store", store, "--text", "red", "--task", "vqa"]) == 2
    assert "no model has a final run trained on vqa" in capsys.readouterr().err
    for bad, message in ((["--task", "colours"], "invalid choice: 'colours'"),
                         (["--task", "vqa", "--run", embedded_store.finals[0]], "not allowed with argument")):
        with pytest.raises(SystemExit) as stop:
            main(["search", "--store", store, "--text", "red", *bad])
        assert stop.value.code == 2 and message in capsys.readouterr().err


def test_a_model_with_only_zero_shot_runs_is_searched_with_one_until_its_final_lands():
    """The demo lands every model's zero-shot runs before fine-tuning: the tab searches those meanwhile."""
    early = [_run("A", "vqa"), _run("B", None, "zero-shot"), _run("B", None, "zero-shot")]
    assert choose_runs(early, "vqa") == ["demo:A:vqa:final", "demo:B:None:zero-shot-8"]
    assert choose_runs([*early, _run("B", "retrieval")], "vqa") == ["demo:A:vqa:final"]  # a final of another task


def test_a_saved_search_index_is_loaded_not_rebuilt_even_after_eviction(embedded_store, tmp_path):
    path = tmp_path / "store.duckdb"
    shutil.copy(embedded_store.path, path)
    first = SearchEngine(StoreReader(path))
    answers = first.search(Query.build(text="red"), k=3).answers
    assert first.index_builds == len(answers) == 2
    second = SearchEngine(StoreReader(path))  # another process, or the app after a restart
    second._indexes.max_bytes = 1  # room for one run's index: every other search evicts one
    for _ in range(3):
        again = second.search(Query.build(text="red"), k=3).answers
        assert len(second._indexes) == 1  # the byte bound holds: the older run's index was dropped
    assert second.index_builds == 0
    assert [[h.item_id for h in a.hits] for a in again] == [[h.item_id for h in a.hits] for a in answers]
    ids, vecs = second.reader.embeddings(answers[0].run.run_id, second.pool(None))
    brute = CandidateIndex(ids, vecs).search(np.asarray(second.encoders.get(
        EncoderSource.of_run(answers[0].run.checkpoint, answers[0].run.config)).encode(
            Query.build(text="red").example())), 3)
    assert [i for i, _ in brute] == [h.item_id for h in again[0].hits]


def test_saved_indexes_of_runs_gone_from_the_store_are_removed(embedded_store, tmp_path):
    path = tmp_path / "store.duckdb"
    shutil.copy(embedded_store.path, path)
    engine = SearchEngine(StoreReader(path))
    answers = engine.search(Query.build(text="red"), k=3).answers
    folder = engine.index_folder()
    kept, dropped = (a.run for a in answers)
    in_progress = folder / f"{kept.index_name}.tmp-999999"  # another process's save, not yet renamed
    in_progress.mkdir()
    assert {p.name for p in folder.iterdir()} == {kept.index_name, dropped.index_name, in_progress.name}
    writer = StoreWriter(path)
    writer.delete_run(dropped.run_id)
    writer.publish()
    again = engine.search(Query.build(text="red"), k=3).answers  # the engine sees the new version
    assert [a.run.run_id for a in again] == [kept.run_id]
    assert {p.name for p in folder.iterdir()} == {kept.index_name, in_progress.name}
    assert engine.index_builds == 2  # the kept run's index was not rebuilt
