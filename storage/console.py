"""The SQL console: any read query over the store, and nothing else.

Safety comes from DuckDB itself: every query runs on a connection of its own
(`StoreReader.isolated_connection`) to a read-only host database with the store attached
read-only, external access off (no file or URL readers, COPY, ATTACH, INSTALL/LOAD), the
configuration locked (no SET / PRAGMA), a memory limit and no spilling to disk. The only
writable catalog is the connection's own `temp`, closed with it, so no request sees
another's. On top of that we accept exactly one
statement of a reading kind, typed by DuckDB's own parser: EXPLAIN [ANALYZE] only of a
SELECT, whose type is checked the same way. A watchdog thread `interrupt()`s the query at
its time limit or when the caller says it is no longer wanted (a closed browser tab), and
the result is cut at `max_rows` rows and `max_bytes` bytes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb

from storage.reader import StoreReader

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MAX_ROWS = 1000
DEFAULT_MAX_BYTES = 20 * 2**20
FETCH_CHUNK = 256

EXAMPLE_QUERIES = {
    "Per-dataset Precision@1 of the paper's models": (
        "SELECT dataset, model, value FROM v_scores\n"
        "WHERE source = 'paper' AND metric = 'precision@1' AND variant = 'default'\n"
        "ORDER BY meta_task, dataset, model"
    ),
    "AR vs diffusion, per meta-task, in-domain and OOD": (
        "SELECT source, paradigm, meta_task,\n"
        "       round(avg(value) FILTER (WHERE in_domain), 1) AS in_domain,\n"
        "       round(avg(value) FILTER (WHERE NOT in_domain), 1) AS ood\n"
        "FROM v_scores WHERE metric = 'precision@1' AND variant = 'default' AND stage = 'final'\n"
        "GROUP BY ALL ORDER BY source, meta_task, paradigm"
    ),
    "Paper vs recomputed averages": (
        "SELECT r.model, r.variant, a.meta_task, a.split, a.value AS printed,\n"
        "       round(avg(s.value) FILTER (WHERE a.split = 'all'\n"
        "             OR (a.split = 'in_domain') = s.in_domain), 2) AS recomputed\n"
        "FROM reported_averages a JOIN runs r USING (run_id)\n"
        "JOIN v_scores s ON s.run_id = a.run_id AND s.metric = a.metric\n"
        "GROUP BY ALL ORDER BY a.meta_task, r.model, a.split"
    ),
    "Meta-task averages with their 95% intervals": (
        "SELECT source, model, meta_task, split, round(value, 1) AS value,\n"
        "       round(lower, 1) AS lower, round(upper, 1) AS upper, method\n"
        "FROM v_intervals WHERE scope = 'average' AND metric = 'precision@1' AND variant = 'default'\n"
        "  AND stage = 'final' ORDER BY source, meta_task, split, value DESC"
    ),
    "Runs in the store": (
        "SELECT run_id, source, model, label, variant, stage, train_samples, finished_at\n"
        "FROM runs ORDER BY source, model, train_samples NULLS LAST"
    ),
    "Nearest candidates of one query (cosine over stored vectors)": (
        "WITH q AS (SELECT e.run_id, e.\"row\" FROM embedding_rows e\n"
        "           JOIN dataset_items d ON d.item_id = e.item_id AND d.role = 'query' LIMIT 1)\n"
        "SELECT e.item_id, i.text,\n"
        "       embedding_cosine(e.run_id, e.\"row\", q.run_id, q.\"row\") AS cosine\n"
        "FROM embedding_rows e JOIN q USING (run_id) JOIN items i USING (item_id)\n"
        "WHERE e.item_id IN (SELECT item_id FROM dataset_items WHERE role = 'target')\n"
        "ORDER BY cosine DESC LIMIT 10"
    ),
}


@dataclass
class ConsoleResult:
    columns: list[str] = field(default_factory=list)
    rows: list[tuple] = field(default_factory=list)
    truncated: bool = False
    elapsed_s: float = 0.0
    error: str | None = None
    truncated_by: str | None = None  # "rows" or "bytes" when the result was cut
    max_bytes: int = DEFAULT_MAX_BYTES

    @property
    def ok(self) -> bool:
        return self.error is None

    def note(self) -> str:
        """What the cut was, in words ("" when nothing was cut)."""
        if self.truncated_by == "bytes":
            return (f"truncated: cut at {len(self.rows)} rows, the result is over the {self.max_bytes / 2**20:g} MB cap "
                    "(select fewer or narrower columns, or add a LIMIT)")
        if self.truncated_by == "rows":
            return f"truncated: cut at {len(self.rows)} rows (raise the row cap or add a LIMIT)"
        return ""


def _kind_name(kind) -> str:
    return str(kind).rsplit(".", 1)[-1]


def _explained(statement: str) -> str:
    """The statement after EXPLAIN, EXPLAIN ANALYZE or EXPLAIN (options), located with DuckDB's tokenizer
    (comments skipped) so that it can be typed by the parser in turn."""
    tokens = [(pos, kind) for pos, kind in duckdb.tokenize(statement) if kind != duckdb.token_type.comment]
    i, depth = 1, 0  # tokens[0] is EXPLAIN itself
    while i < len(tokens):
        pos, kind = tokens[i]
        word = statement[pos:pos + 7].upper()
        if kind == duckdb.token_type.operator and statement[pos] == "(":
            depth += 1
        elif kind == duckdb.token_type.operator and statement[pos] == ")" and depth:
            depth -= 1
        elif depth == 0 and not (kind == duckdb.token_type.keyword and word in ("ANALYZE", "ANALYSE")):
            return statement[pos:]
        i += 1
    return ""


def _refusal(sql: str) -> str | None:
    if not sql.strip():
        return "Type a query first, e.g. SELECT * FROM v_scores LIMIT 10."
    try:
        statements = duckdb.extract_statements(sql)
    except (duckdb.Error, ValueError) as exc:  # ValueError: a statement type the Python enum lacks
        return f"Syntax error: {str(exc).splitlines()[0]}"
    if len(statements) != 1:
        return f"One statement at a time, please (got {len(statements)}). Remove the extra ';'."
    kind = statements[0].type
    if kind == duckdb.StatementType.EXPLAIN:
        inner = _explained(statements[0].query)
        try:
            inner_kinds = [s.type for s in duckdb.extract_statements(inner)] if inner.strip() else []
        except (duckdb.Error, ValueError):
            inner_kinds = []
        if not inner_kinds:
            return "EXPLAIN needs one SELECT after it, e.g. EXPLAIN SELECT * FROM runs."
        if inner_kinds != [duckdb.StatementType.SELECT]:
            return (f"The console only reads: EXPLAIN of a {_kind_name(inner_kinds[0])} statement is refused. "
                    "EXPLAIN a SELECT instead.")
        return None
    if kind != duckdb.StatementType.SELECT:
        return f"The console only reads: {_kind_name(kind)} statements are refused. Use SELECT (or EXPLAIN)."
    return None


def _size(value) -> int:
    """Rough bytes of one cell as the client receives it (text, numbers, lists)."""
    if isinstance(value, (str, bytes)):
        return len(value)
    if isinstance(value, (list, tuple)):
        return sum(_size(v) for v in value) + 2
    if isinstance(value, dict):
        return sum(_size(k) + _size(v) for k, v in value.items()) + 2
    return 8


class _Watchdog:
    """Interrupts a cursor at its deadline or as soon as `cancelled()` says so (checked every 0.1 s)."""

    def __init__(self, cur: duckdb.DuckDBPyConnection, timeout_s: float, cancelled: Callable[[], bool] | None):
        self.reason: str | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(cur, time.monotonic() + timeout_s, cancelled),
                                        daemon=True, name="sql-watchdog")
        self._thread.start()

    def _watch(self, cur, deadline: float, cancelled) -> None:
        while not self._done.wait(min(0.1, max(deadline - time.monotonic(), 0.0))):
            if time.monotonic() >= deadline:
                self.reason = "time"
            elif cancelled is not None and cancelled():
                self.reason = "cancelled"
            else:
                continue
            cur.interrupt()
            return

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def _fetch(cur: duckdb.DuckDBPyConnection, max_rows: int, max_bytes: int) -> tuple[list[tuple], str | None]:
    """At most `max_rows` rows and `max_bytes` bytes, and which cap cut the result (or None)."""
    rows: list[tuple] = []
    size = 0
    while True:
        chunk = cur.fetchmany(FETCH_CHUNK)
        if not chunk:
            return rows, None
        for row in chunk:
            if len(rows) == max_rows:
                return rows, "rows"
            size += sum(_size(v) for v in row)
            if size > max_bytes:
                return rows, "bytes"
            rows.append(row)


def run_query(reader: StoreReader, sql: str, max_rows: int = DEFAULT_MAX_ROWS, timeout_s: float = DEFAULT_TIMEOUT_S,
              max_bytes: int = DEFAULT_MAX_BYTES, cancelled: Callable[[], bool] | None = None) -> ConsoleResult:
    """Run one read query on a connection of its own; errors come back as a plain message, never an exception.

    `cancelled`, polled while the query runs, stops it early (the caller's client went away)."""
    refusal = _refusal(sql)
    if refusal:
        return ConsoleResult(error=refusal)
    start = time.perf_counter()
    con = reader.isolated_connection()
    watchdog = _Watchdog(con, timeout_s, cancelled)
    try:
        con.execute(sql)
        columns = [d[0] for d in (con.description or [])]
        rows, cut = _fetch(con, max_rows, max_bytes)
    except duckdb.InterruptException:
        why = (f"Stopped after {timeout_s:g} s: the query took too long. Add a LIMIT or a filter."
               if watchdog.reason != "cancelled" else "Stopped: the client that asked for it went away.")
        return ConsoleResult(error=why, elapsed_s=time.perf_counter() - start)
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return ConsoleResult(error=first, elapsed_s=time.perf_counter() - start)
    finally:
        watchdog.stop()
        con.close()
    return ConsoleResult(columns=columns, rows=rows, truncated=cut is not None, truncated_by=cut, max_bytes=max_bytes,
                         elapsed_s=time.perf_counter() - start)
