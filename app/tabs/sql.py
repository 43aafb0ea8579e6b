"""SQL console: one read-only query over the store, through `storage.run_query`.

Storage refuses anything but a single SELECT / EXPLAIN of one, runs each query on a
connection of its own, bounds its time, rows and bytes, and turns every failure into a
one-line message; this tab shares the console fairly (`app.fairness`: a few queries per
browser session, a query whose tab closed is stopped) and shows the result or the message.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path

import anyio
import gradio as gr
import pandas as pd

from app import tables
from app.fairness import ClientSlots, ConsoleSettings, client_gone
from app.store import StoreCache
from app.tabs.base import QUIET, Context, Tab
from app.urlstate import Params, track, write_js
from storage import EXAMPLE_QUERIES, StoreError, run_query
from storage.console import DEFAULT_TIMEOUT_S

MAX_ROWS = 10_000
DEFAULT_ROWS = 1000
FIRST_EXAMPLE = next(iter(EXAMPLE_QUERIES))
ANYONE = "-"  # the client key of calls without a session (the page's own on-load restore)
CSV_DIR = Path(tempfile.gettempdir()) / "vlmembed-app"


def result_csv(frame: pd.DataFrame) -> str | None:
    """The exact result (no rounding) as a CSV file named by its content; None for no rows."""
    if frame.empty:
        return None
    text = frame.to_csv(index=False)
    path = CSV_DIR / f"sql-{hashlib.sha1(text.encode()).hexdigest()[:12]}.csv"
    if not path.exists():
        CSV_DIR.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return str(path)


def shown(status: str, frame: pd.DataFrame) -> tuple[str, pd.DataFrame, str | None]:
    """(status, the table rounded for the screen, the exact CSV or None) of one query's answer."""
    return status, tables.display_frame(frame), result_csv(frame) if answered(status) else None


def answered(status: str) -> bool:
    return not status.startswith("**")  # a refusal or failure is its status line alone


def console(store: StoreCache, query: str, max_rows: float | None, timeout_s: float | None,
            settings: ConsoleSettings = ConsoleSettings(), slots: ClientSlots | None = None, client: str = ANYONE,
            cancelled: Callable[[], bool] | None = None) -> tuple[str, pd.DataFrame]:
    """(status line, result table); never raises for bad input or a bad store."""
    rows = int(min(max(max_rows or DEFAULT_ROWS, 1), MAX_ROWS))
    timeout = float(min(max(timeout_s or settings.time_limit_s, 0.1), settings.time_limit_s))
    if slots is not None and not slots.acquire(client):
        return (f"**Refused or failed:** you already have {slots.limit} queries running; wait for one to finish "
                "(each stops after its time limit).", tables.no_rows())
    try:
        result = run_query(store.reader(), query or "", max_rows=rows, timeout_s=timeout, cancelled=cancelled)
    except StoreError as exc:
        return f"**Store unavailable.** {exc}", tables.no_rows()
    finally:
        if slots is not None:
            slots.release(client)
    if not result.ok:
        return f"**Refused or failed:** {result.error}", tables.no_rows()
    note = f", {result.note()}" if result.truncated else ""
    status = f"{len(result.rows)} rows in {result.elapsed_s * 1000:.0f} ms{note}."
    return status, tables.console_frame(result.columns, result.rows)


async def console_async(ctx: Context, slots: ClientSlots, query: str, max_rows: float | None,
                        timeout_s: float | None, request: gr.Request | None = None) -> tuple[str, pd.DataFrame]:
    """`console` in a worker thread; a cancelled event (Gradio's /cancel) or a closed tab stops the query
    at once, so its slot is free for the next one instead of held until the time limit."""
    client = getattr(request, "session_hash", None) or ANYONE
    stop = threading.Event()

    def cancelled() -> bool:
        return stop.is_set() or client_gone(ctx.blocks, client)

    run = partial(console, ctx.store, query, max_rows, timeout_s, ctx.console, slots, client, cancelled)
    try:
        return await anyio.to_thread.run_sync(run, abandon_on_cancel=True)
    except asyncio.CancelledError:
        stop.set()  # the watchdog interrupts the query within 0.1 s; the thread then frees the slot
        raise


