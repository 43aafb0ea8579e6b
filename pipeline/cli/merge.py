"""`vlmembed merge`: bring runs from stores written on other machines into one store."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.cli import Command, UserError
from pipeline.cli._common import add_store_argument, store_path


def _add(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("others", nargs="+", type=Path, metavar="OTHER.duckdb",
                        help="stores whose runs to bring in (each machine's share of a grid)")
    add_store_argument(parser)


def _run(args: argparse.Namespace) -> int:
    from storage import StoreWriter

    target = store_path(args)
    conflicts = 0
    with StoreWriter(target) as writer:
        for other in args.others:
            try:
                report = writer.merge_store(other)
            except (FileNotFoundError, ValueError) as exc:
                raise UserError(str(exc)) from exc
            print(f"{other}: {len(report.added)} runs added, {len(report.unchanged)} already here")
            for run_id in report.conflicting:
                print(f"  left alone: {run_id} is in {target} with other contents (configuration, status or "
                      "scores); delete one side's run to take the other")
            conflicts += len(report.conflicting)
    return 1 if conflicts else 0


COMMAND = Command("merge", "bring runs from other stores (other machines) into this one", _add, _run,
                  description="Copy every run of each OTHER store, whole (models, datasets, items, scores, ranks, "
                  "embeddings, maps), into --store. Merging twice changes nothing; a run id present on both sides "
                  "with different contents is reported and left alone (exit status 1); a store of another schema "
                  "version is refused.")
