"""A real browser (Debian's headless chromium via Playwright) on the Per query view: opened from a
Per-dataset cell, filtered, carried in the URL, restored from it, and nothing fetched from outside."""

from __future__ import annotations

from urllib.parse import urlencode, urlparse

import pytest

from storage import StoreReader
from storage.queries import query_outcomes
from tests.app.test_browser import _params, _wait_param, browser_page  # noqa: F401 - a fixture (page, requests)
from tests.app.test_browser_search import served  # noqa: F401 - a fixture: the embedded store, served

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]


def _rows(page) -> int:
    return page.locator("#pq-queries tr[data-row]").count()


def test_per_query_view_in_a_real_browser(served, browser_page, embedded_store):  # noqa: F811
    url = served
    page, requests = browser_page
    a, b = embedded_store.finals
    outcomes = query_outcomes(StoreReader(embedded_store.path), a, b, "Colours")
    a_right, b_right = outcomes["rank_a"] == 1, outcomes["rank_b"] == 1
    expected = {"a_only": int((a_right & ~b_right).sum()), "b_only": int((~a_right & b_right).sum())}

    # A Per-dataset cell links to its queries.
    page.goto(url + "?" + urlencode({"tab": "datasets", "sources": "pipeline", "a": "", "b": ""}))
    page.locator("#per-dataset-table").get_by_text("Colours", exact=True).first.wait_for()
    page.locator('#per-dataset-table [role=gridcell][data-row="0"][data-col="3"]').click()  # Colours, 1st run
    link = page.locator("#ds-cell-link a")
    link.wait_for()
    link.click()
    page.locator("#pq-counts").get_by_text("queries both runs ranked").wait_for()
    assert page.get_by_role("tab", name="Per query").get_attribute("aria-selected") == "true"
    assert _params(page)["tab"] == "per_query"

    # A link names the view: every query of Colours for the two final runs, thumbnails and rankings.
    page.goto(url + "?" + urlencode({"tab": "per_query", "qa": a, "qb": b, "qdataset": "Colours", "qshow": "all"}))
    page.locator("#pq-counts").get_by_text("16 queries both runs ranked").wait_for()
    assert _rows(page) == 16
    assert page.locator("#pq-queries img").first.is_visible()
    assert page.locator("#pq-queries ol").count() == 32

    # Filtering to one cell of the 2x2 table: the URL follows, the rows are that cell's.
    page.locator("#pq-show").get_by_label("B right, A wrong").check()
    _wait_param(page, "qshow", "b_only")
    page.locator("#pq-counts").get_by_text(f"of {expected['b_only']} queries: B right, A wrong").wait_for()
    assert _rows(page) == expected["b_only"]
    page.locator("#pq-show").get_by_label("A right, B wrong").check()
    page.locator("#pq-counts").get_by_text(f"of {expected['a_only']} queries: A right, B wrong").wait_for()
    assert _rows(page) == expected["a_only"]

    # Reloading the copied link restores the view.
    page.goto(page.url)
    page.locator("#pq-counts").get_by_text(f"of {expected['a_only']} queries: A right, B wrong").wait_for()
    assert page.locator("#pq-show").get_by_label("A right, B wrong").is_checked()
    assert _params(page)["qa"] == a and _params(page)["qb"] == b

    origin = urlparse(url).netloc
    outside = sorted({r for r in requests if urlparse(r).netloc != origin and not r.startswith("data:")})
    assert not outside, f"requests left the local server: {outside}"
