"""`vlmembed train`: contrastively fine-tune one model and store its evaluations."""

from __future__ import annotations

import argparse

from pipeline.cli import Command
from pipeline.cli._common import add_store_argument, store_path
from pipeline.cli._setup import setup_errors
from pipeline.cli._single import add_model_and_data, experiment_from_args, parse_overrides


def _add(parser: argparse.ArgumentParser) -> None:
    add_model_and_data(parser)
    add_store_argument(parser)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="training options (TrainConfig fields), e.g. global_batch_size=32 learning_rate=1e-4 "
                             "checkpoint_samples=[1000,5000] lora=false")


def _run(args: argparse.Namespace) -> int:
    from pipeline.runner import ExperimentRunner

    experiment = experiment_from_args(args, parse_overrides(args.set))
    with setup_errors(args.data):
        runner = ExperimentRunner(experiment, store_path(args))
    landed = runner.run()
    print(f"{len(landed)} runs stored in {store_path(args)}")
    return 0


COMMAND = Command("train", "fine-tune one model (InfoNCE, LoRA, GradCache) and store its evaluations", _add, _run)
