"""What a tab is, and what the app hands each tab when it builds.

Handlers that only filter an in-memory snapshot run with `queue=False`: a direct HTTP
call instead of Gradio's queue and event stream, which halves a filter update's latency
(bench/bench_app.py). Anything that may run long (SQL) stays on the queue.

Every event names its progress targets (`QUIET`, or a small status line): Gradio's front end
(6.x) re-reads the whole state of every component that was ever an event's progress target,
on every event anywhere in the page, so by default each table or figure an event outputs
slows every later click. A hidden 1000-row table doubled a filter update (bench/bench_app.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import gradio as gr

from app.fairness import ConsoleSettings
from app.store import StoreCache

# No progress shown, and no component registered as a progress target (see the module docstring).
QUIET = {"show_progress": "hidden", "show_progress_on": []}


@dataclass
class Context:
    """Shared pieces: the store cache, the hidden `version` box that changes when new runs land, and the
    operator's SQL console settings."""

    blocks: gr.Blocks
    store: StoreCache
    version: gr.Textbox
    console: ConsoleSettings = ConsoleSettings()

    def on_load(self, fn: Callable, outputs: Sequence[gr.components.Component]) -> None:
        """Run `fn(request)` when a page opens (restore the view from the URL)."""
        self.blocks.load(fn, None, list(outputs), api_visibility="private", queue=False, **QUIET)

    def on_new_data(self, fn: Callable, inputs: Sequence[gr.components.Component],
                    outputs: Sequence[gr.components.Component]) -> None:
        """Run `fn(*inputs)` when a new store version was published (refresh choices and views)."""
        self.version.change(fn, list(inputs), list(outputs), api_visibility="private", queue=False, **QUIET)


@dataclass(frozen=True)
class Tab:
    """A dashboard tab: `build(ctx)` is called inside its `gr.Tab` and wires its own events."""

    id: str  # also its value in the URL (?tab=...)
    title: str
    build: Callable[[Context], None]

    def __post_init__(self) -> None:
        if not self.id.isidentifier():
            raise ValueError(f"tab id must be a plain identifier (it goes in the URL), got {self.id!r}")
