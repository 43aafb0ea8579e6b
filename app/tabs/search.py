"""Live retrieval: upload an image and/or type text, see every model's top-k side by side.

Each run's encoder is rebuilt from its checkpoint once per process (`pipeline.search`),
candidates are ranked in memory, and the query is placed on each model's stored map.
Bad input (a broken or huge image, an empty query) becomes a message; the search runs on
Gradio's queue with a small concurrency limit, so a burst of queries waits its turn and
memory stays bounded (encoders and candidate matrices live in bounded caches).
"""

from __future__ import annotations

import atexit
import hashlib
import io
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path

import gradio as gr
from PIL import Image

from app import search_view
from app.store import StoreCache
from app.tabs.base import Context, Tab
from app.urlstate import Params, track
from pipeline.search import QueryError, SearchEngine
from pipeline.search.engine import MAX_K
from pipeline.search.query import Query
from storage import StoreError
from storage.vocabulary import META_TASKS

log = logging.getLogger(__name__)

ALL = "all"
AUTO = "auto"  # the default runs follow the pool's meta-task (see SearchEngine.default_runs)
TASKS = [("auto (the pool's meta-task)", AUTO)] + [(t, t) for t in META_TASKS]
DEFAULT_K = 10
CONCURRENCY = 2  # encoders are CPU-bound; more parallel requests only queue inside torch
_ENGINES: dict[Path, SearchEngine] = {}
_ENGINES_LOCK = threading.Lock()
_PREVIEWS: list[Path] = []  # this process's preview folder, made on first use


def _preview_dir() -> Path:
    with _ENGINES_LOCK:
        if not _PREVIEWS:
            _PREVIEWS.append(Path(tempfile.mkdtemp(prefix="vlmembed-previews-")))
            atexit.register(shutil.rmtree, _PREVIEWS[0], True)
        return _PREVIEWS[0]


def preview_file(image: Image.Image) -> str:
    """The query image as the models got it, as a PNG file named by its content and never rewritten.

    Handing Gradio a PIL image instead makes it write `<cache>/<hash>/image.webp` in place on every
    request, so two searches with the same image rewrite the file one of them is serving (the client
    then sees "Too little data for declared Content-Length"). A file path is copied into Gradio's
    cache under a temporary name and renamed, and an existing copy is reused, never rewritten.
    """
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    data = buf.getvalue()
    path = _preview_dir() / f"{hashlib.sha256(data).hexdigest()}.png"
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)  # atomic: a reader sees no file or the whole file
    return str(path)


def engine_for(store: StoreCache) -> SearchEngine:
    """One engine (and so one set of loaded encoders) per store file per process."""
    with _ENGINES_LOCK:
        if store.path not in _ENGINES:
            _ENGINES[store.path] = SearchEngine(store.reader())
        return _ENGINES[store.path]


def _dataset(pool: str | None) -> str | None:
    return None if not pool or pool == ALL else pool


def _task(task: str | None) -> str | None:
    return None if not task or task == AUTO else task


def choices(store: StoreCache, pool: str | None = None, task: str | None = None) -> tuple[list, list, list[str]]:
    """(pool choices, run choices, default runs for the pool and trained-on task); empty when the
    store is unreadable."""
    try:
        engine = engine_for(store)
        pools = [("all stored items", ALL)] + [(d, d) for d in engine.datasets()]
        runs = [(r.title, r.run_id) for r in engine.runs()]
        return pools, runs, engine.default_runs(_dataset(pool), _task(task))
    except (StoreError, QueryError):
        return [("all stored items", ALL)], [], []


def default_runs(store: StoreCache, pool: str | None, task: str | None) -> list[str]:
    """The runs ticked for a pool and a trained-on choice: each model's final run trained on the
    chosen meta-task, or with "auto" on the pool's."""
    return choices(store, pool, task)[2]


def run_search(store: StoreCache, image: str | None, text: str | None, instruction: str | None, pool: str | None,
               run_ids: list[str] | None, k: float | None, task: str | None = AUTO) -> tuple:
    """(status, results HTML, maps HTML, JSON, the query image as the models get it (upright RGB), as a PNG
    file, or None); never raises for bad input. With no runs ticked, `task` chooses them (`default_runs`)."""
    empty = ('<div id="search-results"></div>', '<div id="search-maps"></div>')
    try:
        engine = engine_for(store)
        query = Query.build(text=text, instruction=instruction, image=image or None)
        result = engine.search(query, run_ids=run_ids or None, dataset=_dataset(pool),
                               k=int(min(max(k or DEFAULT_K, 1), MAX_K)), task=_task(task))
    except (QueryError, StoreError) as exc:
        return f"⚠️ {exc}", *empty, {"error": str(exc)}, None
    except Exception as exc:  # noqa: BLE001 - one failed query must not take the tab down
        log.exception("live search failed")
        return f"⚠️ The search failed: {type(exc).__name__}: {exc}", *empty, {"error": str(exc)}, None
    return (search_view.status_line(result), search_view.results_html(result), search_view.maps_html(engine, result), result.to_dict(),
            None if query.image is None else preview_file(query.image))


