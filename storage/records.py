"""What a writer accepts: plain records, validated before anything touches the store."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from storage.pages import drop_pages
from storage.vocabulary import META_TASKS, MODALITIES, PARADIGMS, ROLES, SOURCES, STAGES, STORED_META_TASKS


def _require(value: Any, allowed: tuple, what: str) -> None:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {allowed}, got {value!r}")


def config_hash(config: dict) -> str:
    """A stable hash of a run's configuration: grids skip runs whose hash is stored."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


# `models.vision_update` of a model the pipeline fine-tuned: pipeline.results writes these, and the
# version-2 migration reads a run's config back into them.
VISION_TRAINED = "trained (LoRA)"
VISION_FROZEN = "frozen during contrastive fine-tuning"


@dataclass(frozen=True)
class ModelRecord:
    model: str
    display_name: str
    paradigm: str
    scale: str  # 'published' or 'tiny'
    family: str | None = None
    attention: str | None = None
    pooling: str | None = None
    vision_encoder: str | None = None
    vision_update: str | None = None
    backbone: str | None = None
    params: int | None = None
    description: str | None = None
    variant: str = "default"  # one record per (model, variant): e.g. MMaDA 'vision-unfrozen' (Table 4)

    def __post_init__(self) -> None:
        _require(self.paradigm, PARADIGMS, "paradigm")
        _require(self.scale, ("published", "tiny"), "scale")
        if not self.model.strip() or not self.variant.strip():
            raise ValueError(f"a model record needs a model name and a variant, got {self.model!r} / {self.variant!r}")


@dataclass(frozen=True)
class DatasetRecord:
    dataset: str
    benchmark: str
    meta_task: str
    in_domain: bool
    query_modality: str | None = None
    target_modality: str | None = None
    n_train: int | None = None
    n_eval: int | None = None
    n_candidates: int | None = None
    instruction: str | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        _require(self.meta_task, STORED_META_TASKS, "meta_task")


@dataclass(frozen=True)
class ItemRecord:
    item_id: str
    modality: str
    instruction: str | None = None
    text: str | None = None
    image_path: str | None = None
    thumbnail: bytes | None = None

    def __post_init__(self) -> None:
        _require(self.modality, MODALITIES, "modality")


@dataclass(frozen=True)
class DatasetRow:
    dataset: str
    row_idx: int
    query_item: str
    candidates: tuple[str, ...]  # gold first

    def __post_init__(self) -> None:
        if not self.candidates:
            raise ValueError(f"{self.dataset} row {self.row_idx}: no candidates")


@dataclass(frozen=True)
class ScoreRecord:
    dataset: str
    metric: str
    value: float
    n_queries: int | None = None

    def __post_init__(self) -> None:
        if not np.isfinite(self.value):
            raise ValueError(f"score {self.metric} on {self.dataset} is not finite: {self.value}")


@dataclass(frozen=True)
class RankRecord:
    dataset: str
    row_idx: int
    gold_rank: int
    top_item: str | None = None
    gold_score: float | None = None
    top_score: float | None = None


@dataclass(frozen=True)
class TrainLogRecord:
    step: int
    samples: int
    loss: float | None
    lr: float | None


@dataclass(frozen=True)
class ReportedAverage:
    meta_task: str
    split: str
    metric: str
    value: float
    where_printed: str | None = None

    def __post_init__(self) -> None:
        _require(self.meta_task, META_TASKS, "meta_task")
        _require(self.split, ("all", "in_domain", "ood"), "split")


@dataclass
class RunRecord:
    """Everything one run produced; `StoreWriter.add_run` lands it in one transaction."""

    run_id: str
    source: str
    model: str
    label: str
    variant: str = "default"
    experiment: str | None = None
    train_task: str | None = None
    stage: str = "final"
    train_samples: int | None = None
    config: dict = field(default_factory=dict)
    code_version: str | None = None
    checkpoint: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    timings: dict = field(default_factory=dict)
    notes: str | None = None
    scores: list[ScoreRecord] = field(default_factory=list)
    reported: list[ReportedAverage] = field(default_factory=list)
    ranks: list[RankRecord] = field(default_factory=list)
    train_log: list[TrainLogRecord] = field(default_factory=list)
    embedding_items: list[str] = field(default_factory=list)
    embeddings: np.ndarray | None = None  # (N, D) float32, rows aligned with embedding_items

    def __post_init__(self) -> None:
        _require(self.source, SOURCES, "source")
        _require(self.stage, STAGES, "stage")
        if self.train_task is not None:
            _require(self.train_task, (*META_TASKS, "all"), "train_task")
        if self.embeddings is not None:
            emb = np.asarray(self.embeddings)
            if emb.ndim != 2 or emb.shape[0] != len(self.embedding_items):
                raise ValueError(
                    f"embeddings must be (N, D) with N = len(embedding_items) = {len(self.embedding_items)}, "
                    f"got {emb.shape}"
                )
            # a block at a time: a 1M x 4096 run must not cost a 4 GB mask, nor (memory-mapped) leave
            # its 16 GB of float32 pages resident
            for s in range(0, emb.shape[0], 8192):
                finite = np.isfinite(emb[s:s + 8192]).all()
                drop_pages(emb)
                if not finite:
                    raise ValueError(f"run {self.run_id}: embeddings contain NaN or inf")
        elif self.embedding_items:
            raise ValueError("embedding_items given without embeddings")

    @property
    def config_hash(self) -> str:
        return config_hash(self.config)


__all__ = [
    "ROLES",
    "DatasetRecord",
    "DatasetRow",
    "ItemRecord",
    "ModelRecord",
    "RankRecord",
    "ReportedAverage",
    "RunRecord",
    "ScoreRecord",
    "TrainLogRecord",
    "config_hash",
]
