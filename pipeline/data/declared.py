"""Datasets outside the catalogs, declared in an experiment TOML, as `DatasetInfo` records.

    [[data.datasets]]
    name = "RecipeRetrieval"           # the subset's folder / file name in the data root
    meta_task = "retrieval"            # classification, vqa, retrieval or grounding
    query_modality = "T"               # T, I or I+T
    target_modality = "I"
    in_domain = true                   # true: trained on (needs train rows) and scored as in-domain
    instruction = "Find the dish this recipe makes:"
    target_instruction = "Represent the given image."   # optional

A declared dataset joins every selection (filtered by meta-task and id/ood like the rest);
``selection = "custom"`` runs the declared datasets alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pipeline.data.dataset_info import DatasetInfo

REQUIRED = ("name", "meta_task", "query_modality", "target_modality", "in_domain", "instruction")
OPTIONAL = ("target_instruction", "description", "source", "licence", "n_candidates")


def declared_dataset(entry: Mapping[str, Any]) -> DatasetInfo:
    """One ``[[data.datasets]]`` table as a record; a one-line ValueError saying what to fix."""
    where = f"[[data.datasets]] {entry.get('name', '(no name)')!r}"
    unknown = sorted(set(entry) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; allowed: {sorted(REQUIRED + OPTIONAL)}")
    missing = [k for k in REQUIRED if k not in entry]
    if missing:
        raise ValueError(f"{where}: missing {', '.join(missing)}; a declared dataset needs {', '.join(REQUIRED)}")
    if not isinstance(entry["in_domain"], bool):
        raise ValueError(f"{where}: in_domain must be true (trained on) or false (out-of-domain), "
                         f"got {entry['in_domain']!r}")
    if not isinstance(entry["instruction"], str):
        raise ValueError(f"{where}: instruction must be a string (\"\" for none), got {entry['instruction']!r}")
    try:
        return DatasetInfo(benchmark="custom", n_train=None if entry["in_domain"] else 0, n_eval=None,
                           n_candidates=entry.get("n_candidates"), **{k: v for k, v in entry.items()
                                                                      if k != "n_candidates"})
    except (TypeError, ValueError) as exc:  # DatasetInfo's own check names the dataset first
        raise ValueError(f"{where}: {str(exc).removeprefix(str(entry['name']) + ': ')}") from None


def declared_datasets(entries: Iterable[Mapping[str, Any] | DatasetInfo], taken: Sequence[str] = ()) -> tuple[DatasetInfo, ...]:
    """Records of every declared table, refusing duplicates and names a catalog already uses."""
    infos = tuple(e if isinstance(e, DatasetInfo) else declared_dataset(e) for e in entries)
    seen: set[str] = set()
    for info in infos:
        if info.name in seen:
            raise ValueError(f"[[data.datasets]] {info.name!r} is declared twice; keep one entry")
        if info.name in taken:
            raise ValueError(f"[[data.datasets]] {info.name!r} is already in the catalog; "
                             "drop the entry (the catalog's record is used) or rename it")
        seen.add(info.name)
    return infos
