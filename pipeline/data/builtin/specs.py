"""Every built-in dataset, found by importing the builder modules (each registers its own)."""

from __future__ import annotations

from pipeline.data.builtin import captions, classification, retrieval, text, vqa  # noqa: F401  (registers datasets)
from pipeline.data.builtin.context import BuiltinSpec, registered
from pipeline.data.dataset_info import DatasetInfo

BUILTIN_SPECS: dict[str, BuiltinSpec] = registered()
BUILTIN_DATASETS: dict[str, DatasetInfo] = {name: spec.info for name, spec in BUILTIN_SPECS.items()}
