"""Declared datasets, absent datasets and a grid with no data, end to end through the runner.

The data folder is written here with pyarrow in the ``train/<Subset>/`` and ``eval/<Subset>/``
layout (MMEB-train and MMEB-eval downloaded side by side), not with the built-in writer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from pipeline.data.mmeb import MMEBReader
from pipeline.data_plan import NoUsableDataError, Skipped, notes
from pipeline.experiment import DataEntry, Experiment, ModelEntry
from pipeline.runner import ExperimentRunner, load_task_data
from pipeline.train.config import TrainConfig
from storage import StoreReader
from tests.data.conftest import write_parquet

INSTRUCTION = "Name the colour of the square"
COLOURS = {"red": (230, 25, 25), "green": (30, 200, 40), "blue": (30, 60, 230), "yellow": (240, 230, 30)}
SHADES = {"name": "Shades", "meta_task": "classification", "query_modality": "I", "target_modality": "T",
          "in_domain": True, "instruction": INSTRUCTION}
MISSING = {**SHADES, "name": "DarkShades", "in_domain": False}


def write_shades(root: Path, n_train: int = 16, n_eval: int = 8) -> Path:
    names = list(COLOURS)
    (root / "train" / "images").mkdir(parents=True)
    train, evals = [], []
    for i in range(n_train):
        c = names[i % 4]
        Image.new("RGB", (16, 16), COLOURS[c]).save(root / "train" / "images" / f"t{i}.png")
        train.append({"qry": f"<|image_1|>\n{INSTRUCTION}\n", "qry_image_path": f"images/t{i}.png", "pos_text": c,
                      "pos_image_path": "", "neg_text": "", "neg_image_path": ""})
    (root / "eval" / "eval_images").mkdir(parents=True)
    for i in range(n_eval):
        c = names[i % 4]
        Image.new("RGB", (16, 16), COLOURS[c]).save(root / "eval" / "eval_images" / f"e{i}.png")
        evals.append({"qry_text": f"<|image_1|>\n{INSTRUCTION}\n", "qry_img_path": f"e{i}.png",
                      "tgt_text": [c] + [n for n in names if n != c], "tgt_img_path": [""] * 4})
    write_parquet(root / "train" / "Shades" / "original-00000-of-00001.parquet", train)
    write_parquet(root / "eval" / "Shades" / "test-00000-of-00001.parquet", evals)
    return root


def _experiment(root: Path, tmp_path: Path, selection: str = "custom", datasets=(SHADES, MISSING)) -> Experiment:
    train = TrainConfig.from_dict(dict(global_batch_size=8, chunk_size=8, max_steps=1, warmup_ratio=0.0,
                                       checkpoint_samples=(), seed=0))
    return Experiment(name="declared", meta_tasks=("classification",),
                      models=(ModelEntry(name="tiny llava", family="llava_next", base="random:tiny:0"),),
                      data=DataEntry(root=str(root), selection=selection, datasets=datasets), train=train,
                      output_dir=str(tmp_path / "runs"), eval_batch_size=8)


def test_declared_datasets_from_toml_and_their_one_line_errors(tmp_path: Path):
    path = tmp_path / "exp.toml"
    head = 'name = "x"\n[[models]]\nname = "a"\nfamily = "lavida"\n[data]\nselection = "custom"\n'
    table = "[[data.datasets]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in SHADES.items())
    path.write_text(head + table)
    (info,) = Experiment.from_toml(path).data.datasets
    assert (info.name, info.benchmark, info.meta_task, info.in_domain, info.instruction) == \
        ("Shades", "custom", "classification", True, INSTRUCTION)
    bad = {
        'meta_task = "captioning"': "[[data.datasets]] 'Shades': meta_task must be one of",
        'in_domain = "yes"': "in_domain must be true (trained on) or false (out-of-domain)",
        'query_modality = "V"': "query_modality must be one of ('I', 'T', 'I+T')",
        'colour = "red"': "unknown keys ['colour']",
        'name = "OK-VQA"': "'OK-VQA' is already in the catalog",
    }
    for line, message in bad.items():
        key = line.split(" = ")[0]
        lines = [f"{k} = {json.dumps(v)}" for k, v in SHADES.items() if k != key] + [line]
        path.write_text(head + "[[data.datasets]]\n" + "\n".join(lines) + "\n")
        with pytest.raises(ValueError, match=r"^\[\[data\.datasets\]\]") as err:
            Experiment.from_toml(path)
        assert message in str(err.value) and "\n" not in str(err.value)
    path.write_text(head + table + table)
    with pytest.raises(ValueError, match="'Shades' is declared twice"):
        Experiment.from_toml(path)
    path.write_text(head.replace('"custom"', '"paper33"'))
    with pytest.raises(ValueError, match=r"selection 'paper33': use one of paper32, mmeb36, builtin, custom"):
        Experiment.from_toml(path)


def test_absent_dataset_is_skipped_when_task_data_loads(tmp_path: Path):
    root = write_shades(tmp_path / "data")
    reader = MMEBReader(root, infos=DataEntry(datasets=(SHADES, MISSING)).datasets)
    data = load_task_data(reader, DataEntry(root=str(root), selection="custom", datasets=(SHADES, MISSING)),
                          "classification")
    assert list(data.evals) == ["Shades"] and len(data.train) == 16
    assert [(s.dataset, s.split, s.why) for s in data.skipped] == [("DarkShades", "eval", "absent here")]
    assert notes(data.skipped) == "skipped (absent here): DarkShades eval"
    assert notes([Skipped("A", "eval", "no usable rows"), *data.skipped]) == \
        "skipped (absent here): DarkShades eval; skipped (no usable rows): A eval"


@pytest.mark.slow
def test_a_declared_dataset_trains_and_an_absent_one_is_noted_in_the_stored_run(tmp_path: Path):
    root = write_shades(tmp_path / "data")
    store = tmp_path / "store.duckdb"
    runner = ExperimentRunner(_experiment(root, tmp_path), store, progress=False)
    landed = runner.run()
    assert [r.rsplit(":", 1)[1] for r in landed] == ["final"]
    reader = StoreReader(store)
    run = reader.runs().set_index("run_id").loc[landed[0]]
    assert run["notes"] == "skipped (absent here): DarkShades eval"
    assert json.loads(run["config"])["data_absent"] == ["DarkShades:eval"]
    datasets = reader.datasets().set_index("dataset")
    assert datasets.loc["Shades", "benchmark"] == "custom" and "DarkShades" not in datasets.index
    assert set(reader.scores()["dataset"]) == {"Shades"}


def test_no_usable_data_stores_nothing_and_says_why_in_one_line(tmp_path: Path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    store = tmp_path / "store.duckdb"
    with pytest.raises(NoUsableDataError) as err:
        ExperimentRunner(_experiment(empty, tmp_path, selection="paper32", datasets=()), store).run()
    message = str(err.value)
    assert message.startswith(f"no usable data under {empty}: none of the datasets selected ('paper32', classification)")
    assert "point [data] root at an MMEB download" in message and "\n" not in message
    assert not store.exists()

    from pipeline.cli import main

    toml = tmp_path / "exp.toml"
    toml.write_text(f'name = "x"\nmeta_tasks = ["vqa"]\n[data]\nroot = "{empty}"\nselection = "paper32"\n'
                    '[[models]]\nname = "a"\nfamily = "llava_next"\n')
    assert main(["run", str(toml), "--store", str(store)]) == 2
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert err_lines[-1].startswith("vlmembed run: no usable data under") and not store.exists()


def test_new_data_fields_stay_out_of_a_run_config_at_their_defaults():
    """Runs stored before [data] grew hub / splits / datasets keep their configuration hash."""
    assert set(DataEntry().to_config()) == {"root", "image_root", "selection", "train_cap", "eval_limit",
                                            "eval_limit_by_task", "seed"}
    changed = DataEntry(train_split="diverse_instruction", hub="TIGER-Lab/MMEB-eval").to_config()
    assert changed["train_split"] == "diverse_instruction" and changed["hub"] == "TIGER-Lab/MMEB-eval"


def test_a_hub_experiment_reads_no_local_root_unless_given(tmp_path: Path):
    from pipeline.runner import open_reader

    reader = open_reader(DataEntry(hub="TIGER-Lab/MMEB-eval", image_root=str(tmp_path)))
    assert reader.root is None and reader.hubs == {"eval": "TIGER-Lab/MMEB-eval", "train": "TIGER-Lab/MMEB-eval"}
    root = write_shades(tmp_path / "data")
    both = open_reader(DataEntry(root=str(root), hub="TIGER-Lab/MMEB-eval", train_split="original"))
    assert both.root == root and both.hubs == {"eval": "TIGER-Lab/MMEB-eval", "train": None}
