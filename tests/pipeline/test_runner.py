"""End to end on the CPU: a tiny model learns, every evaluation lands as one whole run,
re-running skips what is stored."""

from __future__ import annotations

import pytest

from pipeline.experiment import DataEntry, Experiment, ModelEntry
from pipeline.runner import ExperimentRunner
from pipeline.train.config import TrainConfig
from storage import StoreReader
from tests.pipeline.toy_benchmark import write_toy_benchmark

CHANCE = 100 / 8


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory):
    return write_toy_benchmark(tmp_path_factory.mktemp("toy"))


def _experiment(root, tmp_path, **train) -> Experiment:
    config = dict(global_batch_size=16, chunk_size=8, learning_rate=1e-3, epochs=6, warmup_ratio=0.0,
                  checkpoint_samples=(64,), seed=0)
    config.update(train)
    return Experiment(
        name="toy", source="pipeline", meta_tasks=("classification",), zero_shot=True,
        models=(ModelEntry(name="tiny llava", family="llava_next", base="random:tiny:0"),),
        data=DataEntry(root=str(root), selection="builtin"), train=TrainConfig.from_dict(config),
        output_dir=str(tmp_path / "runs"), eval_batch_size=16,
    )


@pytest.mark.slow
def test_tiny_run_learns_and_lands_whole_runs(toy_root, tmp_path):
    store = tmp_path / "store.duckdb"
    landed = ExperimentRunner(_experiment(toy_root, tmp_path), store).run()
    assert [r.rsplit(":", 1)[1] for r in landed] == ["zero-shot-0", "checkpoint-64", "final"]
    reader = StoreReader(store)
    runs = reader.runs()
    assert len(runs) == 3 and set(runs["status"]) == {"complete"}
    scores = reader.scores()
    p1 = {(r.stage, r.dataset): r.value for r in scores.itertuples()}
    before, after = p1[("zero-shot", "Colours")], p1[("final", "Colours")]
    assert after >= before + 25, (before, after)
    assert after >= CHANCE + 25, after
    # every metric, per-query ranks, the training log and the embeddings of every item landed
    assert set(reader.metrics()) == {"precision@1", "recall@5", "mrr", "ndcg@5"}
    final_id = landed[-1]
    ranks = reader._frame("SELECT count(*) AS n FROM ranks WHERE run_id = ?", [final_id])["n"][0]
    assert ranks == 32  # 16 queries in each of the two datasets
    # each landed run brings its bootstrap intervals: 2 datasets, and the meta-task average (all, in-domain, OOD)
    from storage.intervals import read_intervals

    intervals = read_intervals(reader, [final_id], "precision@1")
    assert set(intervals["method"]) == {"bootstrap"} and len(intervals) == 2 + 3
    final_p1 = scores.query("run_id == @final_id").set_index("dataset")["value"]
    by_dataset = intervals.dropna(subset=["dataset"]).set_index("dataset")
    assert (by_dataset["value"] - final_p1).abs().max() < 1e-9
    assert ((by_dataset["lower"] <= by_dataset["value"]) & (by_dataset["value"] <= by_dataset["upper"])).all()
    log = reader.train_log([final_id])
    assert len(log) == 24 and log["samples"].max() == 384
    ids, vecs = reader.embeddings(final_id)
    assert len(ids) == reader.summary()["items"] and vecs.shape[1] == 64
    # the checkpoint recorded with the run rebuilds the model that produced its embeddings
    from pipeline.models.recipe import load_encoder

    checkpoint = runs.set_index("run_id").loc[final_id, "checkpoint"]
    encoder = load_encoder(checkpoint)
    items = reader.items(ids[:3], with_thumbnails=False)
    assert len(items) == 3 and encoder.spec.name == "llava_next"

    # Running the same grid again finds everything stored and does nothing.
    assert ExperimentRunner(_experiment(toy_root, tmp_path), store).run() == []


