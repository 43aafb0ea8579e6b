"""One record type for every dataset, real MMEB or built-in: :class:`DatasetInfo`.

The catalogs (`pipeline.data.mmeb_catalog`, `pipeline.data.builtin`) fill it in and
`pipeline.data.catalog` selects from them; a benchmark folder's manifest stores it as JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, get_args

from storage.vocabulary import DATASET_META_TASKS, MMEBMetaTask, ModalityCode

Benchmark = Literal["MMEB", "builtin", "custom"]  # custom: declared in an experiment TOML
Role = Literal["benchmark", "pretraining"]

MANIFEST = "manifest.json"  # a benchmark folder's index of datasets (written by the built-in builder)


def _check(value: Any, allowed: Any, what: str, name: str) -> None:
    if value not in get_args(allowed):
        raise ValueError(f"{name}: {what} must be one of {get_args(allowed)}, got {value!r}")


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is: task, modalities, split role, sizes, instruction and provenance.

    ``n_train`` is 0 for datasets without a training split (OOD) and None where unknown.
    """

    name: str
    benchmark: Benchmark
    meta_task: MMEBMetaTask | Literal["text"]
    query_modality: ModalityCode
    target_modality: ModalityCode
    in_domain: bool
    n_train: int | None
    n_eval: int | None
    n_candidates: int | None
    instruction: str
    target_instruction: str = ""
    description: str = ""
    source: str = ""
    licence: str = ""
    paper_name: str | None = None  # the name in the paper's Table 5, where it differs or exists
    train_subset: str | None = None  # MMEB-train subset name when it differs (ImageNet_1K)
    role: Role = "benchmark"
    notes: str = ""

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name != self.name.strip():
            raise ValueError(f"dataset name must be a plain non-empty name, got {self.name!r}")
        _check(self.benchmark, Benchmark, "benchmark", self.name)
        if self.meta_task not in DATASET_META_TASKS:  # MMEB's four, or the text-only task (DiffEmbed)
            raise ValueError(f"{self.name}: meta_task must be one of {DATASET_META_TASKS}, got {self.meta_task!r}")
        _check(self.query_modality, ModalityCode, "query_modality", self.name)
        _check(self.target_modality, ModalityCode, "target_modality", self.name)
        _check(self.role, Role, "role", self.name)
        for key in ("n_train", "n_eval", "n_candidates"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"{self.name}: {key} must be a non-negative int or None, got {value!r}")
        if not self.in_domain and self.n_train:
            raise ValueError(f"{self.name}: an out-of-domain dataset has no training split (n_train={self.n_train})")

    @property
    def has_train(self) -> bool:
        return bool(self.in_domain and self.n_train != 0)

    @property
    def subset_names(self) -> tuple[str, ...]:
        """Names under which this dataset's files may be stored (eval name first)."""
        names = [self.name]
        if self.train_subset and self.train_subset != self.name:
            names.append(self.train_subset)
        return tuple(names)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetInfo:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
