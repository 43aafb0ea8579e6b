"""The view's state in the page's query string, so a copied link reproduces the view.

Writing happens in the browser: each tracked control has a JS-only `.input` listener
that rewrites one parameter with `history.replaceState` (no server round trip, no
history entries). Only what the user set is written, and a value equal to the control's
default removes its parameter, so the URL holds the non-default choices and nothing else;
values a handler derives from them (a default model, a carried-over stage) are derived
again when the link is opened. Reading happens on the server: each tab's `load` handler gets the
page's parameters from `gr.Request.query_params` and restores its controls from them.
Lists are comma-joined, with `%` and `,` inside an item escaped (model names such as
"LaViDa (tiny, untrained)" hold commas); a present-but-empty parameter means an empty selection.

Gradio fires a tab's `select` when the first tab mounts, before the page's `load`
handlers have read the URL; tab writes therefore wait until the page is restored
(`READY_JS` runs after the app's load), or they would overwrite `?tab=` with the default.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from urllib.parse import unquote

import gradio as gr

READY_JS = "() => { window.vlmembedRestored = true; return []; }"
_WRITE = """
(value) => {{
  if ({guarded} && !window.vlmembedRestored) return [];
  const url = new URL(window.location.href);
  const item = (v) => String(v).replaceAll("%", "%25").replaceAll(",", "%2C");
  const fallback = {default};
  if (value === null || value === undefined || (fallback !== null && JSON.stringify(value) === JSON.stringify(fallback))) {{
    url.searchParams.delete({key});
  }} else {{
    url.searchParams.set({key}, Array.isArray(value) ? value.map(item).join(",") : String(value));
  }}
  window.history.replaceState(window.history.state, "", url);
  return [];
}}
"""


def write_js(key: str, literal: str | None = None, guarded: bool = False, default=None) -> str:
    """JS for an event: store its one input (or a fixed value) under `key` in the URL; the `default`
    value (or none) removes the parameter instead."""
    js = _WRITE.format(key=json.dumps(key), guarded=json.dumps(guarded), default=json.dumps(default))
    if literal is not None:
        js = js.replace("(value) => {", f"() => {{ const value = {json.dumps(literal)};", 1)
    return js


def track(component: gr.components.Component, key: str, default=None, event: str = "input") -> None:
    """Mirror the user's changes of a control into the URL; its `default` value leaves the URL. A hidden
    component that a handler fills from the user's picks is tracked on "change" instead."""
    getattr(component, event)(None, [component], None, js=write_js(key, default=default), queue=False,
                              api_visibility="private")


def track_tab(tab: gr.Tab, tab_id: str, key: str = "tab", default: str | None = None) -> None:
    """Write the selected tab into the URL; the `default` tab (the first) leaves it."""
    js = write_js(key, literal=tab_id, guarded=True, default=default)
    tab.select(None, None, None, js=js, queue=False, api_visibility="private")


class Params:
    """Query parameters of the page, read defensively: anything unknown falls back to a default."""

    def __init__(self, params: Mapping[str, str] | None):
        self._params = dict(params or {})

    @classmethod
    def of(cls, request: gr.Request | None) -> Params:
        if request is None:
            return cls({})
        try:
            return cls(dict(request.query_params))
        except (AttributeError, TypeError):
            return cls({})

    def __contains__(self, key: str) -> bool:
        return key in self._params

    def text(self, key: str, default: str = "") -> str:
        return self._params.get(key, default)

    def choice(self, key: str, choices: Sequence[str], default: str) -> str:
        value = self._params.get(key)
        return value if value in choices else default

    def many(self, key: str, choices: Sequence[str], default: Sequence[str]) -> list[str]:
        if key not in self._params:
            return [c for c in default if c in choices]
        raw = self._params[key]
        return [unquote(v) for v in raw.split(",") if unquote(v) in choices] if raw else []

    def items(self, key: str) -> list[str] | None:
        """A list parameter's items, unescaped and unchecked; None when the parameter is absent."""
        if key not in self._params:
            return None
        raw = self._params[key]
        return [unquote(v) for v in raw.split(",")] if raw else []

    def number(self, key: str, default: float, low: float, high: float) -> float:
        try:
            value = float(self._params[key])
        except (KeyError, ValueError):
            return default
        return min(max(value, low), high)
