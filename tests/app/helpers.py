"""Stores with every source in them: the paper's numbers, demo runs and pipeline runs.

Demo runs look like what `vlmembed demo` will write (tiny models, the built-in benchmark,
checkpoints with training-sample counts); pipeline runs reproduce four of the paper's
classification datasets with known offsets, so deltas have exact expected values.
"""

from __future__ import annotations

import socket
from datetime import datetime, timedelta
from pathlib import Path

from storage import DatasetRecord, ModelRecord, RunRecord, ScoreRecord, StoreWriter
from storage.paper import paper_scores
from storage.paper_import import import_paper

DEMO_MODELS = [
    ModelRecord("llava_next-tiny", "LLaVA-NeXT tiny", "autoregressive", "tiny", family="llava_next"),
    ModelRecord("lavida-tiny", "LaViDa tiny", "diffusion", "tiny", family="lavida"),
]
DEMO_DATASETS = [
    DatasetRecord("emoji-names", "builtin", "classification", True, "image", "text"),
    DatasetRecord("fashion-mnist", "builtin", "classification", False, "image", "text"),
    DatasetRecord("scene-count-vqa", "builtin", "vqa", True, "image+text", "text"),
    DatasetRecord("skimage-captions", "builtin", "retrieval", False, "text", "image"),
]
# Final Precision@1 per demo model and dataset; checkpoints score lower by a known amount.
DEMO_FINAL = {
    "llava_next-tiny": {"emoji-names": 40.0, "fashion-mnist": 30.0, "scene-count-vqa": 35.0, "skimage-captions": 25.0},
    "lavida-tiny": {"emoji-names": 38.0, "fashion-mnist": 33.0, "scene-count-vqa": 30.0, "skimage-captions": 28.0},
}
DEMO_CHECKPOINTS = {1000: -10.0, 2000: -4.0}
DEMO_FINAL_SAMPLES = 4000
# Pipeline reproductions: (model, dataset) -> offset from the paper's number.
PIPELINE_DATASETS = ["ImageNet-1K", "N24News", "ImageNet-A", "ObjectNet"]
PIPELINE_OFFSET = {"LaViDa": -1.0, "LLaVA-1.6": 0.5}
T0 = datetime(2025, 1, 1, 12, 0, 0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_runs() -> list[RunRecord]:
    runs = []
    for model, finals in DEMO_FINAL.items():
        stages = [(n, "checkpoint", off) for n, off in DEMO_CHECKPOINTS.items()]
        for i, (samples, stage, offset) in enumerate([*stages, (DEMO_FINAL_SAMPLES, "final", 0.0)]):
            runs.append(RunRecord(
                run_id=f"demo:{model}:{samples}", source="demo", model=model, label=f"{stage} {samples}",
                train_task="all", stage=stage, train_samples=samples, finished_at=T0 + timedelta(minutes=i),
                scores=[ScoreRecord(d, "precision@1", v + offset, 50) for d, v in finals.items()]
                + [ScoreRecord(d, "recall@5", min(100.0, v + offset + 30), 50) for d, v in finals.items()],
            ))
    return runs


def pipeline_run(model: str, offset: float, datasets: list[str] = PIPELINE_DATASETS, task: str = "classification",
                 minutes: int = 0) -> RunRecord:
    """A reproduction of the paper's `model` on `datasets`, off by `offset` points everywhere."""
    paper = {s.dataset: s.value for s in paper_scores() if s.model == model and s.variant == "default"}
    return RunRecord(
        run_id=f"pipeline:{model}:{task}", source="pipeline", model=model, label="reproduction",
        train_task=task, stage="final", train_samples=76000, finished_at=T0 + timedelta(minutes=minutes),
        scores=[ScoreRecord(d, "precision@1", paper[d] + offset, 1000) for d in datasets],
    )


def add_demo(writer: StoreWriter) -> None:
    writer.upsert_models(DEMO_MODELS)
    writer.upsert_datasets(DEMO_DATASETS)
    for run in demo_runs():
        writer.add_run(run)


def add_pipeline(writer: StoreWriter) -> None:
    for model, offset in PIPELINE_OFFSET.items():
        writer.add_run(pipeline_run(model, offset))


def build_mixed_store(path: Path) -> Path:
    """Paper + demo + pipeline runs, published through the writer like any real store."""
    with StoreWriter(path) as writer:
        import_paper(writer)
        add_demo(writer)
        add_pipeline(writer)
    return path
