"""One real browser (Debian's headless chromium via Playwright) over the served dashboard.

It loads the page, switches tabs, filters, runs SQL, checks the URL carries the view and
that reloading it restores the view, sees a newly published run appear by itself, saves
a screenshot of the paper's overview, and asserts that no request left the local server
(the docs' pictures come from `docs/screenshots.py` on a demo store).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from app import launch
from app.urlstate import Params, write_js
from storage import StoreWriter
from tests.app.helpers import free_port, pipeline_run

CHROMIUM = Path("/usr/bin/chromium")
# Screenshots go to $VLMEMBED_SCREENSHOTS, else to pytest's temporary folder, so a test run leaves
# the checkout clean.
SCREENSHOT_DIR = os.environ.get("VLMEMBED_SCREENSHOTS")
VQA_OOD = ["GQA", "ScienceQA", "TextVQA", "VizWiz"]
QUERY = "SELECT model, round(avg(value), 2) AS mean FROM v_scores WHERE source = 'paper' GROUP BY model ORDER BY model"

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]


def _chromium_or_skip():
    if CHROMIUM.exists():
        return
    if os.environ.get("VLMEMBED_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{CHROMIUM} is missing and VLMEMBED_REQUIRE_BROWSER=1 (apt-get install chromium)")
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); set VLMEMBED_REQUIRE_BROWSER=1 to fail instead")


@pytest.fixture
def served(mixed_store_file, tmp_path):
    _chromium_or_skip()
    path = tmp_path / "store.duckdb"
    shutil.copyfile(mixed_store_file, path)
    blocks, url = launch(path, port=free_port(), block=False, poll_s=0.5)
    yield path, url
    blocks.close()


@pytest.fixture
def browser_page(served):
    """(page, every URL the browser requested)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--headless=new"])
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        requests: list[str] = []
        context.on("request", lambda r: requests.append(r.url))
        page = context.new_page()
        page.set_default_timeout(30_000)
        yield page, requests
        browser.close()


def _params(page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query, keep_blank_values=True).items()}


def _wait_param(page, key: str, value: str) -> None:
    page.wait_for_function("([k, v]) => new URL(location.href).searchParams.get(k) === v", arg=[key, value])


def _table_datasets(page) -> list[str]:
    text = page.locator("#per-dataset-table").inner_text()
    return sorted(d for d in re.findall(r"^(\S+)\s", text, flags=re.M) if d in VQA_OOD or d == "OK-VQA")


def _wait_datasets(page, expected: list[str]) -> None:
    page.wait_for_function(
        "(names) => { const t = document.querySelector('#per-dataset-table')?.innerText || '';"
        " return names.every(n => t.includes(n)) && !t.includes('OK-VQA'); }", arg=expected)


def test_dashboard_in_a_real_browser(served, browser_page, tmp_path):
    path, url = served
    page, requests = browser_page
    page.goto(url)
    page.locator("#tab-overview .js-plotly-plot").first.wait_for()

    # Overview: compare sources; the demo panel carries its caveat.
    page.get_by_label("compare sources side by side").check()
    _wait_param(page, "source", "compare")
    page.get_by_text("not comparable in absolute terms").first.wait_for()

    # Per dataset: switch tab, filter to out-of-domain VQA.
    page.get_by_role("tab", name="Per dataset").click()
    _wait_param(page, "tab", "datasets")
    page.locator("#ds-task").get_by_label("vqa").check()
    page.locator("#ds-split").get_by_label("OOD").check()
    _wait_param(page, "split", "OOD")
    _wait_datasets(page, VQA_OOD)
    assert _params(page)["task"] == "vqa"
    # The heatmap is collapsed (drawing it on every filter change cost a third of an update); opened, it
    # draws the filtered table.
    page.locator("#ds-heatmap").get_by_text("Heatmap of this table").click()
    page.wait_for_function(
        "([want, gone]) => { const ticks = [...document.querySelectorAll('#ds-heatmap .ytick text')]"
        ".map(t => t.textContent); return ticks.includes(want) && !ticks.includes(gone); }", arg=[VQA_OOD[0], "OK-VQA"])

    # SQL console: run a query; it enters the URL.
    page.get_by_role("tab", name="SQL console").click()
    editor = page.locator("#sql-query .cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(QUERY)
    # The run's progress shows on the status line (its only progress target), tall enough to be seen.
    page.evaluate("() => { window.sawProgress = false; const poll = () => { const s = document.querySelector("
                  "'#sql-status'); if (s && s.querySelector('[data-testid=status-tracker]:not(.hide)') && s.offsetHeight >= 40) "
                  "window.sawProgress = true; else requestAnimationFrame(poll); }; requestAnimationFrame(poll); }")
    page.locator("#sql-run").click()
    page.locator("#sql-status").get_by_text("4 rows in").wait_for()
    assert page.evaluate("window.sawProgress")
    _wait_param(page, "sql", QUERY)
    assert _params(page)["tab"] == "sql"

    # Reloading the copied link restores every part of the view.
    page.goto(page.url)
    page.locator("#sql-status").get_by_text("4 rows in").wait_for()
    assert page.get_by_role("tab", name="SQL console").get_attribute("aria-selected") == "true"
    assert "LaViDa" in page.locator("#sql-result").inner_text()
    page.get_by_role("tab", name="Per dataset").click()
    _wait_datasets(page, VQA_OOD)
    assert page.locator("#ds-task").get_by_label("vqa").is_checked()
    assert page.locator("#ds-split").get_by_label("OOD").is_checked()
    page.get_by_role("tab", name="Overview").click()
    assert page.get_by_label("compare sources side by side").is_checked()

    # A run published while the page is open shows up by itself (timer -> store version -> refresh).
    page.get_by_role("tab", name="Per dataset").click()
    page.locator("#ds-sources").get_by_label("pipeline").check()
    with StoreWriter(path) as writer:
        writer.add_run(pipeline_run("Qwen2.5-VL", 1.0, datasets=VQA_OOD, task="vqa"))
    page.locator("#store-status").get_by_text("3 pipeline").wait_for()
    page.locator("#per-dataset-table").get_by_role("columnheader", name="pipeline · Qwen2.5-VL").wait_for()

    # List items with commas survive the trip through the URL (runner model names hold commas).
    names = ["LaViDa (tiny, untrained)", "100% tiny"]
    page.evaluate(write_js("models"), names)
    assert Params(_params(page)).many("models", names, []) == names

    # A screenshot of the paper's overview.
    page.goto(url + "?tab=overview&source=paper")
    page.locator("#tab-overview .js-plotly-plot").nth(2).wait_for()
    page.wait_for_timeout(1000)  # let plotly finish its transitions
    shot = Path(SCREENSHOT_DIR or tmp_path) / "overview-paper.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000

    origin = urlparse(url).netloc
    outside = sorted({r for r in requests if urlparse(r).netloc != origin and not r.startswith("data:")})
    assert len(requests) > 20 and not outside, f"requests left the local server: {outside}"


def test_missing_browser_skips_unless_required(monkeypatch, tmp_path):
    import tests.app.test_browser as this

    monkeypatch.setattr(this, "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.delenv("VLMEMBED_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="VLMEMBED_REQUIRE_BROWSER=1"):
        _chromium_or_skip()
    monkeypatch.setenv("VLMEMBED_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="is missing"):
        _chromium_or_skip()
