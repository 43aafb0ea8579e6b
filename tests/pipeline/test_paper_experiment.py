"""experiments/paper.toml is the paper's grid with the paper's hyperparameters (nothing downloaded).

The paper's numbers are read from storage/data/paper_results.json, transcribed from the paper
independently of the TOML, so a typo on either side fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.data.catalog import select
from pipeline.data.mmeb_catalog import MMEB_DATASETS
from pipeline.experiment import Experiment, ModelEntry
from pipeline.models.registry import get_family

ROOT = Path(__file__).resolve().parents[2]
PAPER = json.loads((ROOT / "storage" / "data" / "paper_results.json").read_text())
TRAINING = PAPER["training"]


@pytest.fixture(scope="module")
def paper() -> Experiment:
    return Experiment.from_toml(ROOT / "experiments" / "paper.toml")


def test_grid_is_four_models_by_three_meta_tasks_plus_the_table4_ablation(paper):
    grid = [(task, m.name, m.variant) for task, m in paper.grid()]
    models = [m["model"] for m in PAPER["models"]]
    main = [(t, n, "default") for t in ("classification", "vqa", "retrieval") for n in models]
    assert sorted(g for g in grid if g[2] == "default") == sorted(main)
    assert [g for g in grid if g[2] != "default"] == [("vqa", "MMaDA", "vision-unfrozen")]  # Table 4: VQA only
    assert len(grid) == 13


def test_every_model_is_a_registered_family_with_its_published_checkpoint(paper):
    families = {m["model"]: m["family"] for m in PAPER["models"]}
    for entry in paper.models:
        spec = get_family(entry.family).spec
        assert entry.family == families[entry.name]
        assert entry.base == spec.hub_id, f"{entry.name}: {entry.base} is not the id {spec.name} documents"
        assert entry.dtype == "bf16" and entry.scale == "published"
        assert entry.options == {}  # pooling and attention: the family's own, as the paper states
        assert (spec.pooling, spec.attention) == ({"autoregressive": ("eos", "causal"),
                                                   "diffusion": ("mean", "bidirectional")}[spec.paradigm])


def test_ablation_trains_mmadas_vision_tower_and_nothing_else_does(paper):
    unfrozen = [m for m in paper.models if m.train_vision]
    assert [(m.name, m.family, m.variant) for m in unfrozen] == [("MMaDA", "mmada", "vision-unfrozen")]
    assert paper.train.lora is not None and not paper.train.lora.train_vision
    default = next(m for m in paper.models if m.name == "MMaDA" and m.variant == "default")
    assert default.base == unfrozen[0].base


def test_selection_is_table5_row_for_row(paper):
    assert paper.data.selection == "paper32"
    for task in paper.meta_tasks:
        chosen = select(f"{paper.data.selection}:{task}")
        assert all(d.name in MMEB_DATASETS for d in chosen)
        expected = {d["dataset"]: not d["ood"] for d in PAPER["datasets"] if d["meta_task"] == task}
        aliases = PAPER["dataset_aliases"]
        named = {aliases.get(d.paper_name or d.name, d.paper_name or d.name): d.in_domain for d in chosen}
        assert named == expected
        capped = sum(min(d.n_train, paper.data.train_cap) for d in chosen if d.in_domain)
        assert capped == TRAINING["train_samples"][task]  # Sec. 4.3: 76k / 106k / 153k
    assert (len(select("paper32:id")), len(select("paper32:ood"))) == (19, 13)
    assert paper.data.train_cap == TRAINING["cap_per_dataset"] and paper.data.eval_limit is None


def test_hyperparameters_are_the_papers(paper):
    for task in paper.meta_tasks:
        train = paper.train_for(task)
        assert train.temperature == TRAINING["temperature"]
        assert train.global_batch_size == TRAINING["batch_size"] and train.uses_gradcache
        assert train.lora is not None and train.lora.r == TRAINING["lora_rank"]
        assert train.max_steps == TRAINING["steps"][task]
        # Appendix C: "approximately one epoch" (the paper's steps over-run the capped sets by < 10 %)
        assert 1.0 <= train.max_steps * train.global_batch_size / TRAINING["train_samples"][task] < 1.1
        assert train.bf16 and train.hard_negatives == 1 and train.learning_rate == 2e-5
    assert not paper.zero_shot and paper.store_embeddings == "pairs"
    configs = {task: paper.train_for(task).to_dict() for task in paper.meta_tasks}
    assert len({json.dumps(c, sort_keys=True, default=str) for c in configs.values()}) == 3


def test_data_scale_points_include_figure4s_and_fit_every_run(paper):
    points = paper.train.checkpoint_samples
    batch = paper.train.global_batch_size
    assert all(p % batch == 0 for p in points)  # each point is a whole step
    assert round(points[0] / 1000) == 13  # Figure 4's early "13k"
    assert round(paper.train_for("retrieval").max_steps * batch / 1000) == 166  # Figure 4's "166k" = final
    for task in paper.meta_tasks:
        inside = [p for p in points if p // batch <= paper.train_for(task).max_steps]
        assert len(inside) >= 3, f"{task}: too few data-scale points for a curve"


# -- the format features paper.toml relies on ---------------------------------------------------------
def _exp(**kw) -> Experiment:
    models = kw.pop("models", [{"name": "a", "family": "lavida"}])
    return Experiment.from_dict({"name": "x", "models": models, **kw})


def test_train_by_task_overrides_one_task_only():
    exp = _exp(train={"learning_rate": 1e-3}, train_by_task={"vqa": {"max_steps": 7, "checkpoint_samples": [4, 2]}})
    assert exp.train_for("vqa").max_steps == 7 and exp.train_for("vqa").checkpoint_samples == (2, 4)
    assert exp.train_for("vqa").learning_rate == 1e-3
    assert exp.train_for("retrieval") == exp.train


@pytest.mark.parametrize("by_task, message", [
    ({"detection": {"max_steps": 1}}, "not a meta-task"),
    ({"vqa": {"steps": 1}}, "unknown training options"),
    ({"vqa": {"max_steps": 0}}, "max_steps must be positive"),
    ({"vqa": {"lora": {"r": 4}}}, "per experiment"),
    ({"vqa": 450}, "tables of training options"),
])
def test_bad_train_by_task_is_refused_at_load(by_task, message):
    with pytest.raises(ValueError, match=message):
        _exp(train_by_task=by_task)


def test_model_meta_tasks_restrict_the_grid_and_are_checked():
    exp = _exp(meta_tasks=["vqa", "retrieval"],
               models=[{"name": "a", "family": "lavida"}, {"name": "b", "family": "mmada", "meta_tasks": ["vqa"]}])
    assert [(t, m.name) for t, m in exp.grid()] == [("vqa", "a"), ("vqa", "b"), ("retrieval", "a")]
    with pytest.raises(ValueError, match="does not run"):
        _exp(meta_tasks=["vqa"], models=[{"name": "b", "family": "mmada", "meta_tasks": ["retrieval"]}])
    with pytest.raises(ValueError, match="non-empty subset"):
        ModelEntry(name="b", family="mmada", meta_tasks=("grounding",))
    with pytest.raises(ValueError, match="non-empty subset"):
        ModelEntry(name="b", family="mmada", meta_tasks=())


@pytest.mark.parametrize("order", [1, -1])
def test_table4_ablation_and_main_mmada_keep_their_own_model_records(paper, tmp_path, order):
    """Whichever MMaDA entry the runner writes last, each variant's record keeps its own flag."""
    from pipeline.results import model_record
    from storage import StoreReader, StoreWriter
    from storage.paper_import import import_paper
    from storage.records import VISION_FROZEN, VISION_TRAINED

    path = tmp_path / "store.duckdb"
    with StoreWriter(path) as writer:
        import_paper(writer)
        for entry in paper.models[::order]:
            writer.upsert_models([model_record(entry)])
    reader = StoreReader(path)
    models = reader.models()
    mmada = models[models["model"] == "MMaDA"].set_index("variant")
    assert mmada["vision_update"].to_dict() == {"default": VISION_FROZEN, "vision-unfrozen": VISION_TRAINED}
    assert len(models) == 5  # four models, one of them with an ablation variant
    paper_table4 = reader._frame("SELECT count(*) AS n FROM v_scores WHERE variant = 'vision-unfrozen'")["n"][0]
    assert paper_table4 == 10  # the paper's Table 4 run still joins its record
    reader.close()


