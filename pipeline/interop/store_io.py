"""Stored runs out to MTEB / VLM2Vec files, and their files in as runs of their own source.

An imported run is source `mteb` or `vlm2vec`, stage `final`, with the file's other fields
in its config (`imported.extra`), so exporting it again writes the same file. Datasets are
matched by name: the store's own, or MMEB's 36 by any of their spellings; others are skipped
and reported, never guessed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from pipeline.data.mmeb_catalog import UnknownDatasetError, mmeb_info
from pipeline.interop import mteb, vlm2vec
from pipeline.interop.results import DatasetScores, RunScores
from pipeline.results import dataset_record, store_dataset_name
from storage import ModelRecord, RunRecord, ScoreRecord, StoreReader, StoreWriter
from storage.vocabulary import META_TASKS, PARADIGMS

log = logging.getLogger(__name__)

FORMATS: dict[str, ModuleType] = {"mteb": mteb, "vlm2vec": vlm2vec}


def format_module(name: str) -> ModuleType:
    if name not in FORMATS:
        raise ValueError(f"unknown format {name!r}; use one of {', '.join(FORMATS)}")
    return FORMATS[name]


def foreign_name(dataset: str) -> str:
    """MMEB's spelling of a stored dataset (the store keeps the paper's, e.g. MSCOCO.t2i)."""
    try:
        return mmeb_info(dataset).name
    except UnknownDatasetError:
        return dataset


def _config(value) -> dict:
    if isinstance(value, str):
        return json.loads(value)
    return value if isinstance(value, dict) else {}


def run_scores(reader: StoreReader, run_id: str) -> RunScores:
    """A stored run's every metric, by dataset; an imported run's kept fields come back with it."""
    runs = reader.runs().set_index("run_id")
    if run_id not in runs.index:
        raise ValueError(f"no run {run_id!r} in the store; list them with `vlmembed sql \"SELECT run_id FROM runs\"`")
    row = runs.loc[run_id]
    imported = _config(row["config"]).get("imported", {})
    by_dataset: dict[str, DatasetScores] = {}
    for metric in reader.metrics():
        for r in reader.scores(metric, run_ids=[run_id]).itertuples():
            name = imported.get("names", {}).get(r.dataset, foreign_name(r.dataset))
            scores = by_dataset.setdefault(r.dataset, DatasetScores(
                name, extra=dict(imported.get("extra", {}).get(r.dataset, {})),
                spelled=dict(imported.get("spelled", {}).get(r.dataset, {}))))
            scores.metrics[metric] = float(r.value)
    meta = dict(imported.get("meta", {}))
    return RunScores(imported.get("run_id", run_id), imported.get("model", row["model"]),
                     sorted(by_dataset.values(), key=lambda d: d.dataset), meta)


def export_results(store: Path, fmt: str, out: Path, run_ids: list[str] | None = None) -> list[Path]:
    """Each run's files in `<out>/<run id as a folder name>/`."""
    module = format_module(fmt)
    reader = StoreReader(store)
    written: list[Path] = []
    for run_id in run_ids or reader.runs()["run_id"].tolist():
        written += module.write_run(run_scores(reader, run_id), out / _slug(run_id))
    return written


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.@" else "_" for c in name)


@dataclass
class ImportReport:
    run_id: str
    datasets: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    n_scores: int = 0


def _store_dataset(name: str, known: set[str], writer: StoreWriter) -> str | None:
    """The store's name for a file's dataset, registering an MMEB dataset the store lacks."""
    if name in known:
        return name
    try:
        info = mmeb_info(name)
    except UnknownDatasetError:
        return None
    if info.meta_task not in META_TASKS:  # MMEB's grounding sets are not scored here
        return None
    spellings = [info.name, info.paper_name, *info.subset_names]
    stored = next((s for s in spellings if s in known), store_dataset_name(info))
    if stored not in known:
        writer.upsert_datasets([dataset_record(info)])
        known.add(stored)
    return stored


def _model_record(reader: StoreReader, model: str, paradigm: str | None, fmt: str) -> ModelRecord | None:
    models = reader.models()
    if ((models["model"] == model) & (models["variant"] == "default")).any():
        return None
    if paradigm not in PARADIGMS:
        raise ValueError(f"model {model!r} is not in the store: say what it is with --paradigm "
                         f"({' or '.join(PARADIGMS)})")
    return ModelRecord(model=model, display_name=model, paradigm=paradigm, scale="published",
                       description=f"results imported from {fmt} files")


def import_results(store: Path, fmt: str, path: Path, model: str, paradigm: str | None = None) -> ImportReport:
    """Land a result file (or folder) as one run of source `fmt`."""
    run = format_module(fmt).read(path)
    if not store.exists():
        StoreWriter(store).publish()  # an empty store of the current schema, to read from
    reader = StoreReader(store)
    with StoreWriter(store) as writer:
        record = _model_record(reader, model, paradigm, fmt)
        if record is not None:
            writer.upsert_models([record])
        known = set(reader.datasets()["dataset"])
        report = ImportReport(f"{fmt}:{model}:{run.run_id}")
        scores, names, extra, spelled = [], {}, {}, {}
        for d in run.datasets:
            stored = _store_dataset(d.dataset, known, writer)
            if stored is None or not d.metrics:
                report.skipped.append(d.dataset)
                continue
            report.datasets.append(stored)
            names[stored], extra[stored], spelled[stored] = d.dataset, d.extra, d.spelled
            scores += [ScoreRecord(stored, metric, value, d.n_queries) for metric, value in d.metrics.items()]
        if not scores:
            raise ValueError(f"{path}: none of its {len(run.datasets)} datasets is known here "
                             f"({', '.join(report.skipped[:5])} ...); only the store's and MMEB's datasets import")
        config = {"imported": {"format": fmt, "path": str(path), "run_id": run.run_id, "model": run.model,
                               "meta": run.meta, "names": names, "extra": extra, "spelled": spelled}}
        writer.add_run(RunRecord(run_id=report.run_id, source=fmt, model=model, label=f"imported from {fmt}",
                                 experiment=f"import-{fmt}", config=config, scores=scores), replace=True)
        writer.publish()
        report.n_scores = len(scores)
    if report.skipped:
        log.warning("skipped %d datasets not known here: %s", len(report.skipped), ", ".join(report.skipped))
    return report
