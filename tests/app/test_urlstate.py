"""Reading the view's state from the URL is forgiving; writing it is plain JS over one key."""

from __future__ import annotations

import gradio as gr

from app.urlstate import Params, write_js


def test_params_fall_back_to_defaults_on_anything_unknown():
    p = Params({"task": "vqa", "split": "sideways", "models": "LaViDa,evil,LLaVA-1.6", "stages": "", "rows": "x"})
    assert p.choice("task", ["all", "vqa"], "all") == "vqa"
    assert p.choice("split", ["all", "OOD"], "all") == "all"
    assert p.many("models", ["LLaVA-1.6", "LaViDa"], []) == ["LaViDa", "LLaVA-1.6"]
    assert p.many("stages", ["final"], ["final"]) == []  # present but empty: the user cleared it
    assert p.many("sources", ["paper", "demo"], ["paper", "gone"]) == ["paper"]  # absent: the default
    assert p.number("rows", 1000, 1, 10_000) == 1000
    escaped = Params({"models": "LaViDa (tiny%2C untrained),100%25 model"})  # as write_js escapes items
    assert escaped.many("models", ["LaViDa (tiny, untrained)", "100% model"], []) == ["LaViDa (tiny, untrained)",
                                                                                   "100% model"]
    assert Params({"rows": "1e9"}).number("rows", 1000, 1, 10_000) == 10_000


def test_params_from_a_request():
    request = gr.Request(query_params={"tab": "sql"})
    assert Params.of(request).text("tab") == "sql"
    assert Params.of(None).text("tab", "overview") == "overview"


def test_write_js_quotes_its_key():
    js = write_js('we"ird')
    assert '"we\\"ird"' in js and "replaceState" in js
    tab_js = write_js("tab", literal="datasets", guarded=True)
    assert 'const value = "datasets"' in tab_js and "vlmembedRestored" in tab_js


def test_a_default_value_removes_its_parameter():
    js = write_js("k", default=10)
    assert "const fallback = 10;" in js and "searchParams.delete" in js
    assert "const fallback = null;" in write_js("k")  # no default: only an empty value is removed


def test_items_reads_a_list_parameter_unchecked():
    p = Params({"models": "A@run%2C1,B", "empty": ""})
    assert p.items("models") == ["A@run,1", "B"]
    assert p.items("empty") == [] and p.items("absent") is None
