"""`vlmembed demo`: pretrain, fine-tune and evaluate tiny versions of the four seed VLMs (and a CLIP-like baseline) on CPU."""

from __future__ import annotations

import argparse
import time

from pipeline.cli import Command, UserError
from pipeline.cli._common import add_store_argument, store_path


def _add(parser: argparse.ArgumentParser) -> None:
    add_store_argument(parser)
    parser.add_argument("--small", action="store_true",
                        help="the quick variant (small benchmark, shorter training; about 5 min on 2 cores)")
    parser.add_argument("--workers", type=int, default=None,
                        help="families built side by side, one process and one torch thread each "
                             "(default: one per CPU core, at most one per family)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads with --workers 1 (default: torch's choice)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _run(args: argparse.Namespace) -> int:
    import torch

    from pipeline.demo.build import PRESETS, build_demo

    if args.threads:
        torch.set_num_threads(args.threads)
    config = PRESETS["small" if args.small else "full"]
    path = store_path(args)
    tick = time.perf_counter()

    def done(model, runs):
        print(f"{model.name}: {len(runs)} runs stored ({time.perf_counter() - tick:.0f}s so far)", flush=True)

    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    report = build_demo(path, config, progress=not args.no_progress, on_model_done=done, workers=args.workers)
    print(f"demo {config.name}: {len(report.runs)} new runs in {time.perf_counter() - tick:.0f}s -> {path}")
    return 0


COMMAND = Command(
    "demo", "build the demo: tiny VLMs of the four seed families and a CLIP-like baseline, pretrained and fine-tuned on CPU", _add, _run,
    description="Build the default store's demo runs: the paper's numbers plus tiny LLaVA-NeXT-, Qwen2.5-VL-, "
    "LaViDa- and MMaDA-like models and a CLIP-like dual encoder (MMEB's standard baseline), each pretrained on "
    "the built-in benchmark's captions with its own paradigm's objective, then contrastively fine-tuned and evaluated per meta-task with the real pipeline. "
    "Runs already stored are skipped, so an interrupted demo resumes. Demo runs carry source 'demo'.")