def test_pipeline_runs_line_up_with_every_paper_row_without_aliases(tmp_path):
    """A pipeline run over the paper's 32 datasets is stored under the names the paper import
    uses, so the dashboard's paper-vs-reproduced delta covers all 32 (no alias applied here)."""
    import pandas as pd

    from app.tables import add_series, delta_table
    from pipeline.results import dataset_record, store_dataset_name
    from storage import RunRecord, ScoreRecord, StoreReader, StoreWriter
    from storage.paper_import import import_paper

    chosen = select("paper32")
    assert len(chosen) == 32
    path = tmp_path / "store.duckdb"
    with StoreWriter(path) as writer:
        import_paper(writer)
        writer.upsert_datasets([dataset_record(d) for d in chosen])
        for task in ("classification", "vqa", "retrieval"):
            writer.add_run(RunRecord(
                run_id=f"mine:{task}", source="pipeline", model="LLaVA-1.6", label="final", train_task=task,
                scores=[ScoreRecord(store_dataset_name(d), "precision@1", 50.0, n_queries=1000)
                        for d in chosen if d.meta_task == task]))
    scores = add_series(StoreReader(path).scores())
    paper = scores[(scores["source"] == "paper") & (scores["model"] == "LLaVA-1.6") & (scores["variant"] == "default")]
    mine = scores[scores["source"] == "pipeline"]
    delta = delta_table(pd.concat([paper, mine]), paper["series"].iloc[0], mine["series"].iloc[0])
    assert len(delta) == 32 and delta["dataset"].nunique() == 32
    assert set(delta["dataset"]) == {d["dataset"] for d in PAPER["datasets"]}
