"""`vlmembed sql`: run one read-only query over the store and print the result."""

from __future__ import annotations

import argparse
import csv
import sys

from pipeline.cli import Command, UserError
from pipeline.cli._common import add_store_argument, store_path


def _add(parser: argparse.ArgumentParser) -> None:
    add_store_argument(parser)
    parser.add_argument("--csv", action="store_true", help="print CSV instead of an aligned table")
    parser.add_argument("--max-rows", type=int, default=10_000, help="stop after this many rows")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before the query is interrupted")
    parser.add_argument("query", help="one SELECT statement, e.g. \"SELECT * FROM v_scores LIMIT 5\"")


def _format_cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)) and len(value) > 6:
        return "[" + ", ".join(_format_cell(v) for v in value[:6]) + f", ... ({len(value)})]"
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return "" if value is None else str(value)


def _print_table(columns: list[str], rows: list[tuple]) -> None:
    cells = [[_format_cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def _run(args: argparse.Namespace) -> int:
    from storage import StoreReader, run_query

    reader = StoreReader(store_path(args))
    result = run_query(reader, args.query, max_rows=args.max_rows, timeout_s=args.timeout)
    if not result.ok:
        raise UserError(result.error)
    if args.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(result.columns)
        writer.writerows(result.rows)
    else:
        _print_table(result.columns, result.rows)
        print(f"({len(result.rows)} rows{', truncated' if result.truncated else ''}, {result.elapsed_s * 1000:.0f} ms)")
    return 0


COMMAND = Command("sql", "run a read-only SQL query over the store", _add, _run,
                  description="Run one read-only SQL query over the store. Tables: models, datasets, runs, "
                  "scores, items, dataset_rows, embeddings, ranks, train_log, projections, alignment, "
                  "reported_averages, intervals; views: v_scores, v_embeddings, v_meta_task_averages, v_intervals, dataset_items.")
