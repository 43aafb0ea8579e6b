"""A real browser (Debian's headless chromium via Playwright) walks every tab at 1500 and 1024 px on a store
with four trained families (two autoregressive, two diffusion): each tab draws its content with no page
error, no figure label sits on another, the Alignment grid shows all four maps on the same pairs, and the URL
holds only what differs from the defaults. Screenshots of each step go to $VLMEMBED_SCREENSHOTS, else to
pytest's temporary folder (the docs' pictures come from `docs/screenshots.py` on a demo store)."""

from __future__ import annotations

import re
import shutil

import pytest

from app import launch
from app.tabs import TABS
from tests.app.helpers import free_port
from tests.app.test_browser import _chromium_or_skip, _params, _wait_param, browser_page  # noqa: F401 - a fixture
from tests.app.test_browser_search import _shot

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(900)]  # the four-family store trains four models first (about 3-7 min on 2 busy cores)
# Long names, as the demo's are, so the Overview's model axes rotate their labels.
FAMILIES = {"LLaVA-NeXT-like (tiny test)": "llava_next", "Qwen2.5-VL-like (tiny test)": "qwen2_5_vl",
            "LaViDa-like (tiny test)": "lavida", "MMaDA-like (tiny test)": "mmada"}
# The store's runs (it holds no paper numbers): Overview's and Per dataset's source.
SHOWN = {"source": "pipeline", "sources": "pipeline"}
# What shows that a tab has drawn (a tab not named here, e.g. one added later, must at least show its panel).
READY = {"overview": "#tab-overview .js-plotly-plot", "datasets": "#per-dataset-table [role=gridcell]",
         "per_query": "#pq-counts", "alignment": "#alignment-maps .vm-map", "search": "#search-model-0",
         "sql": "#sql-query"}
# Every pair of plotly label kinds that must not touch: the legend and the axis names, a panel's title and
# a bar's value label.
OVERLAPS_JS = """
() => {
  const boxes = (root, sel) => [...root.querySelectorAll(sel)].map(e => e.getBoundingClientRect())
    .filter(r => r.width > 0 && r.height > 0);
  const hit = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > 1
    && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 1;
  const found = [];
  for (const plot of document.querySelectorAll('.js-plotly-plot')) {
    if (!plot.offsetParent) continue;  // a hidden tab's figure
    for (const [one, two] of [['.legend', '.xtick text'], ['.annotation-text', 'text.bartext'],
                              ['.legend', 'text.bartext'], ['.gtitle', '.legend']]) {
      for (const a of boxes(plot, one)) for (const b of boxes(plot, two)) if (hit(a, b)) found.push(one + ' / ' + two);
    }
  }
  return found;
}
"""


@pytest.fixture(scope="module")
def four_families(tmp_path_factory):
    from tests.search.embedded_store import build_embedded_store

    return build_embedded_store(tmp_path_factory.mktemp("four"), models=FAMILIES, methods=("pca",))


@pytest.fixture
def served(four_families, tmp_path):
    _chromium_or_skip()
    path = tmp_path / "store.duckdb"
    shutil.copyfile(four_families.path, path)
    blocks, url = launch(path, port=free_port(), block=False, poll_s=30)
    yield url
    blocks.close()


def test_every_tab_at_two_widths_and_the_four_map_grid(served, browser_page, tmp_path):  # noqa: F811
    page, _ = browser_page
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    for width in (1500, 1024):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(served + "?" + "&".join(f"{k}={v}" for k, v in SHOWN.items()))
        for tab in TABS:
            page.get_by_role("tab", name=tab.title).click()
            page.locator(READY.get(tab.id, f"#tab-{tab.id} *")).first.wait_for()
            page.wait_for_timeout(600)  # plotly's transitions
            assert page.evaluate(OVERLAPS_JS) == [], f"labels overlap on {tab.id} at {width} px"
            # Nothing but the tab (and Overview's chosen source) enters the URL by merely looking.
            extra = {k for k in _params(page) if k != "tab" and k not in SHOWN}
            assert not extra, f"{tab.id}: parameters nobody set: {extra}"
            assert ("tab" in _params(page)) == (tab.id != TABS[0].id)
            _shot(page, tmp_path, f"{tab.id}-{width}.png")

    # The four-map grid: two AR and two diffusion families, the same pairs on each map.
    page.get_by_role("tab", name="Alignment").click()
    page.locator("#al-view").get_by_label("four families (2 AR, 2 diffusion)").check()
    _wait_param(page, "view", "grid")
    maps = page.locator("#alignment-maps .vm-map")
    maps.nth(3).wait_for()
    assert maps.count() == 4
    titles = page.locator("#alignment-maps .vm-title").all_inner_texts()
    assert sum("(autoregressive)" in t for t in titles) == 2 and sum("(diffusion)" in t for t in titles) == 2
    queries = [maps.nth(i).locator(".vm-q").count() for i in range(4)]
    assert len(set(queries)) == 1 and queries[0] > 0
    assert re.search(r"the same pairs on all 4 maps", page.locator("#al-caption").inner_text())
    assert page.locator("#al-lines .js-plotly-plot").count() == 1  # the stage plot is drawn, not waiting
    _shot(page, tmp_path, "alignment-grid.png")
    # back to the default view: its parameter leaves the URL
    page.locator("#al-view").get_by_label("two models (A / B)").check()
    page.wait_for_function("() => !new URL(location.href).searchParams.has('view')")
    assert not errors, errors
