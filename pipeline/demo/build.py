"""`vlmembed demo`: the paper in miniature, built on a CPU in minutes.

For each of the four seed families a tiny preset (same classes as the real model) is
pretrained on the built-in benchmark's captions with its own paradigm's objective, saved in
the family's original checkpoint layout, then run through the real pipeline: zero-shot
evaluation, contrastive fine-tuning per meta-task with data-scale checkpoints, evaluation on
in-domain and OOD datasets, embeddings, projections and alignment metrics. Every run lands
in the store as soon as it is done (source ``demo``), so an open dashboard shows the demo
growing. Pretrained miniatures are cached under ``<VLMEMBED_HOME>/demo`` and reused when
their recipe is unchanged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import torch

from pipeline.data.mmeb import MMEBReader
from pipeline.demo.pretrain import PretrainConfig, pretrain, seed_token_embeddings, train_image_tokenizer
from pipeline.experiment import DataEntry, Experiment, ModelEntry
from pipeline.models.base import Example
from pipeline.models.registry import build
from pipeline.runner import ExperimentRunner, resolve_data_root
from pipeline.train.config import TrainConfig
from storage import StoreReader, StoreWriter
from storage.paper import import_paper
from storage.paths import vlmembed_home

log = logging.getLogger(__name__)

CAPTIONS = "Captions"  # the built-in benchmark's image-caption pretraining set


@dataclass(frozen=True)
class DemoModel:
    name: str  # the store's model name; "tiny" marks it as a miniature
    family: str


SEED_FAMILIES = (
    DemoModel("LLaVA-NeXT-like (tiny demo)", "llava_next"),
    DemoModel("Qwen2.5-VL-like (tiny demo)", "qwen2_5_vl"),
    DemoModel("LaViDa-like (tiny demo)", "lavida"),
    DemoModel("MMaDA-like (tiny demo)", "mmada"),
)


@dataclass(frozen=True)
class DemoConfig:
    """One demo build: the benchmark size, the pretraining and fine-tuning budgets."""

    name: str
    bench: str  # built-in benchmark size: small or full
    pretrain: PretrainConfig
    train: TrainConfig
    train_cap: int
    eval_limit: int
    models: tuple[DemoModel, ...] = SEED_FAMILIES
    meta_tasks: tuple[str, ...] = ("classification", "vqa", "retrieval")
    seed: int = 0
    project_method: str | None = "umap"  # 2-D maps for the alignment view (None: skip)

    def __post_init__(self) -> None:
        if self.bench not in ("small", "full"):
            raise ValueError(f"bench must be small or full, got {self.bench!r}")
        if not self.models:
            raise ValueError("a demo needs at least one model")

    def pretrain_key(self) -> str:
        """Names a pretrained miniature: changes whenever what it learned from changes."""
        blob = json.dumps({"bench": self.bench, "seed": self.seed, "pretrain": asdict(self.pretrain)}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:10]

    def experiment(self, model: DemoModel, base: Path) -> Experiment:
        return Experiment(
            name=self.name, source="demo", meta_tasks=self.meta_tasks, zero_shot=True, eval_batch_size=64,
            store_embeddings="all", train=self.train,
            data=DataEntry(root=f"builtin:{self.bench}", selection="builtin", train_cap=self.train_cap,
                           eval_limit=self.eval_limit, seed=self.seed),
            models=(ModelEntry(name=model.name, family=model.family, base=str(base)),))


# Why these settings (measured on 2 cores, see docs/demo.md): at 64-wide, two-layer scale, LoRA r=8
# with a frozen vision tower stays at chance (the miniature's vision tower saw only a few dozen
# captioning steps), so the demo fine-tunes fully; temperature 0.05 rather than the paper's 0.02,
# at which the miniatures' near-identical initial embeddings collapse to a uniform loss; a few
# hundred steps, because below ~100 the miniatures do not move off their zero-shot scores.
def _train(batch: int, steps: int, checkpoint_samples: tuple[int, ...]) -> TrainConfig:
    return TrainConfig(global_batch_size=batch, chunk_size=batch, learning_rate=5e-4, warmup_ratio=0.1,
                       max_steps=steps, temperature=0.05, hard_negatives=1, lora=None,
                       checkpoint_samples=checkpoint_samples)


PRESETS: dict[str, DemoConfig] = {
    "small": DemoConfig(name="demo-small", bench="small", train_cap=300, eval_limit=20,
                        pretrain=PretrainConfig(steps=60, tokenizer_steps=40),
                        train=_train(batch=16, steps=150, checkpoint_samples=(800,))),
    "full": DemoConfig(name="demo", bench="full", train_cap=1000, eval_limit=40,
                       pretrain=PretrainConfig(steps=160, tokenizer_steps=120),
                       train=_train(batch=32, steps=240, checkpoint_samples=(1280, 3840))),
}


def caption_examples(reader: MMEBReader, seed: int) -> list[Example]:
    pairs = reader.train(CAPTIONS, cap=None, seed=seed)
    if not pairs:
        raise ValueError(f"{reader.root} has no {CAPTIONS} pairs: rebuild it with `vlmembed build-bench`")
    return [Example("", pair.positive.text, pair.query.example().image) for pair in pairs]


def miniature_dir(model: DemoModel, config: DemoConfig, home: Path) -> Path:
    """Where `model`'s pretrained miniature lives; it is complete once `pretrain.json` is written."""
    return home / "demo" / f"{config.bench}-seed{config.seed}-{config.pretrain_key()}" / model.family


