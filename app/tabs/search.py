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

from app import search_picks, search_view
from app.store import StoreCache
from app.tabs.base import QUIET, Context, Tab
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
MAX_MODELS = 16  # model slots (a tick and a stage each); the demo has 8 models
NONE = "none"  # the URL's "no model ticked" (an absent parameter means the default picks)
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


def effective_task(store: StoreCache, pool: str | None, task: str | None) -> str | None:
    """The meta-task a FINAL pick means: the chosen one, else (auto) the pool's, else None (each model's default)."""
    if _task(task):
        return _task(task)
    try:
        return engine_for(store).task_of(_dataset(pool))
    except (StoreError, QueryError):
        return None


def search_picked(store: StoreCache, image, text, instruction, pool, k, task, slot_models: list[str],
                  ticks: list[bool], stages: list[str | None]) -> tuple:
    """`run_search` for the per-model picks (a tick and a stage per model slot)."""
    shown = slot_models or []
    ticked = [m for m, on in zip(shown, ticks, strict=False) if on]
    chosen = search_picks.resolve(engine_runs(store), ticked, dict(zip(shown, stages, strict=False)),
                                  effective_task(store, pool, task))
    if ticked and not chosen.run_ids:
        return (f"⚠️ None of the ticked models has a final run trained on {effective_task(store, pool, task)}; "
                "pick a stage for them, or another meta-task.", '<div id="search-results"></div>',
                '<div id="search-maps"></div>', {}, gr.skip())
    out = run_search(store, image, text, instruction, pool, chosen.run_ids, k, task)
    return (out[0] + chosen.note(effective_task(store, pool, task)), *out[1:])


def engine_runs(store: StoreCache) -> list:
    try:
        return engine_for(store).runs()
    except (StoreError, QueryError):
        return []


def preview(image: str | None) -> tuple:
    """On upload: the query image as the models will see it (upright RGB), or what is wrong with it."""
    if not image:
        return None, ""
    try:
        loaded = Query.build(image=image).image
    except QueryError as exc:
        return None, f"⚠️ {exc}"
    return preview_file(loaded), ""


def slot_updates(runs: list, ticked: list[str], stages: dict[str, str]) -> list:
    """Per slot: its row's visibility, its tick (labelled with the model) and its stage dropdown; then the
    slots' model names (a State)."""
    models = search_picks.models_of(runs)[:MAX_MODELS]
    rows, ticks, dropdowns = [], [], []
    for i in range(MAX_MODELS):
        model = models[i] if i < len(models) else None
        rows.append(gr.update(visible=model is not None))
        ticks.append(gr.update(label=model or "", value=model in ticked))
        choices = search_picks.stage_choices(runs, model) if model else []
        value = stages.get(model)
        dropdowns.append(gr.update(choices=choices, value=value if value in {v for _, v in choices} else
                                   (choices[0][1] if choices else None)))
    return [*rows, *ticks, *dropdowns, models]


