"""One registry over every dataset the project knows: MMEB's and the built-in benchmark's.

Both catalogs describe their datasets with :class:`DatasetInfo`; this module names
selections over them (``paper32``, ``mmeb36``, ``builtin``, ``custom``, each optionally
narrowed to a meta-task and to in-domain / OOD), joined by any datasets an experiment declares.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.data.builtin.specs import BUILTIN_DATASETS
from pipeline.data.dataset_info import DatasetInfo
from pipeline.data.mmeb_catalog import MMEB_DATASETS, PAPER32, UnknownDatasetError
from storage.vocabulary import DATASET_META_TASKS, STORED_META_TASKS

SELECTION_BASES = ("paper32", "mmeb36", "builtin", "custom")


def selection_names() -> list[str]:
    names = []
    for base in SELECTION_BASES:
        names.append(base)
        names += [f"{base}:{t}" for t in STORED_META_TASKS]
    return names


def select(spec: str, builtin: list[DatasetInfo] | None = None,
           declared: Sequence[DatasetInfo] = ()) -> list[DatasetInfo]:
    """Datasets of a named selection: ``BASE[:META_TASK][:id|ood]``.

    BASE is ``paper32`` (the paper's Table 5), ``mmeb36`` (all of MMEB's image datasets),
    ``builtin`` (the offline benchmark; pass its records, e.g. from a manifest, or the
    static specs are used) or ``custom`` (only the `declared` datasets). Datasets declared
    in an experiment (`pipeline.data.declared`) join every base. Pretraining-only datasets
    (captions) are never selected.
    """
    parts = spec.split(":")
    base, filters = parts[0], parts[1:]
    if base == "paper32":
        pool = [MMEB_DATASETS[n] for n in PAPER32]
    elif base == "mmeb36":
        pool = list(MMEB_DATASETS.values())
    elif base == "builtin":
        if builtin is None:
            builtin = list(BUILTIN_DATASETS.values())
        pool = [d for d in builtin if d.role == "benchmark"]
    elif base == "custom":
        pool = []
    else:
        raise UnknownDatasetError(f"unknown selection {spec!r}; use one of {', '.join(selection_names())}")
    pool = pool + [d for d in declared if d.name not in {p.name for p in pool}]
    for f in filters:
        if f in DATASET_META_TASKS:
            pool = [d for d in pool if d.meta_task == f]
        elif f in ("id", "ood"):
            pool = [d for d in pool if d.in_domain == (f == "id")]
        else:
            raise UnknownDatasetError(f"selection {spec!r}: {f!r} is neither a meta-task {DATASET_META_TASKS} nor id/ood")
    return pool
