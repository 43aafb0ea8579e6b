"""`build_app(store_path)`: the dashboard's frame (header, store status, tabs); each tab builds itself."""

from __future__ import annotations

import logging
import os
from functools import partial
from pathlib import Path

import gradio as gr

from app.fairness import ConsoleSettings
from app.store import StoreCache
from app.tabs import TABS, Context
from app.tabs.base import QUIET
from app.urlstate import READY_JS, Params, track_tab
from pipeline.demo.status import building_status

HEADER = ("## vlmembed: diffusion vs autoregressive VLMs as multimodal embedding models\n"
          "The paper's published numbers and this project's own runs, read live from the results store.")
# The SQL and search status lines carry their event's progress (app/tabs/base.py): empty, they would be 0 px
# high and the "processing" timer would not show.
CSS = ("#store-status p { margin: 0; font-size: 0.9em; color: var(--body-text-color-subdued); }\n"
       "#sql-status, #search-status { min-height: 5em; }")
THEME = gr.themes.Default(primary_hue="blue")  # Default's fonts ship with Gradio: nothing is fetched


def _status(store: StoreCache) -> tuple[str, str]:
    snap = store.snapshot()
    if not snap.ok:
        return snap.version, f"⚠️ **Store unavailable.** {snap.error}"
    demo = building_status(store.path)  # a background demo build: how far, and how long still
    return snap.version, (f"Store `{_shown(store.path)}`: {snap.summary()}."
                          + (f"  \n⏳ {demo.line()}" if demo else ""))


def _shown(path: Path) -> str:
    """A path as its owner would type it: under the home folder as ~/..."""
    try:
        return f"~/{path.resolve().relative_to(Path.home().resolve())}"
    except ValueError:
        return str(path)


def _check(store: StoreCache, shown: str, always: bool = False):
    """New version and status line; the version is skipped when unchanged (so tabs do not re-render),
    the line too unless a demo build's progress is in it."""
    version, status = _status(store)
    if version == shown and not always:
        return gr.skip(), (status if "⏳" in status else gr.skip())
    return version, status


def _open_page(store: StoreCache, shown: str, request: gr.Request | None):
    tab_ids = [t.id for t in TABS]
    selected = Params.of(request).choice("tab", tab_ids, tab_ids[0])
    version, status = _status(store)
    return gr.Tabs(selected=selected), (gr.skip() if version == shown else version), status


def _watch_store(blocks: gr.Blocks, store: StoreCache, tabs: gr.Tabs, version: gr.Textbox, status: gr.Markdown,
                 refresh: gr.Button, poll_s: float) -> None:
    """Page open: select the tab named in the URL. Timer and button: publish a new store version to the tabs."""

    def open_page(shown: str, request: gr.Request):
        return _open_page(store, shown, request)

    blocks.load(open_page, [version], [tabs, version, status], queue=False, api_visibility="private",
                **QUIET).then(None, js=READY_JS, queue=False, api_visibility="private")
    refresh.click(partial(_check, store, always=True), [version], [version, status], api_name="store_version",
                  queue=False, show_progress_on=[status])
    gr.Timer(poll_s).tick(partial(_check, store), [version], [version, status], api_visibility="private",
                          queue=False, **QUIET)


def build_app(store_path: str | os.PathLike, poll_s: float = 5.0, console: ConsoleSettings | None = None) -> gr.Blocks:
    """The dashboard for one store file; it picks up newly published runs within `poll_s` seconds."""
    store = StoreCache(store_path)
    with gr.Blocks(title="vlmembed dashboard", analytics_enabled=False) as blocks:
        gr.Markdown(HEADER)
        with gr.Row(equal_height=True):
            status = gr.Markdown(elem_id="store-status")
            refresh = gr.Button("Check for new runs", size="sm", scale=0, elem_id="store-refresh")
        version = gr.Textbox(store.version(), visible=False)  # changes when a new store file is published
        ctx = Context(blocks, store, version, console or ConsoleSettings())
        with gr.Tabs(elem_id="tabs") as tabs:
            for tab in TABS:
                with gr.Tab(tab.title, id=tab.id, elem_id=f"tab-{tab.id}") as handle:
                    tab.build(ctx)
                track_tab(handle, tab.id, default=TABS[0].id)
        _watch_store(blocks, store, tabs, version, status, refresh, poll_s)
    blocks.queue(default_concurrency_limit=8)
    return blocks


def launch(store_path: str | os.PathLike, host: str = "127.0.0.1", port: int = 7860, block: bool = True,
           poll_s: float = 5.0, console: ConsoleSettings | None = None) -> tuple[gr.Blocks, str]:
    """Build and serve the dashboard; returns (blocks, local URL). With block=False it runs in a thread."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's startup self-checks, one line each
    blocks = build_app(store_path, poll_s=poll_s, console=console)
    _, url, _ = blocks.launch(server_name=host, server_port=port, prevent_thread_lock=True, quiet=True,
                              ssr_mode=False, show_error=False, theme=THEME, css=CSS,
                              footer_links=["api", "settings"])
    if block:
        print(f"vlmembed dashboard: {url}  (Ctrl+C to stop)", flush=True)
        blocks.block_thread()
    return blocks, url
