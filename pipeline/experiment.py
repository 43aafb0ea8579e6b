"""Experiment grids as TOML files: models x meta-tasks, with one training recipe.

    name = "smoke"
    source = "pipeline"            # or "demo"
    meta_tasks = ["classification", "vqa", "retrieval"]

    [data]
    root = "builtin:small"         # an MMEB-format folder (MMEB as downloaded), or the built-in benchmark
    selection = "builtin"          # or "paper32" for MMEB
    # train_split = "original"     # MMEB-train's split (its folders also hold diverse_instruction, train)
    # hub = "TIGER-Lab/MMEB-eval"  # rows through `datasets` (its cache when HF_DATASETS_OFFLINE=1)

    [[data.datasets]]              # a dataset outside the catalog (pipeline/data/declared.py)
    name = "RecipeRetrieval"
    meta_task = "retrieval"
    query_modality = "T"
    target_modality = "I"
    in_domain = true
    instruction = "Find the dish this recipe makes:"

    [train]                        # any TrainConfig field
    global_batch_size = 32

    [train_by_task.vqa]            # TrainConfig fields that differ for one meta-task
    max_steps = 450

    [[models]]
    name = "LLaVA-NeXT tiny"
    family = "llava_next"
    base = "random:tiny:0"         # or a checkpoint directory / hub id
    # meta_tasks = ["vqa"]         # only these meta-tasks (an ablation); default: the experiment's

See experiments/paper.toml and experiments/smoke.toml.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from pipeline.data.catalog import SELECTION_BASES
from pipeline.data.dataset_info import DatasetInfo
from pipeline.data.declared import declared_datasets
from pipeline.data.layouts import DEFAULT_SPLITS
from pipeline.data.mmeb_catalog import MMEB_DATASETS
from pipeline.models.base import EncoderOptions
from pipeline.models.registry import get_family, parse_dtype
from pipeline.train.config import TrainConfig
from storage.vocabulary import META_TASKS, STORED_META_TASKS

StoreEmbeddings = Literal["all", "pairs", "none"]


def _only_known(cls: type, data: dict, where: str) -> dict:
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(known)}")
    return data


@dataclass(frozen=True)
class ModelEntry:
    name: str  # the model's name in the store (e.g. "LLaVA-1.6" to sit beside the paper's numbers)
    family: str
    base: str = "random:tiny:0"  # checkpoint directory or hub id, or random:<real|tiny>:<seed>
    dtype: str = "fp32"
    variant: str = "default"  # e.g. "bidirectional", "last-token", "vision-unfrozen"
    options: dict = field(default_factory=dict)  # EncoderOptions overrides (pooling, attention, ...)
    train_vision: bool | None = None  # None: the family's default (FamilySpec.trains_vision)
    meta_tasks: tuple[str, ...] | None = None  # None: every meta-task of the experiment

    def __post_init__(self) -> None:
        get_family(self.family)
        parse_dtype(self.dtype)
        EncoderOptions(**self.options)
        if not self.name.strip():
            raise ValueError("a model entry needs a name")
        if self.meta_tasks is not None:
            object.__setattr__(self, "meta_tasks", tuple(self.meta_tasks))
            bad = set(self.meta_tasks) - set(STORED_META_TASKS)
            if bad or not self.meta_tasks:
                raise ValueError(f"model {self.name!r}: meta_tasks must be a non-empty subset of {STORED_META_TASKS}, "
                                 f"got {list(self.meta_tasks)}")

    @property
    def vision_trained(self) -> bool:
        """Whether fine-tuning trains this model's vision tower: its own setting, else its family's."""
        return get_family(self.family).spec.trains_vision if self.train_vision is None else self.train_vision

    @property
    def scale(self) -> str:
        return "tiny" if self.base.startswith("random:tiny") or "tiny" in self.name.lower() else "published"


# DataEntry fields added after runs were first stored: left out of a run's configuration while
# at these defaults, so the runs stored before them keep their identity (and are not re-run).
_LATER_DEFAULTS: dict[str, Any] = {"hub": None, "train_hub": None, "train_split": DEFAULT_SPLITS["train"],
                                   "eval_split": DEFAULT_SPLITS["eval"], "datasets": ()}


@dataclass(frozen=True)
class DataEntry:
    root: str = "builtin:small"  # MMEB-format folder, or builtin:small / builtin:full
    image_root: str | None = None
    selection: str = "builtin"  # catalog selection base: builtin, paper32, mmeb36 or custom
    hub: str | None = None  # eval rows from this hub id through `datasets` (e.g. TIGER-Lab/MMEB-eval)
    train_hub: str | None = None  # train rows from this hub id (default: hub)
    train_split: str = DEFAULT_SPLITS["train"]  # the one MMEB-train split read
    eval_split: str = DEFAULT_SPLITS["eval"]
    datasets: tuple[DatasetInfo, ...] = ()  # [[data.datasets]]: datasets outside the catalog
    train_cap: int = 20_000  # the paper's per-dataset cap
    eval_limit: int | None = None  # queries per eval dataset (None: all)
    # {meta_task: queries per eval dataset}: overrides eval_limit for a meta-task. Classification
    # and VQA candidates are a few shared labels and cheap to score; retrieval's are per query.
    eval_limit_by_task: dict[str, int] = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "datasets", declared_datasets(self.datasets, taken=list(MMEB_DATASETS)))
        if self.selection.split(":")[0] not in SELECTION_BASES:
            raise ValueError(f"[data] selection {self.selection!r}: use one of {', '.join(SELECTION_BASES)} "
                             "(meta-tasks are chosen by the experiment's meta_tasks)")
        for key in ("train_split", "eval_split"):
            if not getattr(self, key) or "/" in getattr(self, key):
                raise ValueError(f"[data] {key} must be a split name such as 'original' or 'test', "
                                 f"got {getattr(self, key)!r}")
        limits = {"eval_limit": self.eval_limit,
                  **{f"eval_limit_by_task.{t}": n for t, n in self.eval_limit_by_task.items()}}
        for where, limit in limits.items():
            if limit is not None and (not isinstance(limit, int) or limit < 1):
                raise ValueError(f"[data] {where} must be a positive number of queries, got {limit!r}")
        unknown = set(self.eval_limit_by_task) - set(STORED_META_TASKS)
        if unknown:
            raise ValueError(f"[data.eval_limit_by_task]: unknown meta-tasks {sorted(unknown)}; use {STORED_META_TASKS}")

    def eval_limit_for(self, meta_task: str) -> int | None:
        """Queries per eval dataset of one meta-task."""
        return self.eval_limit_by_task.get(meta_task, self.eval_limit)

    def to_config(self) -> dict[str, Any]:
        """The entry as stored in a run's configuration (see `_LATER_DEFAULTS`)."""
        data = asdict(self)
        return {k: v for k, v in data.items() if k not in _LATER_DEFAULTS or v != _LATER_DEFAULTS[k]}


