"""`vlmembed run EXPERIMENT.toml`: execute a grid, skipping runs already stored."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.cli import Command
from pipeline.cli._common import add_store_argument, store_path
from pipeline.cli._setup import setup_errors


def _add(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", type=Path, help="experiment TOML, e.g. experiments/smoke.toml (tiny, CPU) or experiments/paper.toml (the paper, GPU)")
    add_store_argument(parser)
    parser.add_argument("--only", nargs="+", metavar="MODEL", help="run only these model entries (by name)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: the experiment's)")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bars (for output sent to a log file); each run is still logged")


def _run(args: argparse.Namespace) -> int:
    from pipeline.experiment import Experiment
    from pipeline.runner import ExperimentRunner
    from storage import StoreWriter

    with setup_errors(str(args.experiment)):
        experiment = Experiment.from_toml(args.experiment)
        StoreWriter.check(store_path(args))  # a store problem now, in one line, not after the first training
        runner = ExperimentRunner(experiment, store_path(args), device=args.device, progress=not args.no_progress)
    landed = runner.run(only_models=set(args.only) if args.only else None)
    print(f"{len(landed)} runs stored in {store_path(args)}" + ("" if landed else " (everything was already stored)"))
    return 0


COMMAND = Command("run", "run an experiment grid (TOML) and store every run", _add, _run,
                  description="Train and evaluate every (model, meta-task) of an experiment TOML, landing each "
                  "evaluation (data-scale checkpoints and final) as a run in the store. Runs already stored with "
                  "the same configuration are skipped; an interrupted one resumes from its last checkpoint. "
                  "Scale past one machine with `accelerate launch -m pipeline.cli run ...`.")
