"""The paper's published numbers, as data the project owns (storage/data/paper_results.json).

This module only reads and shapes them; `storage.paper_import` writes them into a store.

Each (model, table) becomes a run with source 'paper': the paper trained one model per
meta-task, so Table 1, 2 and 3 are three runs per model; Table 4's unfrozen-vision column
is a fourth MMaDA run with variant 'vision-unfrozen'. Printed averages are kept beside the
per-dataset numbers (reported_averages), so any disagreement stays visible.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources

from storage.records import DatasetRecord, ModelRecord, ReportedAverage, RunRecord, ScoreRecord
from storage.vocabulary import MODALITY_NAMES

METRIC = "precision@1"


@lru_cache(maxsize=1)
def paper_data() -> dict:
    text = resources.files("storage").joinpath("data/paper_results.json").read_text(encoding="utf-8")
    return json.loads(text)


def canonical_dataset(name: str) -> str:
    """The paper spells some datasets differently in different tables; map to Table 5's name."""
    return paper_data()["dataset_aliases"].get(name, name)


def paper_models() -> list[ModelRecord]:
    """Table 6's records (variant 'default'), and one per ablation variant a table reports (Table 4's
    MMaDA 'vision-unfrozen'), which differs in how its vision encoder was updated."""
    data = paper_data()
    defaults = {
        m["model"]: ModelRecord(
            model=m["model"], display_name=m["model"], paradigm=m["paradigm"], scale="published",
            family=m["family"], attention=m["attention"], pooling=m["pooling"],
            vision_encoder=m["vision_encoder"], vision_update=m["vision_update"], backbone=m["backbone"],
            description="Published checkpoint evaluated in the paper (Table 6).",
        )
        for m in data["models"]
    }
    variants = [
        replace(defaults[model], variant=table["variant"],
                vision_update=table.get("vision_update", defaults[model].vision_update),
                description=f"{table['table']} ablation: {table.get('note', table['variant'])}")
        for table in data["tables"] if table["variant"] != "default" for model in table["columns"]
    ]
    return [*defaults.values(), *variants]


def paper_datasets() -> list[DatasetRecord]:
    return [
        DatasetRecord(
            dataset=d["dataset"], benchmark="MMEB", meta_task=d["meta_task"], in_domain=not d["ood"],
            query_modality=MODALITY_NAMES[d["query"]], target_modality=MODALITY_NAMES[d["target"]],
            n_train=d["n_train"], n_eval=d["n_eval"], n_candidates=d["n_candidates"],
        )
        for d in paper_data()["datasets"]
    ]


@dataclass(frozen=True)
class PaperScore:
    table: str
    model: str
    variant: str
    meta_task: str
    dataset: str
    value: float


def paper_scores() -> list[PaperScore]:
    out = []
    for table in paper_data()["tables"]:
        for name, values in table["rows"].items():
            for model, value in zip(table["columns"], values, strict=True):
                out.append(PaperScore(table["table"], model, table["variant"], table["meta_task"],
                                      canonical_dataset(name), float(value)))
    return out


def _run_id(model: str, table: str) -> str:
    return f"paper:{model}:{table.lower().replace(' ', '')}"


def paper_runs() -> list[RunRecord]:
    data = paper_data()
    split_claims = [c for claim in data["text_claims"] for c in claim.get("split_averages", [])]
    runs = []
    for table in data["tables"]:
        for j, model in enumerate(table["columns"]):
            run_id = _run_id(model, table["table"])
            scores = [
                ScoreRecord(canonical_dataset(name), METRIC, float(values[j]), n_queries=1000)
                for name, values in table["rows"].items()
            ]
            reported = [ReportedAverage(table["meta_task"], "all", METRIC, float(table["printed_average"]["values"][j]),
                                        f"{table['table']}, row '{table['printed_average']['label']}'")]
            if table["variant"] == "default":
                reported += [
                    ReportedAverage(c["meta_task"], c["split"], METRIC, float(c["value"]), "Section 5 text")
                    for c in split_claims
                    if c["model"] == model and c["meta_task"] == table["meta_task"]
                ]
            runs.append(RunRecord(
                run_id=run_id, source="paper", model=model, label=table["table"], variant=table["variant"],
                experiment="paper", train_task=table["meta_task"], stage="final",
                config=dict(data["training"], meta_task=table["meta_task"], variant=table["variant"]),
                code_version="paper", notes=table.get("note"), scores=scores, reported=reported,
            ))
    return runs