def build(ctx: Context) -> None:
    gr.Markdown("Read-only SQL over the store (DuckDB dialect). Tables: `models`, `datasets`, `runs`, `scores`, "
                "`reported_averages`, `items`, `dataset_rows`, `dataset_items`, `embedding_files`, `embedding_rows`, "
                "`ranks`, `train_log`, `projections`, `alignment`, `intervals`; views: `v_scores`, "
                "`v_meta_task_averages`, `embeddings`, `v_embeddings`, `v_intervals`. Similarity: "
                "`embedding_cosine(run_id, row, query_run_id, query_row)` over `embedding_rows` (see the example).")
    example = gr.Dropdown(list(EXAMPLE_QUERIES), value=FIRST_EXAMPLE, label="Example queries", elem_id="sql-example")
    query = gr.Code(EXAMPLE_QUERIES[FIRST_EXAMPLE], language="sql", label="Query", interactive=True,
                    elem_id="sql-query")
    with gr.Row():
        max_rows = gr.Number(DEFAULT_ROWS, label="Row cap", minimum=1, maximum=MAX_ROWS, precision=0)
        limit = ctx.console.time_limit_s
        timeout = gr.Number(min(DEFAULT_TIMEOUT_S, limit), label="Time limit (s)", minimum=0.1, maximum=limit)
        run = gr.Button("Run", variant="primary", elem_id="sql-run")
    status = gr.Markdown(elem_id="sql-status")
    # Hidden until a query answered: an empty table would show placeholder headers before anything happened.
    with gr.Column(visible=False, elem_id="sql-answer") as answer:
        result = gr.Dataframe(label="Result (numbers rounded to 4 decimals; exact in the CSV)", interactive=False,
                              elem_id="sql-result")
        download = gr.DownloadButton("Download the result (CSV, exact values)", size="sm", elem_id="sql-csv")

    slots = ClientSlots(ctx.console.per_client)

    async def execute(text: str, rows: float, seconds: float, request: gr.Request) -> tuple:
        return shown(*await console_async(ctx, slots, text, rows, seconds, request))

    def restore(request: gr.Request) -> tuple:
        p = Params.of(request)
        rows = p.number("rows", DEFAULT_ROWS, 1, MAX_ROWS)
        seconds = p.number("limit", min(DEFAULT_TIMEOUT_S, limit), 0.1, limit)
        if "sql" not in p:
            return gr.skip(), gr.skip(), rows, seconds, "", gr.skip(), gr.skip(), gr.skip()
        text = p.text("sql")
        title = next((t for t, q in EXAMPLE_QUERIES.items() if q.strip() == text.strip()), None)
        out = shown(*console(ctx.store, text, rows, seconds, ctx.console, slots,
                             getattr(request, "session_hash", None) or ANYONE))
        return text, title, rows, seconds, *out, gr.update(visible=answered(out[0]))

    example.input(lambda title: EXAMPLE_QUERIES.get(title, ""), [example], [query], api_name="sql_example",
                  queue=False, **QUIET)
    # An edited query is no longer the example: the dropdown lets go of its title.
    query.input(lambda: None, None, [example], queue=False, api_visibility="private", **QUIET)
    run.click(execute, [query, max_rows, timeout], [status, result, download], api_name="sql",
              concurrency_limit=ctx.console.total, concurrency_id="sql-console", show_progress_on=[status]).then(
        lambda line: gr.update(visible=answered(line)), [status], [answer], queue=False, api_visibility="private",
        **QUIET)
    # The query enters the URL when it is run, not on every keystroke.
    run.click(None, [query], None, js=write_js("sql"), queue=False, api_visibility="private")
    ctx.on_load(restore, [query, example, max_rows, timeout, status, result, download, answer])
    track(max_rows, "rows", DEFAULT_ROWS)
    track(timeout, "limit", min(DEFAULT_TIMEOUT_S, limit))


TAB = Tab(id="sql", title="SQL console", build=build)
