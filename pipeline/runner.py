"""Executing an experiment grid: train, evaluate at data-scale points, land whole runs.

For each (model, meta-task) the runner trains on the meta-task's in-domain training sets,
evaluates on all of its datasets (in-domain and OOD) at every data-scale checkpoint and at
the end, and lands each evaluation as one run in the store (one transaction each; the new
store file is swapped in after every run so the dashboard shows progress). A (model,
meta-task) whose final run is stored with the same configuration is skipped; an
interrupted one resumes from its last training checkpoint.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from pipeline.data.dataset_info import DatasetInfo
from pipeline.data.mmeb import DatasetAbsent, MMEBReader
from pipeline.data.records import EvalRow, ItemRef, TrainPair, unique_items
from pipeline.data_plan import ABSENT, NO_ROWS, Skipped, absent, plan, selected
from pipeline.data_plan import notes as skipped_notes
from pipeline.eval.evaluator import EmbeddingCache, EvalResult, EvalTask, Evaluator
from pipeline.eval.metrics import TIE_RULE
from pipeline.experiment import DataEntry, Experiment, ModelEntry
from pipeline.main_process_store import MainProcessStore, Processes
from pipeline.models.base import VLMEncoder
from pipeline.models.lora import LoraSettings
from pipeline.models.model_card import ModelCard
from pipeline.models.model_folder import save_model_folder
from pipeline.models.recipe import WEIGHTS_FILE, EncoderRecipe
from pipeline.results import (
    dataset_record,
    dataset_rows,
    item_records,
    model_record,
    run_record,
    store_dataset_name,
)
from pipeline.stats.landing import store_intervals
from pipeline.train.checkpointing import CheckpointInfo, latest_checkpoint
from pipeline.train.trainer import ContrastivePair, ContrastiveTrainer, TrainResult
from storage import StoreWriter, config_hash
from storage.paths import builtin_bench_dir, vlmembed_home

log = logging.getLogger(__name__)


def resolve_data_root(root: str, seed: int = 0, progress: bool = True) -> Path:
    """A data folder; `builtin:small|full` builds the offline benchmark on first use."""
    if not root.startswith("builtin:"):
        return Path(root).expanduser()
    size = root.split(":", 1)[1]
    if size not in ("small", "full"):
        raise ValueError(f"unknown built-in benchmark size {size!r}; use builtin:small or builtin:full")
    out = builtin_bench_dir(size, seed)
    if not (out / "manifest.json").is_file():
        from pipeline.data.builtin import BuildConfig, build_benchmark

        log.info("building the built-in benchmark (%s) at %s", size, out)
        build_benchmark(BuildConfig(out=out, size=size, seed=seed, progress=progress))
    else:
        from pipeline.data.builtin.extend import add_missing_datasets, text_datasets

        add_missing_datasets(out, text_datasets())  # a benchmark built before the text task gains it
    return out


def open_reader(data: DataEntry) -> MMEBReader:
    """The reader of an experiment's [data]: a local folder, hub ids, or both. With a hub id the
    default root (the built-in benchmark) is not built: only a root given explicitly is read."""
    default_root = next(f.default for f in fields(DataEntry) if f.name == "root")
    use_root = not (data.hub or data.train_hub) or data.root != default_root
    root = resolve_data_root(data.root, data.seed) if use_root else None
    return MMEBReader(root, image_root=data.image_root, hub=data.hub, train_hub=data.train_hub,
                      train_split=data.train_split, eval_split=data.eval_split, infos=data.datasets)


@dataclass
class TaskData:
    """One meta-task's training pairs and evaluation rows, and the selected splits left out."""

    train: list[TrainPair]
    evals: dict[str, tuple[DatasetInfo, list[EvalRow]]]
    skipped: list[Skipped] = field(default_factory=list)

    def eval_tasks(self) -> list[EvalTask]:
        return [EvalTask(name, info.meta_task, info.in_domain, [(r.query.id, [c.id for c in r.candidates]) for r in rows])
                for name, (info, rows) in self.evals.items()]

    def items(self) -> dict[str, ItemRef]:
        return unique_items(row for _, rows in self.evals.values() for row in rows)

    def pair_items(self) -> set[str]:
        return {i for _, rows in self.evals.values() for r in rows for i in (r.query.id, r.candidates[0].id)}


