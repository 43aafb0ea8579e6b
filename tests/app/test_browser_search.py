"""A real browser (Debian's headless chromium via Playwright) on the Alignment and Live
retrieval tabs: hover cards on the maps, and an uploaded image answered by every model."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest

from app import launch
from tests.app.helpers import free_port
from tests.app.test_browser import _chromium_or_skip, browser_page  # noqa: F401 - a fixture (page, requests)

SCREENSHOT_DIR = os.environ.get("VLMEMBED_SCREENSHOTS")

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture
def served(embedded_store, tmp_path):
    _chromium_or_skip()
    path = tmp_path / "store.duckdb"
    shutil.copyfile(embedded_store.path, path)
    blocks, url = launch(path, port=free_port(), block=False, poll_s=0.5)
    yield url
    blocks.close()


def _shot(page, tmp_path, name: str) -> None:
    shot = Path(SCREENSHOT_DIR or tmp_path) / name
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_upload_an_image_and_see_every_model(served, browser_page, embedded_store, tmp_path):  # noqa: F811
    page, requests = browser_page

    # Alignment: two maps of the same pairs; hovering a query shows its thumbnail.
    page.goto(served + "?tab=alignment")
    maps = page.locator("#alignment-maps .vm-map")
    maps.nth(1).wait_for()
    assert maps.count() == 2
    point = page.locator("#alignment-maps .vm-q").first
    card = point.locator(".vm-card")
    assert not card.is_visible()
    point.hover()
    card.locator("img").wait_for(state="visible")
    _shot(page, tmp_path, "alignment.png")

    # A copied link restores the view: method, sample size and the URL's stage.
    page.goto(served + "?tab=alignment&method=pca&pairs=5")
    page.locator("#al-caption").get_by_text("5 of 16 pairs").wait_for()
    assert page.locator("#alignment-maps .vm-map").first.locator(".vm-q").count() == 5
    assert page.locator("#al-method").get_by_label("pca").is_checked()

    # Live retrieval: upload a stored eval image; every model answers, the gold item is marked.
    page.get_by_role("tab", name="Live retrieval").click()
    page.locator("#search-image input[type=file]").set_input_files(str(embedded_store.eval_image(5)))
    page.locator("#search-instruction textarea").fill("Identify the colour of the square")
    page.wait_for_timeout(500)  # let the upload finish before searching
    page.locator("#search-go").click()
    page.locator("#search-status").get_by_text("2 of 2 models answered").wait_for()
    columns = page.locator("#search-results .sv-col")
    assert columns.count() == 2
    for i in range(2):
        assert columns.nth(i).locator(".sv-hit").count() == 8  # the whole pool: eight colour names
    assert "stored query 5 of Colours" in page.locator("#search-status").inner_text()
    assert page.locator("#search-maps .vm-star").count() == 2
    _shot(page, tmp_path, "search.png")

    origin = urlparse(served).netloc
    outside = sorted({r for r in requests if urlparse(r).netloc != origin and not r.startswith(("data:", "blob:"))})
    assert not outside, f"requests left the local server: {outside}"