def test_experiment_toml_round_trip_and_validation(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text("""
name = "x"
meta_tasks = ["vqa"]
[train]
global_batch_size = 8
checkpoint_samples = [16, 8]
[[models]]
name = "a"
family = "lavida"
""")
    exp = Experiment.from_toml(path)
    assert exp.train.checkpoint_samples == (8, 16) and exp.models[0].family == "lavida"
    path.write_text('name = "x"\n[[models]]\nname = "a"\nfamily = "lavidda"\n')
    with pytest.raises(Exception, match="lavida"):
        Experiment.from_toml(path)
    path.write_text('name = "x"\n[train]\nbatch = 3\n[[models]]\nname = "a"\nfamily = "lavida"\n')
    with pytest.raises(ValueError, match="unknown training options"):
        Experiment.from_toml(path)
    path.write_text("name = \n")
    with pytest.raises(ValueError, match="not valid TOML"):
        Experiment.from_toml(path)


def test_eval_limit_by_task_overrides_the_eval_limit_for_its_meta_task(toy_root, tmp_path):
    from pipeline.data.mmeb import MMEBReader
    from pipeline.runner import load_task_data

    reader = MMEBReader(toy_root)
    counts = {name: len(rows) for name, (_, rows) in
              load_task_data(reader, DataEntry(root=str(toy_root), eval_limit=4), "classification").evals.items()}
    assert set(counts.values()) == {4} and len(counts) == 2
    data = DataEntry(root=str(toy_root), eval_limit=4, eval_limit_by_task={"classification": 8})
    assert data.eval_limit_for("classification") == 8 and data.eval_limit_for("retrieval") == 4
    assert {len(rows) for _, rows in load_task_data(reader, data, "classification").evals.values()} == {8}

    path = tmp_path / "exp.toml"
    toml = 'name = "x"\n[data]\neval_limit = 20\n[data.eval_limit_by_task]\n{}\n[[models]]\nname = "a"\nfamily = "lavida"\n'
    path.write_text(toml.format("classification = 100"))
    assert Experiment.from_toml(path).data.eval_limit_for("classification") == 100
    path.write_text(toml.format("retrieval = 0"))
    with pytest.raises(ValueError, match="eval_limit_by_task.retrieval must be a positive number"):
        Experiment.from_toml(path)
    path.write_text(toml.format("captioning = 10"))
    with pytest.raises(ValueError, match="unknown meta-tasks"):
        Experiment.from_toml(path)


@pytest.mark.parametrize("progress", [False, True])
def test_progress_flag_reaches_the_trainer_and_evaluator_bars(toy_root, tmp_path, capfd, caplog, progress):
    """Without progress no tqdm line reaches stderr (a log file stays readable), yet each training
    and each landed run is still logged; with progress the bars are there."""
    import dataclasses
    import logging

    exp = dataclasses.replace(_experiment(toy_root, tmp_path, max_steps=1, checkpoint_samples=()), zero_shot=False)
    capfd.readouterr()
    with caplog.at_level(logging.INFO, logger="pipeline.runner"):
        landed = ExperimentRunner(exp, tmp_path / "store.duckdb", progress=progress).run()
    err = capfd.readouterr().err
    assert [r.rsplit(":", 1)[1] for r in landed] == ["final"]
    bars = ("train:" in err, "encode llava_next" in err)
    assert bars == ((True, True) if progress else (False, False)), err[-500:]
    if not progress:
        assert "\r" not in err
    from transformers.utils import logging as hf_logging

    assert hf_logging.is_progress_bar_enabled()  # the library's own bars are switched back on afterwards
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("trained tiny llava on classification: 1 steps, 16 samples") for m in messages)
    assert any(m.startswith(f"stored {landed[0]} ") for m in messages)


def test_a_new_store_does_not_resume_from_another_stores_checkpoints(toy_root, tmp_path, monkeypatch):
    """Checkpoints left in the run directory by a run landed in another store (or by another
    configuration) must not make this store skip the data-scale run; a run interrupted in
    this store resumes."""
    from pipeline.train.trainer import ContrastiveTrainer

    exp = _experiment(toy_root, tmp_path, epochs=1, checkpoint_samples=(16,))
    first = ExperimentRunner(exp, tmp_path / "a.duckdb").run()
    assert [r.rsplit(":", 1)[1] for r in first] == ["zero-shot-0", "checkpoint-16", "final"]
    again = ExperimentRunner(exp, tmp_path / "b.duckdb").run()
    assert [r.rsplit(":", 1)[1] for r in again] == ["zero-shot-0", "checkpoint-16", "final"]

    starts = []
    real_train = ContrastiveTrainer.train

    def record_start(self, *args, **kwargs):
        from pipeline.train.checkpointing import latest_checkpoint

        latest = latest_checkpoint(self.output_dir)
        starts.append(latest.step if latest else 0)
        return real_train(self, *args, **kwargs)

    monkeypatch.setattr(ContrastiveTrainer, "train", record_start)
    store_c = tmp_path / "c.duckdb"
    ExperimentRunner(exp, store_c).run()  # checkpoints of store b: started afresh
    from storage import StoreWriter

    with StoreWriter(store_c) as writer:  # as if killed after its last checkpoint, before landing
        writer.delete_run(first[-1])
    resumed = ExperimentRunner(exp, store_c).run()  # same store, this configuration's runs stored: resumes
    assert starts == [0, 4] and [r.rsplit(":", 1)[1] for r in resumed] == ["final"]
