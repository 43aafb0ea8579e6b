"""Regenerate the docs' screenshots from a store: one per dashboard tab, plus the four-map grid.

    python docs/screenshots.py [--store PATH] [--out docs/img] [--width 1500]

Serves the dashboard in-process over the store (by default the one `vlmembed app` uses, i.e.
the demo store a first `vlmembed app` builds), opens each tab in Debian's headless chromium
(Playwright, as the browser tests do), waits until the tab shows its content and saves
`<out>/<tab id>.png`, plus `alignment-grid.png` (all four families). Nothing leaves the
machine. The store path on the page is shown as its owner would type it (`~/...` under the
home folder), so run it with the store under the home folder to keep local paths out of the
pictures, e.g.

    HOME=/tmp/shots VLMEMBED_HOME=/tmp/shots/.cache/vlmembed python docs/screenshots.py

The README shows overview.png and alignment-grid.png.
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app import launch  # noqa: E402 - after the path above, so a checkout runs without installing
from app.tabs import TABS  # noqa: E402
from storage.paths import default_store_path  # noqa: E402

log = logging.getLogger("screenshots")
CHROMIUM = "/usr/bin/chromium"
# What shows that a tab has drawn its content (a tab not named here gets a short fixed wait).
READY = {
    "overview": "#tab-overview .js-plotly-plot >> nth=2",
    "datasets": "#per-dataset-table [role=gridcell]",
    "per_query": "#pq-counts",
    "alignment": "#alignment-maps .vm-map >> nth=1",
    "search": "#search-model-0",
    "sql": "#sql-result [role=gridcell]",
}
# Each tab's view in the pictures: a query string (besides ?tab=).
VIEWS = {"sql": "sql=" + "SELECT model, paradigm, avg(value) FROM v_scores WHERE source = 'demo' "
                       "AND metric = 'precision@1' GROUP BY ALL ORDER BY 3 DESC".replace(" ", "+"),
         "search": "pool=SceneT2I&text=a+large+blue+square+on+the+left"}


def _search(page) -> None:
    """Live retrieval with an answer: every ticked model's top k for the query in VIEWS."""
    page.locator("#search-go").click()
    page.locator("#search-maps .vm-map").first.wait_for()


ACTIONS = {"search": _search}
EXTRA = {"alignment-grid": ("alignment", "view=grid", "#alignment-maps .vm-map >> nth=3")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shoot(page, url: str, ready: str | None, path: Path, action=None) -> None:
    page.goto(url)
    if ready:
        page.locator(ready).first.wait_for()
    if action:
        action(page)
    page.wait_for_timeout(1500)  # plotly's transitions and the store-status line
    page.screenshot(path=str(path), full_page=True)
    log.info("wrote %s (%d KB)", path, path.stat().st_size // 1024)


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=default_store_path())
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--width", type=int, default=1500)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.store.exists():
        parser.error(f"no store at {args.store}; build the demo first (`vlmembed demo --small`) or pass --store")
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    blocks, url = launch(args.store, port=free_port(), block=False, poll_s=60)
    shots = [(t.id, t.id, VIEWS.get(t.id, ""), READY.get(t.id)) for t in TABS]
    shots += [(name, tab, query, ready) for name, (tab, query, ready) in EXTRA.items()]
    written = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--headless=new"])
            page = browser.new_context(viewport={"width": args.width, "height": 900}).new_page()
            page.set_default_timeout(180_000)  # the first search loads every model's encoder
            for name, tab, query, ready in shots:
                path = args.out / f"{name}.png"
                shoot(page, f"{url}?tab={tab}" + (f"&{query}" if query else ""), ready, path, ACTIONS.get(name))
                written.append(path)
            browser.close()
    finally:
        blocks.close()
    return written


if __name__ == "__main__":
    main()
