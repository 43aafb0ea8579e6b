"""The Gradio dashboard over the results store. It only reads; see `app.main.build_app`."""

from __future__ import annotations

import os

# No analytics or version pings: the dashboard must work offline and make no outside requests.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from app.main import build_app, launch  # noqa: E402

__all__ = ["build_app", "launch"]
