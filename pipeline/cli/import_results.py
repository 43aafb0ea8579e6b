"""`vlmembed import FILE_OR_DIR --format mteb|vlm2vec --model NAME`."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.cli import Command, UserError
from pipeline.cli._common import add_store_argument, store_path
from storage.vocabulary import IMPORT_SOURCES, PARADIGMS


def _add(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="a result file or a folder of them")
    parser.add_argument("--format", required=True, choices=IMPORT_SOURCES,
                        help="mteb: task result JSONs; vlm2vec: <Dataset>_score.json files or a leaderboard report")
    parser.add_argument("--model", required=True, help="the model's name in the store")
    parser.add_argument("--paradigm", choices=PARADIGMS, default=None,
                        help="the model's paradigm; needed only when the store has no model of that name")
    add_store_argument(parser)


def _run(args: argparse.Namespace) -> int:
    from pipeline.interop.store_io import import_results
    from storage import StoreError

    if not args.path.exists():
        raise UserError(f"{args.path}: no such file or folder")
    try:
        report = import_results(store_path(args), args.format, args.path, args.model, args.paradigm)
    except (ValueError, StoreError) as exc:
        raise UserError(str(exc).splitlines()[0]) from exc
    skipped = f"; skipped (unknown here): {', '.join(report.skipped)}" if report.skipped else ""
    print(f"stored run {report.run_id}: {report.n_scores} scores on {len(report.datasets)} datasets{skipped}")
    return 0


COMMAND = Command("import", "store MTEB or VLM2Vec result files as a run of their own source", _add, _run,
                  description="Read MTEB result JSONs or VLM2Vec score files (v1 acc, v2 hit@1 / ndcg_linear@5, or "
                  "its leaderboard report) and store them as one run of source mteb or vlm2vec, scores in percent "
                  "under the store's metric names. Datasets are matched to the store's and MMEB's names; others are "
                  "skipped and listed.")