def load_task_data(reader: MMEBReader, data: DataEntry, meta_task: str) -> TaskData:
    """The meta-task's selected datasets that are here; each absent or empty split is skipped
    (logged, and listed in `TaskData.skipped`), never an error."""
    train: list[TrainPair] = []
    evals, skipped = {}, []
    for info in selected(reader, data, meta_task):
        try:
            if info.has_train:
                train += reader.train(info.name, cap=data.train_cap, seed=data.seed)
        except DatasetAbsent as exc:
            skipped.append(Skipped(info.name, "train", ABSENT, str(exc)))
        try:
            rows = reader.eval(info.name, limit=data.eval_limit_for(meta_task), seed=data.seed)
        except DatasetAbsent as exc:
            skipped.append(Skipped(info.name, "eval", ABSENT, str(exc)))
            continue
        if rows:
            evals[info.name] = (info, rows)
        else:
            skipped.append(Skipped(info.name, "eval", NO_ROWS, "every row was skipped (see the read report)"))
    for s in skipped:
        log.warning("%s: skipping %s", meta_task, s.line())
    return TaskData(train, evals, skipped)


def _pairs_at(pairs: list[TrainPair]):
    def materialise(indices):
        return [ContrastivePair(*_examples(pairs[i]), positive_id=pairs[i].positive.id,
                                negative_ids=tuple(n.id for n in pairs[i].negatives)) for i in indices]

    return materialise


def _examples(pair: TrainPair):
    q, p, negs = pair.examples()
    return q, p, tuple(negs)