def build(ctx: Context) -> None:
    pools, _, _ = choices(ctx.store)
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
                                   info="what a model's \"final\" stage means: its final run trained on this meta-task")
                k = gr.Slider(1, MAX_K, value=DEFAULT_K, step=1, label="Top k", elem_id="search-k")
            gr.Markdown("**Models** (runs that stored embeddings; the demo that `vlmembed app` builds in the "
                        "background adds its models as each one finishes). Tick a model; its stage is its final "
                        "run unless you pick a checkpoint.", elem_id="search-models-note")
            rows, ticks, stages = [], [], []
            with gr.Column(elem_id="search-models"):
                for i in range(MAX_MODELS):
                    with gr.Row(visible=False, equal_height=True) as row:
                        ticks.append(gr.Checkbox(label="", container=False, scale=3, elem_id=f"search-model-{i}"))
                        stages.append(gr.Dropdown([], show_label=False, container=False, scale=2,
                                                  allow_custom_value=True, elem_id=f"search-stage-{i}"))
                    rows.append(row)
            slot_models = gr.State([])
            picks = gr.Textbox(visible=False)  # the picks' URL form; empty for the default picks
            go = gr.Button("Search", variant="primary", elem_id="search-go")
    status = gr.Markdown(elem_id="search-status")
    results = gr.HTML('<div id="search-results"></div>', elem_id="search-results-box")
    maps = gr.HTML('<div id="search-maps"></div>', elem_id="search-maps-box")
    raw = gr.JSON(label="Raw results", visible=False)
    run_ids = gr.JSON(visible=False)  # the API's run list (the page itself searches with the picks)
    api_go = gr.Button(visible=False)
    slots = [*rows, *ticks, *stages, slot_models]
    shown = [status, results, maps, raw, seen]

    def search(image, text, instruction, pool, run_ids, k, task):
        return run_search(ctx.store, image, text, instruction, pool, run_ids, k, task)

    def search_ui(image, text, instruction, pool, k, task, models, *values):
        return search_picked(ctx.store, image, text, instruction, pool, k, task, models, list(values[:MAX_MODELS]),
                             list(values[MAX_MODELS:]))

    def layout(pool_value, task_value, ticked=None, stage_of=None):
        runs = engine_runs(ctx.store)
        if ticked is None:
            ticked = search_picks.default_ticks(runs, default_runs(ctx.store, pool_value, task_value))
        return slot_updates(runs, ticked, stage_of or {})

    def url_picks(pool_value, task_value, models, *values):
        """The picks' URL form; "" when they are what the pool and task tick by default."""
        runs = engine_runs(ctx.store)
        ticked = [m for m, on in zip(models or [], values[:MAX_MODELS], strict=False) if on]
        stage_of = dict(zip(models or [], values[MAX_MODELS:], strict=False))
        default = search_picks.default_ticks(runs, default_runs(ctx.store, pool_value, task_value))
        encoded = search_picks.encode(ticked, stage_of)
        return "" if encoded == default else ",".join(_escape(x) for x in encoded) or NONE

    def refresh(pool_value, task_value, picked, models, *values):
        """New runs landed: new models get slots; picks the user made stay, default picks follow the new runs
        (a page open during the demo build ticks each model as it lands)."""
        pools, _, _ = choices(ctx.store)
        valid_pool = pool_value if pool_value in {v for _, v in pools} else ALL
        ticked = [m for m, on in zip(models or [], values[:MAX_MODELS], strict=False) if on]
        stage_of = dict(zip(models or [], values[MAX_MODELS:], strict=False))
        keep = ticked if picked else None  # "": the default picks
        return gr.update(choices=pools, value=valid_pool), *layout(valid_pool, task_value, keep, stage_of)

    def restore(request: gr.Request):
        p = Params.of(request)
        pools, _, _ = choices(ctx.store)
        pool_value = p.choice("pool", [v for _, v in pools], ALL)
        task_value = p.choice("trained_on", [v for _, v in TASKS], AUTO)
        items = p.items("models")
        ticked, stage_of = (None, {}) if items is None else search_picks.decode(
            items, search_picks.models_of(engine_runs(ctx.store)))
        return (gr.update(choices=pools, value=pool_value), task_value, p.number("k", DEFAULT_K, 1, MAX_K),
                p.text("text"), p.text("instruction"), p.text("models"), *layout(pool_value, task_value, ticked, stage_of))

    def pool_instruction(pool):
        try:
            return engine_for(ctx.store).instruction_of(None if pool == ALL else pool)
        except StoreError:
            return ""

    def retick(pool_value, task_value):
        runs = engine_runs(ctx.store)
        ticked = search_picks.default_ticks(runs, default_runs(ctx.store, pool_value, task_value))
        models = search_picks.models_of(runs)[:MAX_MODELS]
        return [gr.update(value=m in ticked) for m in models] + [gr.skip()] * (MAX_MODELS - len(models))

    ui_inputs = [image, text, instruction, pool, k, task, slot_models, *ticks, *stages]
    # One queue for the buttons and Enter in the text box: at most CONCURRENCY searches at a time.
    # A search shows its progress on the status line only (see QUIET in app/tabs/base.py).
    go.click(search_ui, ui_inputs, shown, api_visibility="private", concurrency_limit=CONCURRENCY,
             concurrency_id="live-search", show_progress_on=[status])
    text.submit(search_ui, ui_inputs, shown, api_visibility="private", concurrency_limit=CONCURRENCY,
                concurrency_id="live-search", show_progress_on=[status])
    api_go.click(search, [image, text, instruction, pool, run_ids, k, task], shown, api_name="search",
                 concurrency_limit=CONCURRENCY, concurrency_id="live-search", show_progress_on=[status])
    image.upload(preview, [image], [seen, status], api_visibility="private", queue=False, show_progress_on=[status])
    image.clear(lambda: (None, ""), None, [seen, status], api_visibility="private", queue=False, **QUIET)
    pool.input(pool_instruction, [pool], [instruction], api_name="search_instruction", queue=False, **QUIET)
    # A new pool (with "auto") or a new trained-on choice ticks each model that has a final run trained on it.
    for control in (pool, task):
        control.input(retick, [pool, task], ticks, api_visibility="private", queue=False, **QUIET).then(
            url_picks, [pool, task, slot_models, *ticks, *stages], [picks], api_visibility="private", queue=False,
            **QUIET)
    gr.on([c.input for c in (*ticks, *stages)], url_picks, [pool, task, slot_models, *ticks, *stages],
          [picks], api_visibility="private", queue=False, trigger_mode="always_last", **QUIET)
    ctx.on_load(restore, [pool, task, k, text, instruction, picks, *slots])
    ctx.on_new_data(refresh, [pool, task, picks, slot_models, *ticks, *stages], [pool, *slots])
    for key, control, default in (("pool", pool, ALL), ("trained_on", task, AUTO), ("k", k, DEFAULT_K),
                                  ("text", text, ""), ("instruction", instruction, "")):
        track(control, key, default)
    track(picks, "models", "", event="change")


def _escape(item: str) -> str:
    return item.replace("%", "%25").replace(",", "%2C")


TAB = Tab(id="search", title="Live retrieval", build=build)
