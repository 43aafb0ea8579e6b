"""`vlmembed import-paper`: load the paper's published numbers into the store."""

from __future__ import annotations

import argparse

from pipeline.cli import Command
from pipeline.cli._common import add_store_argument, store_path


def _add(parser: argparse.ArgumentParser) -> None:
    add_store_argument(parser)
    parser.add_argument("--fresh", action="store_true",
                        help="start a new store file instead of updating the existing one (drops every other run)")


def _run(args: argparse.Namespace) -> int:
    from pipeline.stats.landing import import_paper_with_intervals
    from storage import StoreWriter

    path = store_path(args)
    with StoreWriter(path, fresh=args.fresh) as writer:
        n = import_paper_with_intervals(writer)
    print(f"imported {n} paper runs (Tables 1-4, with Table 5 and 6 metadata) into {path}")
    return 0


COMMAND = Command("import-paper", "load the paper's published results into the store", _add, _run)
