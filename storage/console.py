"""The SQL console: any read query over the store, and nothing else.

Safety comes from DuckDB itself (see reader.SAFE_SETTINGS): the connection is read-only,
external access is off (no file or URL readers, COPY, ATTACH, INSTALL/LOAD) and the
configuration is locked (no SET / PRAGMA). On top of that we accept exactly one
statement, of a reading kind (parsed by DuckDB, not by string matching), bound its time
with `interrupt()` from a timer, and fetch at most `max_rows` rows.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import duckdb

from storage.reader import StoreReader

READING_STATEMENTS = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}

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
        "WITH q AS (SELECT vec FROM v_embeddings WHERE role = 'query' LIMIT 1)\n"
        "SELECT e.item_id, e.text,\n"
        "       list_cosine_similarity(e.vec, q.vec) AS cosine\n"
        "FROM v_embeddings e, q\n"
        "WHERE e.role = 'target' AND e.run_id = (SELECT run_id FROM v_embeddings LIMIT 1)\n"
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

    @property
    def ok(self) -> bool:
        return self.error is None


def _refusal(sql: str) -> str | None:
    if not sql.strip():
        return "Type a query first, e.g. SELECT * FROM v_scores LIMIT 10."
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        return f"Syntax error: {str(exc).splitlines()[0]}"
    if len(statements) != 1:
        return f"One statement at a time, please (got {len(statements)}). Remove the extra ';'."
    kind = statements[0].type
    if kind not in READING_STATEMENTS:
        name = str(kind).rsplit(".", 1)[-1]
        return f"The console only reads: {name} statements are refused. Use SELECT (or EXPLAIN)."
    return None


def run_query(reader: StoreReader, sql: str, max_rows: int = 1000, timeout_s: float = 5.0) -> ConsoleResult:
    """Run one read query; errors come back as a plain message, never an exception."""
    refusal = _refusal(sql)
    if refusal:
        return ConsoleResult(error=refusal)
    start = time.perf_counter()
    cur = reader.cursor()
    timer = threading.Timer(timeout_s, cur.interrupt)
    timer.start()
    try:
        cur.execute(sql)
        columns = [d[0] for d in (cur.description or [])]
        rows = cur.fetchmany(max_rows + 1)
    except duckdb.InterruptException:
        return ConsoleResult(error=f"Stopped after {timeout_s:g} s: the query took too long. Add a LIMIT or a filter.",
                             elapsed_s=time.perf_counter() - start)
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return ConsoleResult(error=first, elapsed_s=time.perf_counter() - start)
    finally:
        timer.cancel()
        cur.close()
    truncated = len(rows) > max_rows
    return ConsoleResult(columns=columns, rows=rows[:max_rows], truncated=truncated,
                         elapsed_s=time.perf_counter() - start)
