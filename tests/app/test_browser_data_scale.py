"""The Data scale tab in a real browser: it draws, filters, keeps its view in the URL, no page errors."""

from __future__ import annotations

import shutil

import pytest

from app import launch
from tests.app.helpers import free_port
from tests.app.test_browser import CHROMIUM, _chromium_or_skip, _params, _wait_param

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(180)]


def test_data_scale_draws_filters_and_restores_from_the_url(mixed_store_file, tmp_path):
    _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    path = tmp_path / "store.duckdb"
    shutil.copyfile(mixed_store_file, path)
    blocks, url = launch(path, port=free_port(), block=False, poll_s=0.5)
    errors: list[str] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--headless=new"])
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.set_default_timeout(30_000)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url + "?tab=data_scale&scale_source=demo")
            page.locator("#scale-plot .js-plotly-plot").wait_for()
            page.locator("#scale-note").get_by_text("VLM2Vec (published, full MMEB training)").wait_for()
            assert "lavida-tiny" in page.locator("#scale-plot").inner_text()
            page.locator("#scale-split").get_by_label("OOD").check()
            _wait_param(page, "scale_split", "ood")
            page.locator("#scale-note").get_by_text("OOD, mean Precision@1").wait_for()
            assert _params(page)["tab"] == "data_scale"
            page.goto(page.url)  # the copied link reopens the same view
            page.locator("#scale-note").get_by_text("OOD, mean Precision@1").wait_for()
            assert page.locator("#scale-split").get_by_label("OOD").is_checked()
            assert page.locator("#scale-source").get_by_label("demo runs").is_checked()
            browser.close()
    finally:
        blocks.close()
    assert not errors, errors