class ExperimentRunner:
    """Runs an experiment's grid into a store.

    `progress=False` turns off the trainer's and evaluator's progress bars (for output that goes to
    a log file, such as `vlmembed app`'s background demo); every finished training and every landed
    run is logged through `logging` either way.
    """

    def __init__(self, experiment: Experiment, store_path: str | Path, device: str | None = None,
                 progress: bool = True):
        self.exp = experiment
        self.store_path = Path(store_path)
        self.processes = Processes()
        # Under several processes each takes its own device (accelerate's choice for this rank).
        self.device = device or (str(self.processes.device) if self.processes.count > 1 else _pick_device(experiment.device))
        self.progress = progress and self.processes.is_main
        self.output_dir = Path(experiment.output_dir or vlmembed_home() / "runs" / experiment.name).expanduser()
        # The main process opens the reader first (building the built-in benchmark if it is missing);
        # the others open theirs once it is there.
        reader = self.processes.on_main(open_reader, experiment.data)
        self.reader = reader if reader is not None else open_reader(experiment.data)
        self._absent: dict[str, list[Skipped]] = {}
        self.cache = EmbeddingCache(self.output_dir / "embedding-cache")

    # -- identities ----------------------------------------------------------------------
    def run_config(self, entry: ModelEntry, meta_task: str) -> dict[str, Any]:
        model = {**asdict(entry), "train_vision": entry.vision_trained}  # the family's default resolved
        cfg = {"experiment": self.exp.name, "model": model, "meta_task": meta_task,
               "data": self.exp.data.to_config(), "train": self.exp.train_for(meta_task).to_dict(),
               "eval": {"metric": "precision@1", "tie_rule": TIE_RULE}}
        gone = self.absent_for(meta_task)
        if gone:  # so the cell runs again once the missing data is downloaded
            cfg["data_absent"] = sorted(f"{s.dataset}:{s.split}" for s in gone)
        return cfg

    def absent_for(self, meta_task: str) -> list[Skipped]:
        """The meta-task's selected splits whose files are not here (read once per runner)."""
        if meta_task not in self._absent:
            self._absent[meta_task] = absent(self.reader, selected(self.reader, self.exp.data, meta_task))
        return self._absent[meta_task]

    def run_id(self, entry: ModelEntry, meta_task: str, stage: str, samples: int | None) -> str:
        where = "final" if stage == "final" else f"{stage}-{samples}"
        return f"{self.exp.source}:{self.exp.name}:{entry.name}:{meta_task}:{entry.variant}:{where}"

    # -- the grid ------------------------------------------------------------------------
    def run(self, only_models: set[str] | None = None, zero_shot_only: bool = False) -> list[str]:
        """Run every (model, meta-task) not stored yet; returns the run ids landed.

        `zero_shot_only` lands each cell's zero-shot run and stops before training (an early first
        stage, as the demo does); a later full `run` skips those runs and trains. The trainer seeds
        itself, so the trained runs do not depend on whether the zero-shot one ran in between.
        """
        with library_progress_bars(self.progress):
            return self._run_grid(only_models, zero_shot_only)

    def is_stored(self, writer: StoreWriter | MainProcessStore, entry: ModelEntry, meta_task: str) -> bool:
        """Whether the cell's final run is stored with this configuration (then `run` skips it)."""
        return writer.has_run(self.run_id(entry, meta_task, "final", None),
                              config_hash(self.run_config(entry, meta_task)))

    def _run_grid(self, only_models: set[str] | None, zero_shot_only: bool = False) -> list[str]:
        landed: list[str] = []
        cells = [(t, e) for t, e in self.exp.grid() if not only_models or e.name in only_models]
        # Checked before the store is opened: a grid with nothing to run on leaves no store behind.
        usable = plan(self.reader, self.exp.data, list(dict.fromkeys(t for t, _ in cells)), where=self._where())
        with MainProcessStore(self.store_path, self.processes) as writer:
            loaded: dict[str, TaskData] = {}  # the grid goes meta-task by meta-task: one task's data at a time
            for meta_task, entry in cells:
                if meta_task not in usable:
                    continue
                cfg = self.run_config(entry, meta_task)
                if self.is_stored(writer, entry, meta_task):
                    log.info("skipping %s: already stored with this configuration",
                             self.run_id(entry, meta_task, "final", None))
                    continue
                if meta_task not in loaded:
                    loaded.clear()
                    loaded[meta_task] = load_task_data(self.reader, self.exp.data, meta_task)
                    self._register_data(writer, loaded[meta_task])
                if not self._trainable(loaded[meta_task], meta_task, entry):
                    continue
                landed += self._run_one(writer, entry, meta_task, loaded[meta_task], cfg, zero_shot_only)
        return landed

    def _where(self) -> str:
        hubs = [h for h in (self.exp.data.hub, self.exp.data.train_hub) if h]
        return ", ".join([str(self.reader.root)] * (self.reader.root is not None) + hubs)

    @staticmethod
    def _trainable(data: TaskData, meta_task: str, entry: ModelEntry) -> bool:
        """Whether a cell has what it needs once its data is read (rows can all turn out broken)."""
        if data.evals and data.train:
            return True
        lacking = "evaluation rows" if not data.evals else "training pairs"
        log.warning("skipping %s on %s: no %s left after reading (%s)", entry.name, meta_task, lacking,
                    "; ".join(s.line() for s in data.skipped) or "see the read report")
        return False

    def _register_data(self, writer: StoreWriter | MainProcessStore, data: TaskData) -> None:
        writer.upsert_datasets([dataset_record(info) for info, _ in data.evals.values()])
        writer.add_items(item_records(data.items().values()))
        for info, rows in data.evals.values():
            writer.set_dataset_rows(store_dataset_name(info), dataset_rows(store_dataset_name(info), rows))
        writer.publish(keep_open=True)

    def _land(self, writer: StoreWriter | MainProcessStore, entry: ModelEntry, meta_task: str, encoder: VLMEncoder, data: TaskData,
              cfg: dict[str, Any], *, stage: str, samples: int | None, checkpoint: str, history: Sequence[dict] = (),
              note: str = "", trained_on: str | None = None) -> str:
        """Evaluate the encoder as it is now and land the result as one run (`trained_on`: the meta-task
        a trained model learned, when it is not the one evaluated)."""
        run_id = self.run_id(entry, meta_task, stage, samples)
        started, tick = datetime.now(), time.perf_counter()
        result = self._evaluate(encoder, f"{run_id}:{config_hash(cfg)}", data)
        label = f"{meta_task} {stage}" + (f" @ {samples} samples" if stage == "checkpoint" else "") + note
        record = run_record(
            run_id=run_id, source=self.exp.source, model=entry.name, label=label, variant=entry.variant,
            experiment=self.exp.name, train_task=trained_on or (meta_task if stage != "zero-shot" else None), stage=stage,
            train_samples=samples, config=cfg, checkpoint=checkpoint, started_at=started,
            timings={"eval_s": time.perf_counter() - tick}, result=result,
            dataset_names={n: store_dataset_name(i) for n, (i, _) in data.evals.items()},
            row_positions={n: list(range(len(rows))) for n, (_, rows) in data.evals.items()},
            train_log=history, embed=self.exp.store_embeddings, pair_items=data.pair_items(),
            notes=skipped_notes(data.skipped))
        writer.add_run(record, replace=True)
        writer.with_writer(store_intervals, [run_id])
        writer.publish(keep_open=True)
        log.info("stored %s (evaluated and stored in %.1fs): %s", run_id, time.perf_counter() - tick, _summary(result))
        return run_id

    def _run_one(self, writer: StoreWriter | MainProcessStore, entry: ModelEntry, meta_task: str, data: TaskData,
                 cfg: dict[str, Any], zero_shot_only: bool = False) -> list[str]:
        writer.upsert_models([model_record(entry)])
        lora = self._lora(entry)
        recipe = EncoderRecipe(entry.family, entry.base, entry.dtype, dict(entry.options),
                               lora=asdict(lora) if lora else None)
        run_dir = self.output_dir / _slug(entry.name) / entry.variant / meta_task
        if run_dir.exists() and not writer.has_run(config_hash=config_hash(cfg)):
            # Resuming needs the runs landed before the interruption; checkpoints of another
            # configuration, or made for another store, would skip the data-scale runs (or, after
            # a new pretrained base, continue from the wrong weights).
            log.info("starting %s afresh: its checkpoints belong to runs this store does not hold", run_dir)
            self.processes.on_main(shutil.rmtree, run_dir)
        encoder = replace(recipe, lora=None).build(device=self.device)  # the trainer adds the adapters
        landed: list[str] = []
        if self.exp.zero_shot and not writer.has_run(self.run_id(entry, meta_task, "zero-shot", 0), config_hash(cfg)):
            base_dir = run_dir / "zero-shot"
            self.processes.on_main(replace(recipe, lora=None).save, base_dir)
            landed.append(self._land(writer, entry, meta_task, encoder, data, cfg, stage="zero-shot", samples=0,
                                     checkpoint=str(base_dir)))
        if zero_shot_only:
            return landed
        trainer = ContrastiveTrainer(encoder, replace(self.exp.train_for(meta_task), lora=lora), len(data.train),
                                     _pairs_at(data.train), run_dir / "checkpoints", progress=self.progress,
                                     groups=[p.dataset for p in data.train])
        scale_samples = trainer.data_scale_steps()

        def on_scale(info: CheckpointInfo) -> None:
            self.processes.on_main(replace(recipe, weights=WEIGHTS_FILE).save, info.path)
            landed.append(self._land(writer, entry, meta_task, encoder, data, cfg, stage="checkpoint",
                                     samples=scale_samples[info.step], checkpoint=str(info.path),
                                     history=trainer_history(info)))

        result = trainer.train(on_data_scale=on_scale)
        log.info("trained %s on %s: %s", entry.name, meta_task, _train_summary(result))
        final = latest_checkpoint(run_dir / "checkpoints")
        assert final is not None, "the trainer always checkpoints its last step"
        self.processes.on_main(replace(recipe, weights=WEIGHTS_FILE).save, final.path)
        landed.append(self._land(writer, entry, meta_task, encoder, data, cfg, stage="final", samples=result.samples,
                                 checkpoint=str(final.path), history=result.log))
        # The final model also as a PEFT / safetensors folder (the card's scores: `vlmembed export-model`)
        card = ModelCard(name=entry.name, recipe=asdict(recipe), run_id=landed[-1], training=cfg)
        self.processes.on_main(save_model_folder, final.path, final.path, card=card.markdown(), encoder=encoder)
        return landed

    def evaluate_only(self, entry: ModelEntry, model_dir: str | Path | None = None,
                      trained_on: str | None = None) -> list[str]:
        """Evaluate without training: the base model (zero-shot) or a trained model directory (which learned
        the meta-task `trained_on`; by default the one evaluated)."""
        with library_progress_bars(self.progress):
            return self._evaluate_only(entry, model_dir, trained_on)

    def _evaluate_only(self, entry: ModelEntry, model_dir: str | Path | None, trained_on: str | None) -> list[str]:
        from pipeline.models.recipe import load_encoder

        landed = []
        tasks = list(entry.meta_tasks or self.exp.meta_tasks)
        usable = plan(self.reader, self.exp.data, tasks, train=False, where=self._where())  # before the store opens
        with MainProcessStore(self.store_path, self.processes) as writer:
            writer.upsert_models([model_record(entry)])
            if model_dir is not None:
                recipe = EncoderRecipe.load(model_dir)
                encoder = load_encoder(model_dir, device=self.device)
                if entry.options:  # the entry's switches (e.g. attention, pooling) over the ones it was trained with
                    recipe = replace(recipe, options={**recipe.options, **entry.options})
                    encoder.set_options(recipe.encoder_options())
                stage, samples, where = "final", None, str(Path(model_dir).resolve())
            else:
                recipe = EncoderRecipe(entry.family, entry.base, entry.dtype, dict(entry.options))
                encoder = recipe.build(device=self.device)
                stage, samples, where = "zero-shot", 0, entry.base
            for meta_task in (t for t in tasks if t in usable):
                data = load_task_data(self.reader, self.exp.data, meta_task)
                if not data.evals:
                    log.warning("skipping %s: no evaluation rows left after reading", meta_task)
                    continue
                self._register_data(writer, data)
                cfg = {**self.run_config(entry, meta_task), "recipe": asdict(recipe), "evaluated": where}
                landed.append(self._land(writer, entry, meta_task, encoder, data, cfg, stage=stage, samples=samples,
                                         checkpoint=where, note=" (evaluation only)", trained_on=trained_on))
        return landed

    # -- pieces --------------------------------------------------------------------------
    def _lora(self, entry: ModelEntry) -> LoraSettings | None:
        lora = self.exp.train.lora
        if lora is None:
            return None
        return replace(lora, train_vision=lora.train_vision or entry.vision_trained)

    def _evaluate(self, encoder: VLMEncoder, model_key: str, data: TaskData) -> EvalResult:
        items = data.items()
        accelerator = None
        if self.processes.count > 1:  # shard the encoding over the processes, gather the embeddings
            from accelerate import Accelerator

            accelerator = Accelerator()
        evaluator = Evaluator(encoder, lambda i: items[i].example(), batch_size=self.exp.eval_batch_size,
                              cache=self.cache, model_key=model_key, progress=self.progress, accelerator=accelerator)
        return evaluator.evaluate(data.eval_tasks())


@contextlib.contextmanager
def library_progress_bars(enabled: bool) -> Iterator[None]:
    """Turn transformers' and huggingface_hub's own bars ("Loading weights", downloads) off while
    `enabled` is False, restoring their previous setting afterwards."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    if enabled or not was_enabled:
        yield
        return
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.enable_progress_bar()


def trainer_history(info: CheckpointInfo) -> list:
    state = torch.load(info.path / "state.pt", map_location="cpu", weights_only=False)
    return state.get("extra", {}).get("history", [])


def _summary(result: EvalResult) -> str:
    return ", ".join(f"{t}/{s} P@1 {v:.1f}" for (t, s), v in sorted(result.averages().items()))


def _train_summary(result: TrainResult) -> str:
    losses = [entry["loss"] for entry in result.log]
    loss = f", loss {losses[0]:.3f} -> {losses[-1]:.3f}" if losses else ""
    return f"{result.steps} steps, {result.samples} samples{loss} in {result.seconds:.1f}s"


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip("-")


def _pick_device(device: str) -> str:
    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"
