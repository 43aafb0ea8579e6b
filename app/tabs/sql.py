"""SQL console: one read-only query over the store, through `storage.run_query`.

Storage refuses anything but a single SELECT / EXPLAIN, bounds time and rows, and turns
every failure into a one-line message; this tab only shows the result or the message.
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

from app import tables
from app.store import StoreCache
from app.tabs.base import Context, Tab
from app.urlstate import Params, track, write_js
from storage import EXAMPLE_QUERIES, StoreError, run_query

MAX_ROWS, MAX_TIMEOUT_S = 10_000, 30.0
DEFAULT_ROWS, DEFAULT_TIMEOUT_S = 1000, 5.0
FIRST_EXAMPLE = next(iter(EXAMPLE_QUERIES))


def console(store: StoreCache, query: str, max_rows: float | None, timeout_s: float | None) -> tuple[str, pd.DataFrame]:
    """(status line, result table); never raises for bad input or a bad store."""
    rows = int(min(max(max_rows or DEFAULT_ROWS, 1), MAX_ROWS))
    timeout = float(min(max(timeout_s or DEFAULT_TIMEOUT_S, 0.1), MAX_TIMEOUT_S))
    try:
        result = run_query(store.reader(), query or "", max_rows=rows, timeout_s=timeout)
    except StoreError as exc:
        return f"**Store unavailable.** {exc}", tables.no_rows()
    if not result.ok:
        return f"**Refused or failed:** {result.error}", tables.no_rows()
    more = f", cut at {rows} rows (raise the row cap or add a LIMIT)" if result.truncated else ""
    status = f"{len(result.rows)} rows in {result.elapsed_s * 1000:.0f} ms{more}."
    return status, tables.console_frame(result.columns, result.rows)


def build(ctx: Context) -> None:
    gr.Markdown("Read-only SQL over the store (DuckDB dialect). Tables: `models`, `datasets`, `runs`, `scores`, "
                "`reported_averages`, `items`, `dataset_rows`, `embeddings`, `ranks`, `train_log`, `projections`, "
                "`alignment`, `intervals`; views: `v_scores`, `v_meta_task_averages`, `v_embeddings`, `v_intervals`, "
                "`dataset_items`.")
    example = gr.Dropdown(list(EXAMPLE_QUERIES), value=FIRST_EXAMPLE, label="Example queries")
    query = gr.Code(EXAMPLE_QUERIES[FIRST_EXAMPLE], language="sql", label="Query", interactive=True,
                    elem_id="sql-query")
    with gr.Row():
        max_rows = gr.Number(DEFAULT_ROWS, label="Row cap", minimum=1, maximum=MAX_ROWS, precision=0)
        timeout = gr.Number(DEFAULT_TIMEOUT_S, label="Time limit (s)", minimum=0.1, maximum=MAX_TIMEOUT_S)
        run = gr.Button("Run", variant="primary", elem_id="sql-run")
    status = gr.Markdown(elem_id="sql-status")
    result = gr.Dataframe(label="Result", interactive=False, elem_id="sql-result")

    def execute(text: str, rows: float, seconds: float) -> tuple[str, pd.DataFrame]:
        return console(ctx.store, text, rows, seconds)

    def restore(request: gr.Request) -> tuple:
        p = Params.of(request)
        rows = p.number("rows", DEFAULT_ROWS, 1, MAX_ROWS)
        seconds = p.number("limit", DEFAULT_TIMEOUT_S, 0.1, MAX_TIMEOUT_S)
        if "sql" not in p:
            return gr.skip(), rows, seconds, "", tables.no_rows()
        text = p.text("sql")
        return text, rows, seconds, *execute(text, rows, seconds)

    example.input(lambda title: EXAMPLE_QUERIES.get(title, ""), [example], [query], api_name="sql_example",
                  show_progress="hidden", queue=False)
    run.click(execute, [query, max_rows, timeout], [status, result], api_name="sql", concurrency_limit=4)
    # The query enters the URL when it is run, not on every keystroke.
    run.click(None, [query], None, js=write_js("sql"), queue=False, api_visibility="private")
    ctx.on_load(restore, [query, max_rows, timeout, status, result])
    track(max_rows, "rows")
    track(timeout, "limit")


TAB = Tab(id="sql", title="SQL console", build=build)
