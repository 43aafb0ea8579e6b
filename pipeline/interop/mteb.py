"""MTEB's result JSON: one file per task, `<task_name>.json`.

Fields as mteb writes them (embeddings-benchmark/mteb, `TaskResult`): `dataset_revision`,
`task_name`, `mteb_version`, `scores` (split -> list of one dict per `hf_subset`, each with
`main_score`, `hf_subset`, `languages` and the task's metrics on a 0-1 scale),
`evaluation_time`, `kg_co2_emissions`. Retrieval metrics are named `<metric>_at_<k>`.
We write our runs under the `test` split, subset `default`, with Precision@1 as `main_score`.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.interop.results import DatasetScores, MetricName, RunScores, map_in, map_out, to_fraction

SPLIT = "test"
SUBSET = "default"
NAMES = (
    MetricName("precision@1", "precision_at_1"),
    MetricName("recall@5", "recall_at_5"),
    MetricName("ndcg@5", "ndcg_at_5"),
    MetricName("mrr", "mrr_at_1000", "our MRR runs over the whole candidate set (at most 1000 in MMEB)"),
)
RUN_FIELDS = ("mteb_version",)
TASK_FIELDS = ("dataset_revision", "evaluation_time", "kg_co2_emissions")


def task_file(scores: DatasetScores, defaults: dict) -> dict:
    """One task's result JSON; fields an imported file had are written back as they were."""
    kept = dict(scores.extra)
    split = kept.pop("split", SPLIT)
    head = {"dataset_revision": kept.pop("dataset_revision", defaults.get("dataset_revision", "unknown")),
            "task_name": scores.dataset,
            "mteb_version": kept.pop("mteb_version", defaults.get("mteb_version", "unknown")),
            "evaluation_time": kept.pop("evaluation_time", None),
            "kg_co2_emissions": kept.pop("kg_co2_emissions", None)}
    entry = {"hf_subset": SUBSET, "languages": ["eng-Latn"], **kept}
    if "main_score" not in entry and "precision@1" in scores.metrics:
        entry["main_score"] = to_fraction(scores.metrics["precision@1"])
    return {**head, "scores": {split: [map_out(scores, NAMES, entry)]}}


def write_run(run: RunScores, out: Path) -> list[Path]:
    """`<out>/<task_name>.json` per dataset (mteb's results folder holds one per model and revision)."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for scores in run.datasets:
        path = out / f"{scores.dataset.replace('/', '_')}.json"
        path.write_text(json.dumps(task_file(scores, run.meta), indent=2))
        written.append(path)
    (out / "model_meta.json").write_text(json.dumps({"name": run.model, "run_id": run.run_id}, indent=2))
    return written


def _task_scores(data: dict) -> list[DatasetScores]:
    """One DatasetScores per split entry; a subset other than the default names its own dataset."""
    out = []
    for split, entries in data.get("scores", {}).items():
        for entry in entries:
            scores = map_in(entry, NAMES)
            subset = entry.get("hf_subset", SUBSET)
            scores.dataset = data["task_name"] if subset == SUBSET else f"{data['task_name']}/{subset}"
            scores.extra.update({k: data[k] for k in (*RUN_FIELDS, *TASK_FIELDS) if k in data}, split=split)
            out.append(scores)
    return out


def read(path: Path) -> RunScores:
    """A task result JSON, or a folder of them (mteb's `results/<model>/<revision>/`)."""
    files = sorted(p for p in path.rglob("*.json") if p.name != "model_meta.json") if path.is_dir() else [path]
    datasets: list[DatasetScores] = []
    for file in files:
        data = json.loads(file.read_text())
        if not isinstance(data, dict) or "task_name" not in data or "scores" not in data:
            raise ValueError(f"{file}: not an MTEB result (needs task_name and scores)")
        datasets += _task_scores(data)
    if not datasets:
        raise ValueError(f"{path}: no MTEB result files")
    meta_file = path / "model_meta.json" if path.is_dir() else path.parent / "model_meta.json"
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    name = meta.get("name", path.stem)
    return RunScores(meta.get("run_id", name), name, datasets)
