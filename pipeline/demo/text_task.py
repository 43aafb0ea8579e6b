"""The demo's fourth meta-task, 'text' (DiffEmbed in miniature): the miniatures' language models as
text-only embedders.

Each family's pretrained miniature (its paradigm's own pretraining, no contrastive fine-tuning)
embeds the built-in text-to-text task twice: bidirectional attention with mean pooling (DiffEmbed's
setting for diffusion LMs) and causal attention with last-token pooling (its setting for AR LMs).
The family's own setting is the run's 'default' variant, the other one a named variant, so the
Overview shows each model at its paradigm's setting and the Runs views show both. With no image in
the input, a VLM miniature is exactly its language model. The same is done for each family's final
model after contrastive fine-tuning on retrieval (stage 'final', train_task 'retrieval': the task
has no training split of its own), whose text side learned the scene descriptions. Runs land as
source 'demo' in the demo's experiment.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pandas as pd

from pipeline.experiment import ModelEntry
from pipeline.models.registry import get_family
from pipeline.runner import ExperimentRunner, resolve_data_root
from storage import StoreReader
from storage.paths import vlmembed_home
from storage.vocabulary import COMPARED_PARADIGMS, TEXT_META_TASK

log = logging.getLogger(__name__)

BIDIRECTIONAL_MEAN = {"attention": "bidirectional", "pooling": "mean"}
CAUSAL_LAST = {"attention": "causal", "pooling": "last"}
TEXT_EVAL_LIMIT = 100  # queries of the text task (the small benchmark has 100)
# The fine-tuned miniatures evaluated on text are the retrieval ones: their text side saw scene descriptions.
TRAINED_ON = "retrieval"


def text_settings(family: str) -> list[tuple[str, dict]]:
    """(variant, EncoderOptions overrides): the family's own paradigm setting as 'default', then the other.
    A dual encoder's text tower has one setting (its heads fix pooling and attention): its own, only."""
    spec = get_family(family).spec
    if spec.paradigm not in COMPARED_PARADIGMS:
        return [("default", {})]
    if spec.paradigm == "diffusion":
        return [("default", BIDIRECTIONAL_MEAN), ("causal-last", CAUSAL_LAST)]
    own = CAUSAL_LAST if spec.pooling == "last" else {"attention": "causal", "pooling": spec.pooling}
    return [("default", own), ("bidirectional-mean", BIDIRECTIONAL_MEAN)]


def text_runs(store: Path, config, miniature_dir: Callable[..., Path], progress: bool = True) -> list[str]:
    """Evaluate every pretrained miniature of `config` (a DemoConfig) on the text task in both settings;
    runs already stored are skipped, a miniature not pretrained yet is left out (logged).
    `miniature_dir(model, config, home)` is where a miniature was pretrained (the build's own rule)."""
    resolve_data_root(f"builtin:{config.bench}", config.seed, progress)  # adds the text task to an older build
    landed: list[str] = []
    reader = StoreReader(store)  # one read: the runs this build lands are never the ones checked below
    try:
        runs = reader.runs()
    finally:
        reader.close()
    stored = set(runs["run_id"])
    finals = _final_models(runs, TRAINED_ON)
    for model in config.models:
        base = miniature_dir(model, config, vlmembed_home())
        if not (base / "pretrain.json").is_file():
            log.warning("text task: %s has no pretrained miniature at %s yet; skipped", model.name, base)
            continue
        for variant, options in text_settings(model.family):
            entry = ModelEntry(name=model.name, family=model.family, base=str(base), variant=variant, options=options)
            # No embeddings stored: the search and alignment views keep to the runs of the tasks they serve.
            experiment = replace(config.experiment(model, base), meta_tasks=(TEXT_META_TASK,), models=(entry,),
                                 store_embeddings="none")
            experiment = replace(experiment, data=replace(experiment.data, eval_limit_by_task={
                **experiment.data.eval_limit_by_task, TEXT_META_TASK: TEXT_EVAL_LIMIT}))
            runner = ExperimentRunner(experiment, store, device="cpu", progress=progress)
            has_zero_shot = runner.run_id(entry, TEXT_META_TASK, "zero-shot", 0) in stored
            has_final = runner.run_id(entry, TEXT_META_TASK, "final", None) in stored
            if not has_zero_shot:
                landed += runner.evaluate_only(entry)
            trained = finals.get(model.name)
            if trained is not None and not has_final:
                landed += runner.evaluate_only(entry, trained, trained_on=TRAINED_ON)
    return landed


def _final_models(runs: pd.DataFrame, meta_task: str) -> dict[str, Path]:
    """{demo model: its final model folder after fine-tuning on `meta_task`}, for folders still on disk."""
    finals = runs[(runs["source"] == "demo") & (runs["stage"] == "final") & (runs["train_task"] == meta_task)]
    found = {r.model: Path(r.checkpoint) for r in finals.itertuples() if r.checkpoint and Path(r.checkpoint).is_dir()}
    return found
