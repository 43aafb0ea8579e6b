"""`vlmembed export-model`: a stored run's model as a Hugging Face-shaped folder with a card."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from pipeline.models.model_card import CardScore, ModelCard
from pipeline.models.model_folder import save_model_folder
from pipeline.models.recipe import EncoderRecipe
from storage import StoreReader


def run_checkpoint(reader: StoreReader, run_id: str) -> tuple[Path, dict]:
    """The run's model directory and its config; a one-line error says what is missing."""
    runs = reader.runs()
    match = runs[runs["run_id"] == run_id]
    if match.empty:
        raise ValueError(f"no run {run_id!r} in the store; list them with `vlmembed sql \"SELECT run_id FROM runs\"`")
    row = match.iloc[0]
    config = row["config"]
    config = json.loads(config) if isinstance(config, str) else (config or {})
    checkpoint = row["checkpoint"]
    if not isinstance(checkpoint, str) or not (Path(checkpoint) / "encoder.json").is_file():
        raise ValueError(f"run {run_id} has no model directory to export (checkpoint {checkpoint!r}); "
                         "only runs the pipeline trained or evaluated from a folder have one")
    return Path(checkpoint), config


def run_card(reader: StoreReader, run_id: str, checkpoint: Path, config: dict) -> ModelCard:
    scores = [CardScore(r.dataset, r.metric, float(r.value))
              for metric in reader.metrics() for r in reader.scores(metric, run_ids=[run_id]).itertuples()]
    recipe = json.loads((checkpoint / "encoder.json").read_text())
    model = config.get("model", {}).get("name") if isinstance(config.get("model"), dict) else None
    return ModelCard(name=model or run_id, recipe=recipe, run_id=run_id,
                     training={k: v for k, v in config.items() if k in ("train", "data", "meta_task", "experiment")},
                     scores=sorted(scores, key=lambda s: (s.metric != "precision@1", s.metric, s.dataset)))


def export_run_model(store: str | Path, run_or_dir: str, out: str | Path) -> Path:
    """Write the model of a stored run (by id) or of a checkpoint directory to `out`."""
    if Path(run_or_dir).is_dir():
        checkpoint = Path(run_or_dir)
        card = ModelCard(name=checkpoint.name, recipe=asdict(EncoderRecipe.load(checkpoint)))
    else:
        reader = StoreReader(store)
        checkpoint, config = run_checkpoint(reader, run_or_dir)
        card = run_card(reader, run_or_dir, checkpoint, config)
    return save_model_folder(checkpoint, out, card=card.markdown())