def pretrain_miniature(model: DemoModel, config: DemoConfig, captions: Sequence[Example], out: Path,
                       progress: bool = True) -> None:
    """Pretrain `model`'s tiny preset and save it at `out` in its family's original layout."""
    tick = time.perf_counter()
    torch.manual_seed(config.seed)
    encoder = build(model.family, "tiny", seed=config.seed)
    seed_token_embeddings(encoder)
    tokenizer_losses: list[float] = []
    if (image_tokenizer := encoder.image_tokenizer()) is not None:
        vq_model, image_size = image_tokenizer
        tokenizer_losses = train_image_tokenizer(vq_model, [c.image for c in captions], image_size,
                                                 config.pretrain, progress)
    losses = pretrain(encoder, captions, config.pretrain, progress)
    tmp = out.with_name(out.name + ".partial")
    encoder.save_original(tmp)
    (tmp / "pretrain.json").write_text(json.dumps({
        "family": model.family, "config": asdict(config.pretrain), "seconds": round(time.perf_counter() - tick, 1),
        "loss_first": losses[0], "loss_last": losses[-1], "losses": losses,
        "tokenizer_losses": tokenizer_losses}, indent=1))
    if out.exists():  # an interrupted earlier build: replace it whole
        shutil.rmtree(out)
    tmp.rename(out)


@dataclass
class DemoReport:
    runs: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def build_demo(store: str | Path, config: DemoConfig, progress: bool = True,
               on_model_done: Callable[[DemoModel, list[str]], None] | None = None) -> DemoReport:
    """Build (or complete) the demo in `store`; runs already stored are skipped."""
    store = Path(store)
    report = DemoReport()
    tick = time.perf_counter()
    with StoreWriter(store) as writer:
        if not writer.has_run(source="paper"):
            import_paper(writer)
    report.seconds["paper"] = time.perf_counter() - tick
    home = vlmembed_home()
    tick = time.perf_counter()
    reader = MMEBReader(resolve_data_root(f"builtin:{config.bench}", config.seed))
    report.seconds["benchmark"] = time.perf_counter() - tick
    captions: list[Example] = []  # read only if a miniature must be pretrained
    for model in config.models:
        tick = time.perf_counter()
        base = miniature_dir(model, config, home)
        if (base / "pretrain.json").is_file():
            log.info("reusing the pretrained %s at %s", model.name, base)
        else:
            captions = captions or caption_examples(reader, config.seed)
            pretrain_miniature(model, config, captions, base, progress)
        report.seconds[f"{model.family}:pretrain"] = time.perf_counter() - tick
        tick = time.perf_counter()
        runner = ExperimentRunner(config.experiment(model, base), store, device="cpu", progress=progress)
        landed = runner.run()
        report.seconds[f"{model.family}:runs"] = time.perf_counter() - tick
        if config.project_method and landed:
            tick = time.perf_counter()
            from pipeline.analysis.store_projections import project_store

            project_store(store, run_ids=landed, methods=(config.project_method,), progress=progress)
            report.seconds[f"{model.family}:project"] = time.perf_counter() - tick
        report.runs += landed
        if on_model_done:
            on_model_done(model, landed)
    return report


_FINAL_VS_CHANCE = """
SELECT r.model, s.meta_task, round(avg(s.value), 1) AS p_at_1,
       round(100 * avg(1.0 / c.n_candidates), 1) AS chance
FROM v_scores s JOIN runs r USING (run_id)
JOIN (SELECT dataset, avg(len(candidates)) AS n_candidates FROM dataset_rows GROUP BY dataset) c USING (dataset)
WHERE s.source = 'demo' AND r.stage = 'final' AND s.metric = 'precision@1' AND s.meta_task = r.train_task
GROUP BY ALL ORDER BY s.meta_task, r.model
"""


def final_vs_chance(reader: StoreReader) -> pd.DataFrame:
    """Each demo model's final Precision@1 per meta-task beside chance (mean 1 / #candidates)."""
    return reader.frame(_FINAL_VS_CHANCE)
