"""`vlmembed migrate`: bring a store of an older schema up to date (a new file is swapped in)."""

from __future__ import annotations

import argparse

from pipeline.cli import Command
from pipeline.cli._common import add_store_argument, store_path


def _add(parser: argparse.ArgumentParser) -> None:
    add_store_argument(parser)


def _run(args: argparse.Namespace) -> int:
    from storage import SCHEMA_VERSION, StoreMissingError, StoreWriter

    path = store_path(args)
    if not path.exists():
        raise StoreMissingError(path)
    with StoreWriter(path):
        pass  # opening a writer migrates its working copy; leaving the block publishes it
    print(f"{path} is at schema version {SCHEMA_VERSION}")
    return 0


COMMAND = Command("migrate", "upgrade a store to the current schema version", _add, _run)
