"""Turning pipeline objects into the store's records (the only bridge from pipeline to storage)."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

from pipeline.data.dataset_info import DatasetInfo
from pipeline.data.images import ImageError, thumbnail_png
from pipeline.data.records import EvalRow, ItemRef
from pipeline.eval.evaluator import EvalResult
from pipeline.experiment import ModelEntry
from pipeline.models.registry import get_family
from storage import (
    DatasetRecord,
    DatasetRow,
    ItemRecord,
    ModelRecord,
    RankRecord,
    RunRecord,
    ScoreRecord,
    TrainLogRecord,
)
from storage.paper import canonical_dataset
from storage.records import VISION_FROZEN, VISION_TRAINED
from storage.vocabulary import MODALITY_NAMES

log = logging.getLogger(__name__)


def code_version() -> str:
    """`git describe` of the checkout when there is one, else the package version."""
    root = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=root, capture_output=True, text=True,
                             timeout=5)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vlmembed")
    except PackageNotFoundError:
        return "unknown"


def store_dataset_name(info: DatasetInfo) -> str:
    """MMEB datasets are stored under the name the paper import uses (its Table 5 spelling, with
    the paper's other spellings folded in), so pipeline and paper runs line up row for row."""
    return canonical_dataset(info.paper_name or info.name) if info.benchmark == "MMEB" else info.name


def model_record(entry: ModelEntry, description: str | None = None) -> ModelRecord:
    spec = get_family(entry.family).spec
    options = {**{"attention": spec.attention, "pooling": spec.pooling}, **entry.options}
    return ModelRecord(
        model=entry.name, variant=entry.variant, display_name=entry.name, paradigm=spec.paradigm, scale=entry.scale,
        family=spec.name, attention=options["attention"], pooling=options["pooling"],
        vision_encoder=spec.vision_encoder, vision_update=VISION_TRAINED if entry.vision_trained else VISION_FROZEN,
        backbone=spec.backbone, params=None if entry.scale == "tiny" else spec.published_params,
        description=description or f"{spec.display_name} family; weights: {entry.base}",
    )


def dataset_record(info: DatasetInfo) -> DatasetRecord:
    return DatasetRecord(
        dataset=store_dataset_name(info), benchmark=info.benchmark, meta_task=info.meta_task,
        in_domain=info.in_domain, query_modality=MODALITY_NAMES.get(info.query_modality, info.query_modality),
        target_modality=MODALITY_NAMES.get(info.target_modality, info.target_modality),
        n_train=info.n_train, n_eval=info.n_eval, n_candidates=info.n_candidates, instruction=info.instruction,
        description=info.description,
    )


def item_records(items: Iterable[ItemRef], thumbnails: bool = True) -> list[ItemRecord]:
    out = []
    for item in items:
        thumb = None
        if thumbnails and item.image is not None and item.store is not None:
            try:
                thumb = thumbnail_png(item.store.open(item.image))
            except ImageError as exc:
                log.warning("no thumbnail for %s: %s", item.image, exc)
        out.append(ItemRecord(item_id=item.id, modality=item.modality, instruction=item.instruction or None,
                              text=item.text, image_path=item.image, thumbnail=thumb))
    return out


def dataset_rows(dataset: str, rows: Sequence[EvalRow]) -> list[DatasetRow]:
    return [DatasetRow(dataset, i, row.query.id, tuple(c.id for c in row.candidates)) for i, row in enumerate(rows)]


def run_record(
    *,
    run_id: str,
    source: str,
    model: str,
    label: str,
    variant: str,
    experiment: str,
    train_task: str | None,
    stage: str,
    train_samples: int | None,
    config: dict,
    checkpoint: str | None,
    started_at: datetime,
    timings: dict,
    result: EvalResult,
    dataset_names: dict[str, str],  # evaluator task name -> store dataset name
    row_positions: dict[str, list[int]],  # evaluator row index -> stored row_idx, per task
    train_log: Sequence[dict] = (),
    embed: str = "all",
    pair_items: set[str] | None = None,
    notes: str | None = None,  # e.g. the selected datasets this run skipped (data_plan.notes)
) -> RunRecord:
    """A RunRecord from an evaluation (and the training log up to it)."""
    scores, ranks = [], []
    for task in result.tasks:
        name = dataset_names[task.name]
        scores += [ScoreRecord(name, metric, value, task.n_queries) for metric, value in task.metrics.items()]
        positions = row_positions[task.name]
        ranks += [RankRecord(name, positions[i], int(rank), top, float(gs), float(ts))
                  for i, rank, top, gs, ts in zip(task.row_indices, task.gold_ranks, task.top_items,
                                                   task.gold_scores, task.top_scores, strict=True)]
    item_ids, vectors = result.item_ids, result.embeddings
    if embed == "pairs" and pair_items is not None:
        keep = [i for i, item in enumerate(item_ids) if item in pair_items]
        item_ids, vectors = [item_ids[i] for i in keep], vectors[keep]
    if embed == "none" or not item_ids:
        item_ids, vectors = [], None
    return RunRecord(
        run_id=run_id, source=source, model=model, label=label, variant=variant, experiment=experiment,
        train_task=train_task, stage=stage, train_samples=train_samples, config=config,
        code_version=code_version(), checkpoint=checkpoint, started_at=started_at, finished_at=datetime.now(),
        timings=timings, scores=scores, ranks=ranks,
        train_log=[TrainLogRecord(int(e["step"]), int(e["samples"]), e.get("loss"), e.get("lr")) for e in train_log],
        embedding_items=list(item_ids), embeddings=vectors, notes=notes,
    )
