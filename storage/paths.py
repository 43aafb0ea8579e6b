"""Where the results store lives unless a command says otherwise."""

from __future__ import annotations

import os
from pathlib import Path


def vlmembed_home() -> Path:
    """`$VLMEMBED_HOME`, else ~/.cache/vlmembed: the store, the built-in benchmark, checkpoints."""
    return Path(os.environ.get("VLMEMBED_HOME", Path.home() / ".cache" / "vlmembed")).expanduser()


def builtin_bench_dir(size: str, seed: int = 0) -> Path:
    """Where the built-in benchmark of this size and seed lives: <home>/bench/<size>-seed<seed>.

    `builtin:<size>` data roots read it (and build it there on first use); `vlmembed build-bench`
    writes it there unless given --out.
    """
    return vlmembed_home() / "bench" / f"{size}-seed{seed}"


def default_store_path() -> Path:
    """`$VLMEMBED_STORE`, else <home>/store.duckdb."""
    env = os.environ.get("VLMEMBED_STORE")
    return Path(env).expanduser() if env else vlmembed_home() / "store.duckdb"


def blocking_file(path: Path) -> Path | None:
    """The first folder on `path`'s way that is really a regular file (so the store can never be
    there), or None."""
    for parent in reversed(Path(path).parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return None