@dataclass(frozen=True)
class Experiment:
    name: str
    models: tuple[ModelEntry, ...]
    data: DataEntry = field(default_factory=DataEntry)
    train: TrainConfig = field(default_factory=TrainConfig)
    # {meta_task: {TrainConfig field: value}}: per-task settings, e.g. the paper's 300/450/650 steps
    train_by_task: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: Literal["pipeline", "demo"] = "pipeline"
    meta_tasks: tuple[str, ...] = META_TASKS
    zero_shot: bool = False  # also evaluate before training
    eval_batch_size: int = 32
    store_embeddings: StoreEmbeddings = "all"
    device: str = "auto"
    output_dir: str | None = None  # checkpoints; default <VLMEMBED_HOME>/runs/<name>

    def __post_init__(self) -> None:
        if not self.models:
            raise ValueError(f"experiment {self.name!r} lists no models")
        names = [(m.name, m.variant) for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"experiment {self.name!r}: two model entries share a name and variant")
        # 'text' (DiffEmbed's text-only retrieval) has no training split: it is evaluated only.
        bad = set(self.meta_tasks) - set(STORED_META_TASKS)
        if bad:
            raise ValueError(f"unknown meta-tasks {sorted(bad)}; use {STORED_META_TASKS}")
        if self.source not in ("pipeline", "demo", "baseline"):  # baseline: untrained models (pipeline.demo.baselines)
            raise ValueError(f"source must be 'pipeline', 'demo' or 'baseline', got {self.source!r}")
        if self.store_embeddings not in ("all", "pairs", "none"):
            raise ValueError(f"store_embeddings must be all, pairs or none, got {self.store_embeddings!r}")
        for task in self.train_by_task:
            if task not in self.meta_tasks:
                raise ValueError(f"[train_by_task.{task}]: not a meta-task of this experiment {self.meta_tasks}")
            self.train_for(task)  # unknown or invalid fields fail here, not mid-grid
        for entry in self.models:
            outside = set(entry.meta_tasks or ()) - set(self.meta_tasks)
            if outside:
                raise ValueError(f"model {entry.name!r} asks for meta-tasks {sorted(outside)} "
                                 f"that the experiment does not run {self.meta_tasks}")

    def train_for(self, meta_task: str) -> TrainConfig:
        """The training configuration of one meta-task: [train] with its [train_by_task] overrides."""
        overrides = dict(self.train_by_task.get(meta_task, {}))
        if not overrides:
            return self.train
        unknown = set(overrides) - {f.name for f in fields(TrainConfig)}
        if unknown:
            raise ValueError(f"[train_by_task.{meta_task}]: unknown training options {sorted(unknown)}")
        if "lora" in overrides:
            raise ValueError(f"[train_by_task.{meta_task}]: LoRA settings are per experiment; set them in [train]")
        if "checkpoint_samples" in overrides:
            overrides["checkpoint_samples"] = tuple(overrides["checkpoint_samples"])
        return replace(self.train, **overrides)

    def grid(self) -> list[tuple[str, ModelEntry]]:
        """Every (meta-task, model) the experiment trains, meta-task by meta-task."""
        return [(task, entry) for task in self.meta_tasks for entry in self.models
                if entry.meta_tasks is None or task in entry.meta_tasks]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Experiment:
        data = dict(data)
        _only_known(cls, data, "experiment")
        models = tuple(ModelEntry(**_only_known(ModelEntry, dict(m), f"model {m.get('name')}"))
                       for m in data.pop("models", []))
        data_entry = DataEntry(**_only_known(DataEntry, data.pop("data", {}), "[data]"))
        train = TrainConfig.from_dict(data.pop("train", {}))
        if "train_by_task" in data:
            by_task = data["train_by_task"]
            if not isinstance(by_task, dict) or not all(isinstance(v, dict) for v in by_task.values()):
                raise ValueError("train_by_task must be tables of training options, e.g. [train_by_task.vqa]")
            data["train_by_task"] = {task: dict(v) for task, v in by_task.items()}
        if "meta_tasks" in data:
            data["meta_tasks"] = tuple(data["meta_tasks"])
        return cls(models=models, data=data_entry, train=train, **data)

    @classmethod
    def from_toml(cls, path: str | Path) -> Experiment:
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not valid TOML ({exc})") from exc
        raw.setdefault("name", path.stem)
        return cls.from_dict(raw)
