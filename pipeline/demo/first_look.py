"""The demo's first look: real runs of this machine within the first minute, kept until the full ones land.

Building the full benchmark alone takes a minute and a half on 2 cores, so the demo's own first
stage cannot land within the first minute. The first look does, beside that build (the benchmark
builds in another process): a small sample of the same built-in benchmark (`FIRST_LOOK_PLAN`,
written under ``<VLMEMBED_HOME>/bench/first-look-seed<seed>``), the cheapest miniature (the
CLIP-like dual encoder) pretrained briefly on its captions, its zero-shot runs on every meta-task
and their PCA maps. They are real runs, with experiment ``demo-first-look`` and a label saying what
they are, so every dashboard tab has content from this machine early.

They are provisional: the first full runs to land replace them (`retire`), with the items only they
used, in the same publish (the full runs bring the full benchmark's eval rows, which replace the
sample's), so the finished store holds the same runs and scores as a build without a first look.
It runs only on a store with no runs but the paper's: a fresh start. A first look that fails costs nothing but a log line: the full build goes on.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from pipeline.data.builtin.build import SizePlan
from storage import StoreWriter
from storage.paths import vlmembed_home

log = logging.getLogger(__name__)

EXPERIMENT = "demo-first-look"
# Enough eval queries for a score and a readable map, few train pairs (the runner wants some; a first
# look does not train), and captions for a short pretraining: this sample builds in seconds.
FIRST_LOOK_PLAN = SizePlan(n_train=32, n_eval=24, n_captions=800)
FIRST_LOOK_STEPS = 80  # pretraining steps: the CLIP-like miniature moves off chance within them
LABEL_NOTE = " (first look, on a sample)"
NOTE = ("First look: zero-shot on a small sample of the built-in benchmark (at most 24 queries per dataset), "
        "after a short pretraining; replaced by the full demo's runs when they land.")
EXPECTED_S = 45.0  # measured on 2 cores beside the benchmark build: the status line's estimate


def data_dir(seed: int) -> Path:
    return vlmembed_home() / "bench" / f"first-look-seed{seed}"


def build_data(seed: int) -> Path:
    """The first look's sample of the built-in benchmark (built once, then reused)."""
    from pipeline.data.builtin import BuildConfig, build_benchmark

    out = data_dir(seed)
    if not (out / "manifest.json").is_file():
        build_benchmark(BuildConfig(out=out, size="small", seed=seed, plan=FIRST_LOOK_PLAN, progress=False))
    return out


def first_look_config(config):
    """The first look of demo `config`: its cheapest model, zero-shot only, on the sample, PCA maps."""
    cheapest = min(config.models, key=lambda m: m.cost)
    limit = min(config.eval_limit, FIRST_LOOK_PLAN.n_eval)
    return replace(config, name=EXPERIMENT, data=str(data_dir(config.seed)), models=(cheapest,), eval_limit=limit,
                   eval_limit_by_task={}, project_method="pca", baselines=False, text_task=False,
                   pretrain=replace(config.pretrain, steps=min(config.pretrain.steps, FIRST_LOOK_STEPS)))


def land(writer: StoreWriter, config, copy: Path, build_family, progress: bool = False) -> list[str]:
    """Build the first look into `copy` (a copy of the published store) with the demo's
    `build_family` (passed in: the build imports this module) and merge its runs into `writer`,
    labelled as a first look; returns the run ids (published by the caller)."""
    build_data(config.seed)
    look = first_look_config(config)
    built = build_family(look.models[0], look, copy, progress=progress, phase="first")
    writer.merge_runs(copy, built.runs)
    with writer.transaction() as con:
        con.execute("UPDATE runs SET label = label || ?, notes = concat_ws(' ', ?, notes) "
                    "WHERE experiment = ? AND source = 'demo'", [LABEL_NOTE, NOTE, EXPERIMENT])
    return built.runs


def _rows(writer: StoreWriter, sql: str, params: list | None = None) -> list[tuple]:
    with writer.transaction() as con:
        return con.execute(sql, params or []).fetchall()


def run_ids(writer: StoreWriter) -> list[str]:
    """The first look's runs in the store (none once the full runs replaced them)."""
    return [r[0] for r in _rows(writer, "SELECT run_id FROM runs WHERE experiment = ? AND source = 'demo'",
                                [EXPERIMENT])]


def wanted(writer: StoreWriter) -> bool:
    """Whether a first look helps: a fresh store, with no runs but the paper's."""
    return not _rows(writer, "SELECT 1 FROM runs WHERE source <> 'paper' LIMIT 1")


def items_in_use(writer: StoreWriter) -> set[str]:
    """The items the store's eval rows, embeddings and maps refer to now. Taken before the first full
    runs are merged, while the first look's are the only ones (it runs on stores with no other)."""
    return {r[0] for r in _rows(
        writer, "SELECT item_id FROM dataset_items UNION SELECT item_id FROM embedding_rows "
        "UNION SELECT item_id FROM projections")}


def retire(writer: StoreWriter, look_items: set[str]) -> int:
    """Remove the first look's runs, and those of `look_items` nothing refers to any more (the full
    runs just merged replaced the sample's eval rows), from `writer`, in the caller's publish.
    Returns how many runs were removed."""
    ids = run_ids(writer)
    if not ids:
        return 0
    for run_id in ids:
        writer.delete_run(run_id)
    unused = sorted(set(look_items) - items_in_use(writer))
    with writer.transaction() as con:
        for start in range(0, len(unused), 10_000):
            chunk = unused[start:start + 10_000]
            con.execute(f"DELETE FROM items WHERE item_id IN ({', '.join('?' * len(chunk))})", chunk)
    log.info("replaced the first look's %d runs by the full demo's", len(ids))
    return len(ids)

