"""`vlmembed eval`: evaluate a model without training and store the run."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.cli import Command
from pipeline.cli._common import add_store_argument, store_path
from pipeline.cli._setup import setup_errors
from pipeline.cli._single import add_model_and_data, experiment_from_args


def _add(parser: argparse.ArgumentParser) -> None:
    add_model_and_data(parser)
    add_store_argument(parser)
    parser.add_argument("--model-dir", type=Path, default=None,
                        help="a trained model directory (holds encoder.json, e.g. a run's checkpoint); "
                             "without it the --base model is evaluated zero-shot")


def _run(args: argparse.Namespace) -> int:
    from pipeline.runner import ExperimentRunner

    experiment = experiment_from_args(args)
    with setup_errors(args.data):
        runner = ExperimentRunner(experiment, store_path(args))
    landed = runner.evaluate_only(experiment.models[0], model_dir=args.model_dir)
    print(f"{len(landed)} runs stored in {store_path(args)}")
    return 0


COMMAND = Command("eval", "evaluate one model MMEB-style (Precision@1, Recall@5, MRR, NDCG@5) and store it", _add, _run)
