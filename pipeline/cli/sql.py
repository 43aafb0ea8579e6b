"""`vlmembed sql`: run one read-only query over the store and print the result."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from pipeline.cli import Command, UserError
from pipeline.cli._common import add_store_argument, store_path


def _add(parser: argparse.ArgumentParser) -> None:
    add_store_argument(parser)
    parser.add_argument("--csv", action="store_true", help="print CSV instead of an aligned table")
    parser.add_argument("--max-rows", type=int, default=10_000, help="stop after this many rows")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds before the query is interrupted")
    parser.add_argument("--max-mb", type=float, default=20.0, help="stop fetching once the result is this many MB")
    parser.add_argument("query", nargs="?", default=None,
                        help="one SELECT statement, e.g. \"SELECT * FROM v_scores LIMIT 5\"; - reads it from stdin")
    parser.add_argument("--file", "-f", metavar="F", default=None,
                        help="read the query from file F (- for stdin) instead of the command line")


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


def read_query(query: str | None, file: str | None) -> str:
    """The query from the command line, a file, or stdin (`-`); exactly one of them."""
    if (query is None) == (file is None):
        raise UserError("give the query either on the command line or with --file F (- for stdin), not both")
    source = file if file is not None else query
    if source == "-":
        text = sys.stdin.read()
    elif file is not None:
        try:
            text = Path(file).read_text(encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot read {file}: {exc.strerror}; check the path") from None
    else:
        text = query
    if not text.strip():
        raise UserError("the query is empty")
    return text


def _run(args: argparse.Namespace) -> int:
    from storage import StoreReader, run_query

    query = read_query(args.query, args.file)
    reader = StoreReader(store_path(args))
    if args.timeout <= 0 or args.max_rows < 1 or args.max_mb <= 0:
        raise UserError("--timeout, --max-rows and --max-mb must be positive")
    result = run_query(reader, query, max_rows=args.max_rows, timeout_s=args.timeout,
                       max_bytes=int(args.max_mb * 2**20))
    if not result.ok:
        raise UserError(result.error)
    if args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")  # csv's default is \r\n
        writer.writerow(result.columns)
        writer.writerows(result.rows)
    else:
        _print_table(result.columns, result.rows)
        print(f"({len(result.rows)} rows, {result.elapsed_s * 1000:.0f} ms)")
    if result.truncated:
        print(f"vlmembed sql: {result.note()}", file=sys.stderr)
    return 0


COMMAND = Command("sql", "run a read-only SQL query over the store", _add, _run,
                  description="Run one read-only SQL query over the store. Tables: models, datasets, runs, "
                  "scores, items, dataset_rows, dataset_items, embedding_files, embedding_rows, ranks, train_log, "
                  "projections, alignment, reported_averages, intervals; views: v_scores, embeddings, v_embeddings, "
                  "v_meta_task_averages, v_intervals. Rank by similarity with embedding_cosine(run_id, row, "
                  "query_run_id, query_row) over embedding_rows (README, 'Where embeddings live').")
