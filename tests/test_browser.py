"""The Dagster UI in a real browser: Debian's chromium, headless, driven by Playwright.

It opens the shared webserver (conftest.webserver: the demo plus its broken day) the way an
ML engineer would, and checks what they would look at: the asset graph, a drifted model's
drift report with its table and picture, and the failed data-quality check of the broken
day. Each test leaves a screenshot in test-artifacts/ (also when it fails).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests

from conftest import BROKEN_DAY, BROKEN_MODEL, DROPPED, ROOT, STRINGS

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; Playwright must not download a browser
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = ROOT / "test-artifacts"
DRIFTED_DAY = "2026-11-08"
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser_context(webserver):
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is not installed (apt-get install chromium)"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1600, "height": 1000})
        context.set_default_timeout(TIMEOUT_MS)
        skip_community_dialog(context, webserver)
        yield context
        browser.close()


def skip_community_dialog(context, url: str) -> None:
    """The UI's first visit opens "Join the Dagster community" a second after loading; skip it as a user would."""
    answer = requests.post(f"{url}/graphql", json={"query": "{ shouldShowNux }"}, timeout=30).json()
    if not answer["data"]["shouldShowNux"]:
        return
    page = context.new_page()
    page.goto(url)
    skip = page.get_by_role("button", name="Skip")
    skip.click()
    skip.wait_for(state="detached")
    page.close()


@pytest.fixture()
def page(browser_context, request):
    """A fresh tab that records script errors and is photographed when the test ends, pass or fail."""
    tab = browser_context.new_page()
    tab.script_errors = []
    tab.on("pageerror", lambda error: tab.script_errors.append(str(error)))
    yield tab
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    tab.close()


def visit(page, url: str, ready_text: str):
    page.goto(url)
    page.get_by_text(ready_text, exact=True).first.wait_for()
    return page


def show_markdown(page, entry: str):
    """Open the dialog that a markdown metadata entry hides behind its [Show Markdown] link."""
    row = page.locator("tr").filter(has=page.get_by_text(entry, exact=True))
    row.get_by_text("[Show Markdown]").first.click()
    dialog = page.get_by_role("dialog").filter(has_text=entry)
    dialog.wait_for()
    return dialog


def test_asset_graph_loads_without_errors(page, webserver):
    from playwright.sync_api import expect

    visit(page, f"{webserver}/asset-groups", "Global asset lineage")
    for group in ("sources", "monitoring", "reports"):
        expect(page.get_by_text(group, exact=True).first).to_be_visible()
    visit(page, f"{webserver}/locations/watchkeeper/asset-groups/monitoring", "production_window")
    for asset in ("reference_profile", "production_window", "drift_report", "performance_metrics",
                  "concept_drift", "model_health"):
        expect(page.get_by_text(asset, exact=True).first).to_be_visible()
    expect(page.get_by_text("0 / 1 Passed")).to_be_visible()  # production_window's node: its check failed
    assert "error" not in page.inner_text("body").lower() and page.script_errors == []


def test_drift_report_of_a_drifted_day_shows_its_table_and_plot(page, webserver):
    visit(page, f"{webserver}/assets/drift_report?view=partitions&partition={DRIFTED_DAY}", "summary")
    summary = page.locator("table").filter(has_text="share_drifted").last
    assert "diabetes_regressor" in summary.inner_text() and "dataset_drift" in summary.inner_text()
    report = show_markdown(page, "report")
    assert "diabetes_regressor — dataset drift" in report.inner_text()
    table = report.locator("table").first
    assert "wasserstein" in table.inner_text() and "bmi" in table.inner_text()
    image = report.locator("img").first
    assert image.get_attribute("src").startswith("data:image/png;base64,")
    assert image.evaluate("img => img.complete && img.naturalWidth > 0"), "the PNG decodes and is drawn"
    assert page.script_errors == []


def test_failed_data_quality_check_is_visible(page, webserver):
    from playwright.sync_api import expect

    visit(page, f"{webserver}/assets/production_window?view=checks", "data_quality")
    page.get_by_text(BROKEN_DAY, exact=True).first.wait_for()
    expect(page.get_by_text("Failed", exact=True).first).to_be_visible()
    assert f"{BROKEN_MODEL}: severe: {DROPPED}: column missing" in page.inner_text("body")
    problems = show_markdown(page, "problems").inner_text()
    assert f"{STRINGS}: 100.0% of values are not numbers" in problems and "severe" in problems
    assert page.script_errors == []
