"""`vlmembed export --format mteb|vlm2vec|parquet --out DIR [--run ID ...]`."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.cli import Command, UserError
from pipeline.cli._common import add_store_argument, store_path

EXPORT_FORMATS = ("mteb", "vlm2vec", "parquet")


def _add(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", required=True, choices=EXPORT_FORMATS,
                        help="mteb: a task result JSON per dataset; vlm2vec: <Dataset>_score.json files and a "
                             "leaderboard report; parquet: the store's tables and embeddings")
    parser.add_argument("--out", type=Path, required=True, help="folder to write (created if absent)")
    parser.add_argument("--run", nargs="+", metavar="ID", default=None, help="only these runs (default: every run)")
    add_store_argument(parser)


def _run(args: argparse.Namespace) -> int:
    from storage import StoreError

    try:
        if args.format == "parquet":
            from storage.parquet_export import export_parquet

            written = export_parquet(store_path(args), args.out, args.run)
        else:
            from pipeline.interop.store_io import export_results

            written = export_results(store_path(args), args.format, args.out, args.run)
    except (ValueError, StoreError) as exc:
        raise UserError(str(exc)) from exc
    print(f"wrote {len(written)} files under {args.out}")
    return 0


COMMAND = Command("export", "write runs as MTEB or VLM2Vec result files, or the store as Parquet", _add, _run,
                  description="Write stored runs in MTEB's result JSON (one file per dataset, 0-1 scale) or "
                  "VLM2Vec's <Dataset>_score.json files (hit@1, ndcg_linear@5 ...), one folder per run, or the "
                  "whole store as Parquet files (scores, ranks, items, runs, embeddings as fixed-size lists).")
