"""`vlmembed baselines`: measure chance, the blind text-only prior and (for the demo) untrained miniatures."""

from __future__ import annotations

import argparse

from pipeline.cli import Command
from pipeline.cli._common import add_store_argument, store_path


def _add(parser: argparse.ArgumentParser) -> None:
    add_store_argument(parser)
    parser.add_argument("--data", default=None,
                        help="the benchmark whose training splits the blind baseline learns from, e.g. "
                             "builtin:small or an MMEB folder; without it only chance is measured")
    parser.add_argument("--untrained", choices=("small", "full"), default=None,
                        help="also evaluate the demo preset's miniatures with random weights")
    parser.add_argument("--seed", type=int, default=0, help="seeds chance and the blind baseline's tie breaks")


def _run(args: argparse.Namespace) -> int:
    from pipeline.data.mmeb import MMEBReader
    from pipeline.runner import resolve_data_root
    from pipeline.stats.baselines import store_baselines
    from storage import StoreMissingError, StoreWriter

    path = store_path(args)
    if not path.exists():
        raise StoreMissingError(path)
    landed = []
    if args.untrained:
        from pipeline.demo.baselines import untrained_runs
        from pipeline.demo.build import PRESETS

        landed += untrained_runs(path, PRESETS[args.untrained])
    data = MMEBReader(resolve_data_root(args.data, args.seed)) if args.data else None
    with StoreWriter(path) as writer:
        landed += store_baselines(writer, data, args.seed)
    print(f"stored {len(landed)} baseline runs in {path}" + ("" if args.data else
          " (chance only: pass --data to measure the blind text-only baseline)"))
    return 0


COMMAND = Command("baselines", "measure baselines (chance, blind text-only, untrained) as runs of source baseline",
                  _add, _run, description="Store measured baselines as runs of source 'baseline', with per-query "
                  "ranks, so `vlmembed compare` can test any model against them: uniform chance on every dataset "
                  "with stored eval rows; with --data, a blind model that ranks candidates from the query's text "
                  "alone (its training split's answer prior); with --untrained, the demo's miniatures with random "
                  "weights.")
