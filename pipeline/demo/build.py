"""`vlmembed demo`: the paper in miniature, built on a CPU in minutes.

For each of the four seed families a tiny preset (same classes as the real model) is
pretrained on the built-in benchmark's captions with its own paradigm's objective, saved in
the family's original checkpoint layout, then run through the real pipeline: zero-shot
evaluation, contrastive fine-tuning per meta-task with data-scale checkpoints, evaluation on
in-domain and OOD datasets, embeddings, projections and alignment metrics. Each family lands
in two stages: first its zero-shot runs and their maps (straight after pretraining, cheapest
family first, so every dashboard tab has this machine's own results within the first minutes),
then its fine-tuned runs. An open dashboard shows the demo growing, and a status file beside
the store (`pipeline.demo.status`) says how far the build is. Pretrained miniatures are cached
under ``<VLMEMBED_HOME>/demo`` and reused when their recipe is unchanged.

Families are built in parallel worker processes, one torch thread each: at 64-wide the
models are too small for two threads to help one process (1.1x measured), while two
processes on two cores give 1.9x. Each worker writes a private copy of the store; the parent
merges a family's runs into the store when the family is done.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import pandas as pd
import torch

from pipeline.data.mmeb import MMEBReader
from pipeline.demo import first_look
from pipeline.demo.baselines import build_baselines
from pipeline.demo.pretrain import PretrainConfig, pretrain, seed_token_embeddings
from pipeline.demo.status import DemoStatus
from pipeline.demo.text_task import text_runs
from pipeline.experiment import DataEntry, Experiment, ModelEntry
from pipeline.models.base import Example
from pipeline.models.registry import build
from pipeline.runner import ExperimentRunner, resolve_data_root
from pipeline.stats.landing import import_paper_with_intervals
from pipeline.train.config import TrainConfig
from storage import StoreReader, StoreWriter
from storage.paths import vlmembed_home
from storage.vocabulary import META_TASKS

log = logging.getLogger(__name__)

CAPTIONS = "Captions"  # the built-in benchmark's image-caption pretraining set
# Bump when the pretraining code changes what a miniature learns, so cached ones are rebuilt
# (2: the image tokenizer's bit balance is per position; version 1 tokenizers gave every image the same codes).
PRETRAIN_RECIPE = 2


@dataclass(frozen=True)
class DemoModel:
    name: str  # the store's model name; "tiny" marks it as a miniature
    family: str
    cost: float = 1.0  # relative build time (measured on 2 cores): the costliest start first


SEED_FAMILIES = (
    DemoModel("LLaVA-NeXT-like (tiny demo)", "llava_next", cost=1.6),  # five anyres views per image
    DemoModel("Qwen2.5-VL-like (tiny demo)", "qwen2_5_vl", cost=1.0),
    DemoModel("LaViDa-like (tiny demo)", "lavida", cost=1.1),
    DemoModel("MMaDA-like (tiny demo)", "mmada", cost=2.3),  # fits its image tokenizer first
)
# MMEB's standard baseline model in miniature: a CLIP dual encoder trained from scratch like the VLM
# miniatures (same token-embedding start, CLIP's own contrastive pretraining on the captions, then the
# same fine-tuning and evaluation). Paradigm 'dual-encoder': shown beside the VLMs, never in their AR-vs-diffusion gap.
DUAL_ENCODER_BASELINES = (DemoModel("CLIP-like (tiny demo)", "clip", cost=0.4),)
DEMO_MODELS = SEED_FAMILIES + DUAL_ENCODER_BASELINES


@dataclass(frozen=True)
class DemoConfig:
    """One demo build: the benchmark size, the pretraining and fine-tuning budgets."""

    name: str
    bench: str  # built-in benchmark size: small or full
    pretrain: PretrainConfig
    train: TrainConfig
    train_cap: int
    eval_limit: int  # queries per eval dataset
    eval_limit_by_task: dict[str, int] = field(default_factory=dict)  # per meta-task, overriding eval_limit
    models: tuple[DemoModel, ...] = DEMO_MODELS
    meta_tasks: tuple[str, ...] = META_TASKS
    seed: int = 0
    project_method: str | None = "umap"  # 2-D maps for the alignment view (None: skip)
    baselines: bool = True  # chance, blind text-only and untrained miniatures, as source 'baseline'
    text_task: bool = True  # the miniatures' LMs on the text-only task (pipeline/demo/text_task.py)
    # Land every family's zero-shot runs and maps before any fine-tuning. The trained runs are the same
    # either way (the trainer seeds itself; tested), only the order in which runs land changes.
    early_zero_shot: bool = True
    expected_s: float = 600.0  # measured wall time on 2 idle cores: the status line's first estimate
    # On a fresh store, land a labelled first look (pipeline/demo/first_look.py) while the benchmark
    # builds, so every tab has this machine's runs within the first minute; the full runs replace it.
    first_look: bool = True
    data: str = ""  # data root instead of builtin:<bench> (the first look's sample of it)

    def __post_init__(self) -> None:
        if self.bench not in ("small", "full"):
            raise ValueError(f"bench must be small or full, got {self.bench!r}")
        if not self.models:
            raise ValueError("a demo needs at least one model")

    def pretrain_key(self) -> str:
        """Names a pretrained miniature: changes whenever what it learned from, or how, changes."""
        key = {"bench": self.bench, "seed": self.seed, "pretrain": asdict(self.pretrain), "recipe": PRETRAIN_RECIPE}
        if self.data:  # another data root, other captions (unset: the keys of earlier builds stay)
            key["data"] = self.data
        blob = json.dumps(key, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:10]

    def data_root(self) -> str:
        return self.data or f"builtin:{self.bench}"

    def experiment(self, model: DemoModel, base: Path) -> Experiment:
        return Experiment(
            name=self.name, source="demo", meta_tasks=self.meta_tasks, zero_shot=True, eval_batch_size=64,
            store_embeddings="all", train=self.train,
            data=DataEntry(root=self.data_root(), selection="builtin", train_cap=self.train_cap,
                           eval_limit=self.eval_limit, eval_limit_by_task=dict(self.eval_limit_by_task),
                           seed=self.seed),
            models=(ModelEntry(name=model.name, family=model.family, base=str(base)),))


# Why these settings (measured on 2 cores, see docs/demo.md): at 64-wide, two-layer scale, LoRA r=8
# with a frozen vision tower stays at chance (the miniature's vision tower saw only a few dozen
# captioning steps), so the demo fine-tunes fully; temperature 0.05 rather than the paper's 0.02,
# at which the miniatures' near-identical initial embeddings collapse to a uniform loss; a few
# hundred steps, because below ~100 the miniatures do not move off their zero-shot scores; batches
# of one dataset with false negatives masked, because mixed batches teach little beyond telling
# datasets apart (Qwen2.5-VL-like classification, 250 steps, 100 queries per dataset: 15.9 -> 20.4).
def _train(batch: int, steps: int, checkpoint_samples: tuple[int, ...]) -> TrainConfig:
    return TrainConfig(global_batch_size=batch, chunk_size=batch, learning_rate=5e-4, warmup_ratio=0.1,
                       max_steps=steps, temperature=0.05, hard_negatives=1, lora=None,
                       mask_false_negatives=True, batch_by_dataset=True, checkpoint_samples=checkpoint_samples)


# 120 pretraining steps for --small: at 60 the miniatures' image features were still nearly constant
# across images (Qwen2.5-VL-like retrieval 0.5 P@1, chance 2.0). Classification and VQA score a few
# shared labels per query, so more of their queries are cheap and steady the binary LFWFaces score.
PRESETS: dict[str, DemoConfig] = {
    "small": DemoConfig(name="demo-small", bench="small", train_cap=300, eval_limit=20,
                        eval_limit_by_task={"classification": 100, "vqa": 100},
                        pretrain=PretrainConfig(steps=120, tokenizer_steps=40),
                        train=_train(batch=16, steps=250, checkpoint_samples=(1600,)), expected_s=272),
    "full": DemoConfig(name="demo", bench="full", train_cap=1000, eval_limit=40,
                       eval_limit_by_task={"classification": 200, "vqa": 200},
                       pretrain=PretrainConfig(steps=160, tokenizer_steps=120),
                       train=_train(batch=32, steps=240, checkpoint_samples=(1280, 3840)), expected_s=578),
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
        p = config.pretrain
        tokenizer_losses = image_tokenizer.fit([c.image for c in captions], steps=p.tokenizer_steps,
                                               batch_size=p.batch_size, seed=p.seed, progress=progress)
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
    baselines: list[str] = field(default_factory=list)  # runs of source 'baseline' (re)measured
    text: list[str] = field(default_factory=list)  # the miniatures' text-task runs
    first_look: list[str] = field(default_factory=list)  # landed early, replaced by the full runs since


# A family's build in stages: "first" pretrains and lands the zero-shot runs with their maps, "rest"
# fine-tunes (its zero-shot runs already stored, so skipped), "all" does both in one go.
PHASES = {"first": "pretraining and zero-shot", "rest": "fine-tuning", "all": "pretraining and fine-tuning"}


@dataclass
class FamilyBuild:
    """What one worker built: the runs it landed in its store copy, and its stage times."""

    model: DemoModel
    store: Path
    runs: list[str]
    seconds: dict[str, float]
    phase: str = "all"


def default_workers(n_models: int) -> int:
    """One worker per core the process may use, at most one per model."""
    return max(1, min(n_models, len(os.sched_getaffinity(0))))


def build_family(model: DemoModel, config: DemoConfig, store: Path, progress: bool = True,
                 threads: int | None = None, log_level: int | None = None, phase: str = "all") -> FamilyBuild:
    """Pretrain (or reuse) `model`'s miniature and run `phase` of it through the pipeline into `store`.

    Runs already in `store` with this configuration are skipped. A worker process's entry point.
    """
    if log_level is not None and not logging.getLogger().handlers:  # a fresh worker process
        logging.basicConfig(level=log_level, format=f"%(asctime)s %(levelname)s [{model.family}] %(name)s: %(message)s",
                            datefmt="%H:%M:%S")
    if threads:
        torch.set_num_threads(threads)
    seconds = {}
    tick = time.perf_counter()
    base = miniature_dir(model, config, vlmembed_home())
    if (base / "pretrain.json").is_file():
        log.info("reusing the pretrained %s at %s", model.name, base)
    else:
        reader = MMEBReader(resolve_data_root(config.data_root(), config.seed))
        pretrain_miniature(model, config, caption_examples(reader, config.seed), base, progress)
        seconds[f"{model.family}:pretrain"] = time.perf_counter() - tick
    tick = time.perf_counter()
    stage = "zero-shot " if phase == "first" else ""
    landed = ExperimentRunner(config.experiment(model, base), store, device="cpu", progress=progress).run(
        zero_shot_only=phase == "first")
    seconds[f"{model.family}:{stage}runs"] = time.perf_counter() - tick
    if config.project_method and landed:
        tick = time.perf_counter()
        from pipeline.analysis.store_projections import project_store

        project_store(store, run_ids=landed, methods=(config.project_method,), progress=progress)
        seconds[f"{model.family}:{stage}project"] = time.perf_counter() - tick
    return FamilyBuild(model, store, landed, seconds, phase)


def _is_complete(model: DemoModel, config: DemoConfig, home: Path, writer: StoreWriter) -> bool:
    runner = ExperimentRunner(config.experiment(model, miniature_dir(model, config, home)), writer.path, device="cpu")
    return all(runner.is_stored(writer, entry, task) for task, entry in runner.exp.grid())


def _worker_store(store: Path, model: DemoModel) -> Path:
    return store.with_name(f".{store.name}.{model.family}.worker-{os.getpid()}.duckdb")


def _remove_worker_stores(store: Path, model: DemoModel | None = None) -> None:
    for path in store.parent.glob(f".{store.name}.{model.family if model else '*'}.worker-*"):
        if path.is_dir():  # its embedding files (<worker store>.vectors); merged runs hold links of their own
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _die_with_parent(parent: int) -> None:
    """A worker ends with the build that started it (killed, or stopped by `vlmembed app` on
    exit) instead of finishing its family for nobody. Linux only; elsewhere a no-op."""
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != parent:  # the build died while this worker was starting
        os._exit(1)


Job = tuple[DemoModel, str]  # (family, phase)


class _Schedule:
    """Which job a free worker takes next: first stages cheapest family first (the dashboard fills
    soonest), then fine-tuning costliest first (the build ends soonest). A family's "rest" is ready
    once its "first" landed; a family whose first stage failed has no rest."""

    def __init__(self, order: Sequence[DemoModel], early: bool):
        self.first = sorted(order, key=lambda m: m.cost) if early else []
        self.whole = [] if early else list(order)
        self.ready: list[DemoModel] = []

    def landed(self, model: DemoModel, phase: str) -> None:
        if phase == "first":
            self.ready = sorted([*self.ready, model], key=lambda m: -m.cost)

    def next(self) -> Job | None:
        for queue, phase in ((self.first, "first"), (self.whole, "all"), (self.ready, "rest")):
            if queue:
                return queue.pop(0), phase
        return None


def _built(schedule: _Schedule, config: DemoConfig, start_copy: Callable[[DemoModel], Path], workers: int,
           progress: bool, running: Callable[[list[Job]], None]) -> Iterator[tuple[Job, Callable[[], FamilyBuild]]]:
    """(job, its result's getter) as each job finishes; the getter raises what the build raised.
    The consumer lands (or records the failure of) each job before the next is taken."""
    if workers == 1:
        while (job := schedule.next()) is not None:
            running([job])
            yield job, partial(build_family, job[0], config, start_copy(job[0]), progress, phase=job[1])
        return
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    level = logging.getLogger().getEffectiveLevel()
    # spawn, not fork: a forked torch process can deadlock in its thread pools
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_die_with_parent, initargs=(os.getpid(),)) as pool:
        busy: dict = {}
        while True:
            while len(busy) < workers and (job := schedule.next()) is not None:
                model, phase = job
                busy[pool.submit(build_family, model, config, start_copy(model), False, 1, level, phase)] = job
            if not busy:
                return
            running(list(busy.values()))
            finished, _ = wait(busy, return_when=FIRST_COMPLETED)
            for future in finished:
                yield busy.pop(future), future.result


def _short(model: DemoModel) -> str:
    return model.name.replace(" (tiny demo)", "")


def _benchmark_worker(parent: int) -> None:
    """The process that builds the benchmark beside the first look. It yields to the first look
    and to the starting dashboard (a lower priority): nothing needs the benchmark before the first
    look is done, and on 2 cores the three would otherwise share them equally."""
    _die_with_parent(parent)
    with contextlib.suppress(OSError):
        os.nice(5)


def _land_first_look(writer: StoreWriter, store: Path, config: DemoConfig, status: DemoStatus,
                     report: DemoReport) -> set[str]:
    """Build the benchmark in another process while the first look lands here (one core each);
    returns the items the first look's runs use. A failed first look is logged; the build goes on."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    model = first_look.first_look_config(config).models[0]
    look_items: set[str] = set()
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_benchmark_worker, initargs=(os.getpid(),)) as pool:
        bench = pool.submit(resolve_data_root, config.data_root(), config.seed, False)
        status.running = ["building the benchmark", f"{_short(model)}: first look (zero-shot on a sample)"]
        status.first_look, status.first_look_s = "running", first_look.EXPECTED_S
        status.write(store)
        threads, tick = torch.get_num_threads(), time.perf_counter()
        copy = _worker_store(store, model)
        try:
            torch.set_num_threads(1)  # the benchmark build has the other core
            shutil.copyfile(store, copy)
            report.first_look = first_look.land(writer, config, copy, build_family)
            writer.publish(keep_open=True)
            look_items, status.first_look = first_look.items_in_use(writer), "landed"
            report.seconds["first look"] = time.perf_counter() - tick
        except Exception as exc:  # noqa: BLE001 - the first look is a preview: the full build goes on
            log.warning("the first look failed, the full demo goes on: %s", exc)
            status.first_look = "failed"
        finally:
            torch.set_num_threads(threads)
            _remove_worker_stores(store, model)
        status.running = ["building the benchmark"]
        status.write(store)
        bench.result()
    return look_items


