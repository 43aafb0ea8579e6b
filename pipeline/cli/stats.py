"""`vlmembed stats`: compute the 95% intervals of every stored run (or some) into the `intervals` table."""

from __future__ import annotations

import argparse

from pipeline.cli import Command
from pipeline.cli._common import add_store_argument, store_path


def _add(parser: argparse.ArgumentParser) -> None:
    from pipeline.stats import LEVEL, RESAMPLES, SEED

    add_store_argument(parser)
    parser.add_argument("--run", action="append", dest="runs", metavar="RUN_ID",
                        help="only this run (repeatable); default every complete run")
    parser.add_argument("--missing", action="store_true", help="only runs that have no stored interval yet")
    parser.add_argument("--resamples", type=int, default=RESAMPLES, help="bootstrap resamples per dataset")
    parser.add_argument("--seed", type=int, default=SEED, help="seeds every dataset's resampling")
    parser.add_argument("--level", type=float, default=LEVEL, help="interval coverage")


def _run(args: argparse.Namespace) -> int:
    from pipeline.cli import UserError
    from pipeline.stats.landing import store_intervals
    from storage import StoreMissingError, StoreWriter
    from storage.intervals import runs_without_intervals

    if args.resamples < 100 or not 0.5 <= args.level < 1:
        raise UserError("use --resamples >= 100 and a --level between 0.5 and 1 (e.g. 0.95)")
    path = store_path(args)
    if not path.exists():
        raise StoreMissingError(path)
    with StoreWriter(path) as writer:
        runs = args.runs or (runs_without_intervals(writer) if args.missing else None)
        if runs == []:
            print(f"every run in {path} has its intervals")
            return 0
        n = store_intervals(writer, runs, resamples=args.resamples, seed=args.seed, level=args.level)
        if n == 0:
            raise UserError(f"no scores for {', '.join(runs) if runs else 'any run'} in {path}; "
                            "check the ids with `vlmembed sql \"SELECT run_id FROM runs\"`")
    print(f"stored {n} intervals ({args.level:.0%}, {args.resamples} resamples, seed {args.seed}) in {path}")
    return 0


COMMAND = Command("stats", "compute 95%% intervals of the stored scores (table intervals, view v_intervals)", _add,
                  _run, description="Compute each run's 95% intervals: a seeded bootstrap over its queries "
                  "(per dataset, per meta-task average, in-domain and OOD) where per-query ranks are stored, "
                  "Wilson intervals from each dataset's eval size n for the paper's numbers. Runs landed by "
                  "this version get them automatically; use this for stores made before schema version 3.")