def build(ctx: Context) -> None:
    pools, runs, defaults = choices(ctx.store)
    gr.Markdown("Search the stored candidates with your own query. Every chosen model encodes it with its own "
                "trained encoder; results are side by side, the gold item is marked when the query is a stored one, "
                "and the ★ shows where the query lands on each model's map.")
    with gr.Row():
        with gr.Column(scale=1):
            # A file, not gr.Image: the upload reaches our checks (open_image) unopened, so a broken
            # file is our message rather than a Gradio error; the preview shows what the models got.
            image = gr.File(label="Query image (optional)", type="filepath", elem_id="search-image")
            seen = gr.Image(label="As the models see it (upright RGB)", type="filepath", interactive=False,
                            elem_id="search-seen", height=160)
        with gr.Column(scale=2):
            text = gr.Textbox(label="Query text (optional)", lines=2, elem_id="search-text")
            instruction = gr.Textbox(label="Instruction", elem_id="search-instruction",
                                     placeholder="e.g. Represent the given image for classification")
            with gr.Row():
                pool = gr.Dropdown(pools, value=ALL, label="Candidate pool", elem_id="search-pool")
                task = gr.Dropdown(TASKS, value=AUTO, label="Trained on", elem_id="search-task",
                                   info="ticks each model's final run trained on this meta-task")
                k = gr.Slider(1, MAX_K, value=DEFAULT_K, step=1, label="Top k", elem_id="search-k")
            models = gr.CheckboxGroup(runs, value=defaults, label="Models", elem_id="search-models",
                                      info="runs that stored embeddings; the demo that `vlmembed app` builds in the "
                                      "background adds its models here as each one finishes")
            go = gr.Button("Search", variant="primary", elem_id="search-go")
    status = gr.Markdown(elem_id="search-status")
    results = gr.HTML('<div id="search-results"></div>', elem_id="search-results-box")
    maps = gr.HTML('<div id="search-maps"></div>', elem_id="search-maps-box")
    raw = gr.JSON(label="Raw results", visible=False)

    def search(image, text, instruction, pool, run_ids, k, task):
        return run_search(ctx.store, image, text, instruction, pool, run_ids, k, task)

    def pick_runs(pool, task):
        return gr.update(value=default_runs(ctx.store, pool, task))

    def pool_instruction(pool):
        try:
            return engine_for(ctx.store).instruction_of(None if pool == ALL else pool)
        except StoreError:
            return ""

    def refresh(pool_value, task_value, run_values):
        pools, runs, _ = choices(ctx.store)
        keep = [r for r in run_values or [] if r in {v for _, v in runs}]
        valid_pool = pool_value if pool_value in {v for _, v in pools} else ALL
        chosen = keep or default_runs(ctx.store, valid_pool, task_value)
        return gr.update(choices=pools, value=valid_pool), gr.update(choices=runs, value=chosen)

    def restore(request: gr.Request):
        p = Params.of(request)
        pools, runs, _ = choices(ctx.store)
        pool_value = p.choice("pool", [v for _, v in pools], ALL)
        task_value = p.choice("trained_on", [v for _, v in TASKS], AUTO)
        chosen = p.many("models", [v for _, v in runs], default_runs(ctx.store, pool_value, task_value))
        return (gr.update(choices=pools, value=pool_value), task_value, gr.update(choices=runs, value=chosen),
                p.number("k", DEFAULT_K, 1, MAX_K), p.text("text"), p.text("instruction"))

    inputs = [image, text, instruction, pool, models, k, task]
    # One queue for the button and Enter in the text box: at most CONCURRENCY searches at a time.
    go.click(search, inputs, [status, results, maps, raw, seen], api_name="search", concurrency_limit=CONCURRENCY,
             concurrency_id="live-search")
    text.submit(search, inputs, [status, results, maps, raw, seen], api_visibility="private",
                concurrency_limit=CONCURRENCY, concurrency_id="live-search")
    pool.input(pool_instruction, [pool], [instruction], api_name="search_instruction", queue=False)
    # A new pool (with "auto") or a new trained-on choice ticks each model's matching final run.
    for control in (pool, task):
        control.input(pick_runs, [pool, task], [models], api_visibility="private", queue=False)
    ctx.on_load(restore, [pool, task, models, k, text, instruction])
    ctx.on_new_data(refresh, [pool, task, models], [pool, models])
    for key, control in (("pool", pool), ("trained_on", task), ("models", models), ("k", k), ("text", text),
                         ("instruction", instruction)):
        track(control, key)


TAB = Tab(id="search", title="Live retrieval", build=build)
