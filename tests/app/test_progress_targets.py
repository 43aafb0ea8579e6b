"""Every event names its progress targets, and they are small: Gradio's front end re-reads the whole
state of every progress target on every later event in the page (app/tabs/base.py, QUIET)."""

from __future__ import annotations

from app.main import build_app

SMALL = {"markdown"}  # a status line


def test_every_event_shows_progress_on_a_status_line_or_nowhere(mixed_store_file):
    config = build_app(mixed_store_file).get_config_file()
    kinds = {c["id"]: c["type"] for c in config["components"]}
    events = [d for d in config["dependencies"] if d["backend_fn"]]
    assert len(events) > 20  # every tab's handlers are in the config
    for event in events:
        name = event["api_name"] or f"event {event['id']} ({[kinds[o] for o in event['outputs']]})"
        targets = event["show_progress_on"]
        assert targets is not None, f"{name} shows progress on all its outputs: pass **QUIET or show_progress_on"
        assert {kinds[t] for t in targets} <= SMALL, f"{name} shows progress on {[kinds[t] for t in targets]}"
    searches = [e for e in events if e["api_name"] in ("search", "sql")]
    assert len(searches) == 2 and all(len(e["show_progress_on"]) == 1 for e in searches)  # still shows progress
