"""Arguments several subcommands share."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_store_argument(parser: argparse.ArgumentParser) -> None:
    from storage.paths import default_store_path

    parser.add_argument("--store", type=Path, default=None,
                        help=f"results store (DuckDB file); default $VLMEMBED_STORE or {default_store_path()}")


def store_path(args: argparse.Namespace) -> Path:
    from storage.paths import default_store_path

    return (args.store or default_store_path()).expanduser()