def build_demo(store: str | Path, config: DemoConfig, progress: bool = True,
               on_model_done: Callable[[DemoModel, list[str]], None] | None = None,
               workers: int | None = None) -> DemoReport:
    """Build (or complete) the demo in `store`; runs already stored are skipped.

    `workers` processes build families side by side (default: one per core); with one, all is
    done in this process. The build's progress is kept in `status_path(store)` for the dashboard.
    """
    store = Path(store).expanduser().resolve()
    workers = workers or default_workers(len(config.models))
    report = DemoReport()
    status = DemoStatus(families=[_short(m) for m in config.models], costs={_short(m): m.cost for m in config.models},
                        expected_s=config.expected_s, running=["building the benchmark"])
    with StoreWriter(store) as writer:  # held to the end: one demo build per store at a time
        status.write(store)
        tick = time.perf_counter()
        if not writer.has_run(source="paper"):
            import_paper_with_intervals(writer)
            writer.publish(keep_open=True)
        report.seconds["paper"] = time.perf_counter() - tick
        tick = time.perf_counter()
        _remove_worker_stores(store)  # left by a build that was killed
        # the items a first look's runs use, dropped with them when the first full runs land
        look_items = first_look.items_in_use(writer) if first_look.run_ids(writer) else set()
        if config.first_look and first_look.wanted(writer):  # the benchmark builds beside it
            look_items = _land_first_look(writer, store, config, status, report)
        else:  # built here, before any worker reads it
            resolve_data_root(config.data_root(), config.seed, progress)
        report.seconds["benchmark"] = status.benchmark_s = time.perf_counter() - tick
        home = vlmembed_home()
        todo = [m for m in config.models if not _is_complete(m, config, home, writer)]
        status.done = [_short(m) for m in config.models if m not in todo]
        order = sorted(todo, key=lambda m: -m.cost)
        workers = min(workers, max(1, len(order)))
        schedule = _Schedule(order, config.early_zero_shot)

        def land(built: FamilyBuild) -> None:
            nonlocal look_items
            writer.merge_runs(built.store, built.runs)
            if built.runs and look_items:  # in the same publish: the tabs never go empty
                first_look.retire(writer, look_items)
                look_items, status.first_look = set(), "replaced"
            if built.runs:
                writer.publish(keep_open=True)
            _remove_worker_stores(store, built.model)
            report.runs += built.runs
            report.seconds.update(built.seconds)
            schedule.landed(built.model, built.phase)
            (status.first_stage if built.phase == "first" else status.done).append(_short(built.model))
            status.write(store)
            if on_model_done and built.phase != "first":
                on_model_done(built.model, built.runs)

        # Each job starts from the published store, so runs stored before (a first stage) are skipped.
        def start_copy(model: DemoModel) -> Path:
            copy = _worker_store(store, model)
            shutil.copyfile(store, copy)
            if look_items:
                # The first look's embedding files go when the first full runs land, maybe while this
                # job still runs: a copy naming them would then be a store with missing files.
                with StoreWriter(copy) as worker_writer:
                    first_look.retire(worker_writer, set())
            return copy

        def running(jobs: list[Job]) -> None:
            status.running = [f"{_short(m)}: {PHASES[phase]}" for m, phase in jobs]
            status.write(store)

        failed: dict[str, BaseException] = {}
        for (model, _), result in _built(schedule, config, start_copy, workers, progress, running):
            try:  # a family that fails costs only its own runs: the others still land
                land(result())
            except Exception as exc:  # noqa: BLE001 - re-raised below, after the others landed
                log.error("building %s failed: %s", model.name, exc)
                failed[model.name] = exc
        if failed:
            name, first = next(iter(failed.items()))
            status.error = f"{len(failed)} of {len(order)} families failed ({', '.join(failed)})"
            status.write(store)
            raise RuntimeError(f"{len(failed)} of {len(order)} demo families failed ({', '.join(failed)}); the others' "
                               f"runs are stored. Run `vlmembed demo` again to retry them; {name}: {first}") from first
    if config.text_task:  # before the baselines, so chance also covers the text task's rows
        tick = time.perf_counter()
        status.running = ["the miniatures' LMs on the text-only task"]
        status.write(store)
        report.text = text_runs(store, config, miniature_dir, progress)
        report.seconds["text"] = time.perf_counter() - tick
    if config.baselines:
        tick = time.perf_counter()  # after the build's writer is released: the untrained runs open their own
        running_baselines = "baselines (chance, blind, untrained miniatures)"
        status.running = [running_baselines]
        status.write(store)
        report.baselines = build_baselines(store, config, progress)
        report.seconds["baselines"] = time.perf_counter() - tick
    status.running, status.finished = [], True
    status.write(store)
    return report


_ALIGNMENT_METRICS = ("paired_cosine_distance", "modality_gap", "q2t_recall@1", "t2q_recall@1")


def final_alignment(reader: StoreReader) -> pd.DataFrame:
    """Each demo model's image-text alignment after fine-tuning, averaged over its final runs' maps."""
    table = reader.final_alignment(_ALIGNMENT_METRICS, source="demo")
    return table.pivot(index=["model", "paradigm"], columns="metric", values="value").reset_index()


def final_vs_chance(reader: StoreReader) -> pd.DataFrame:
    """Each demo model's final Precision@1 per meta-task beside chance (mean 1 / #candidates)."""
    return reader.final_vs_chance(source="demo")
