"""The demo's baselines: chance and the blind text-only prior (`pipeline.stats.baselines`), and each
family's miniature with random weights, evaluated by the real pipeline; all stored as source 'baseline'.

`above_baseline` is what the README and docs/demo.md may claim: a final demo model is "above
baseline" on a meta-task only where the paired bootstrap interval of its average minus the
baseline's excludes zero (95%, i.e. the paired test at 0.05).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pandas as pd

from pipeline.data.mmeb import MMEBReader
from pipeline.experiment import ModelEntry
from pipeline.runner import ExperimentRunner, resolve_data_root
from pipeline.stats.baselines import store_baselines
from pipeline.stats.landing import compare_runs
from storage import StoreReader, StoreWriter

log = logging.getLogger(__name__)

UNTRAINED = "(tiny, untrained)"


def untrained_name(model_name: str) -> str:
    return model_name.replace("(tiny demo)", UNTRAINED) if "(tiny demo)" in model_name else f"{model_name} {UNTRAINED}"


def untrained_runs(store: Path, config, progress: bool = True) -> list[str]:
    """Evaluate each family's miniature with random weights (no pretraining, no fine-tuning) on the demo's
    benchmark, as 'baseline' runs; families already stored are skipped. `config`: a DemoConfig."""
    landed = []
    for model in config.models:
        entry = ModelEntry(name=untrained_name(model.name), family=model.family, base=f"random:tiny:{config.seed}")
        experiment = replace(config.experiment(model, Path(".")), name=f"{config.name}-untrained", source="baseline",
                             models=(entry,))
        runner = ExperimentRunner(experiment, store, device="cpu", progress=progress)
        with StoreWriter(store) as writer:
            done = all(writer.has_run(f"baseline:{experiment.name}:{entry.name}:{task}:default:zero-shot-0")
                       for task in experiment.meta_tasks)
        if done:
            continue
        landed += runner.evaluate_only(entry)
    return landed


def build_baselines(store: Path, config, progress: bool = True) -> list[str]:
    """Every demo baseline into `store`: untrained miniatures, then chance and blind over the stored rows."""
    landed = untrained_runs(store, config, progress)
    reader = MMEBReader(resolve_data_root(f"builtin:{config.bench}", config.seed, progress))
    with StoreWriter(store) as writer:
        landed += store_baselines(writer, reader, config.seed)
    return landed


def above_baseline(reader: StoreReader) -> pd.DataFrame:
    """Each final demo model's meta-task average against each baseline that ranked the same queries:
    model, meta_task, baseline, model score, baseline score, diff, lower, upper, above (lower > 0)."""
    runs = reader.runs()
    finals = runs[(runs["source"] == "demo") & (runs["stage"] == "final")]
    baselines = runs[runs["source"] == "baseline"]
    rows = []
    for final in finals.itertuples():
        for base in baselines.itertuples():
            untrained = UNTRAINED in base.model
            if untrained and base.model != untrained_name(final.model):
                continue  # an untrained miniature is the baseline of its own family only
            try:
                comparison, _ = compare_runs(reader, final.run_id, base.run_id)
            except ValueError:
                continue
            avg = comparison.averages
            avg = avg[(avg["split"] == "all") & (avg["meta_task"] == final.train_task)]
            for r in avg.itertuples():
                rows.append({"model": final.model, "meta_task": r.meta_task, "baseline": base.model,
                             "model_score": r.a, "baseline_score": r.b, "diff": r.diff, "lower": r.lower,
                             "upper": r.upper, "above": bool(r.lower > 0)})
    return pd.DataFrame(rows, columns=["model", "meta_task", "baseline", "model_score", "baseline_score", "diff",
                                       "lower", "upper", "above"])
