"""The Dagster UI in a real browser: Debian's chromium, headless, driven by Playwright.

It opens the shared webserver (conftest.webserver: the demo plus its broken day) the way an
ML engineer would, and checks what they would look at: the asset graph, a drifted model's
drift report with its table and picture, and the failed data-quality check of the broken
day. Each test leaves a screenshot in test-artifacts/ (also when it fails).
"""

from __future__ import annotations

import os
import re
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
    assert widest_table_end(page) <= page.viewport_size["width"]
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


# ---------------------------------------------------------------- the README's tour, step by step

TOUR = ARTIFACTS / "tour"
LATEST_DEMO_DAY = "2026-11-14"
UNHEALTHY = {"breast_cancer_classifier": "degraded", "churn_feast": "drifted", "diabetes_regressor": "drifted"}
PRIMARY = {"breast_cancer_classifier": "accuracy", "churn_feast": "accuracy", "diabetes_regressor": "mae",
           "wine_classifier": "accuracy"}
DECIMAL = re.compile(r"(?<![\w.])-?(\d+\.\d+)(?:e[-+]?\d+)?(?![\w.])")


def significant_digits(number: str) -> int:
    """Digits a person has to read in `number` (leading zeros do not count)."""
    return len(number.replace(".", "").lstrip("0"))


def long_numbers(text: str) -> list[str]:
    """Every decimal number in `text` with more than 4 significant digits."""
    return [m.group(0) for m in DECIMAL.finditer(text) if significant_digits(m.group(1)) > 4]


def snap(page, step: str) -> None:
    """A screenshot of this step of the tour, for a person to look at."""
    TOUR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(TOUR / f"{step}.png"), full_page=True)


def test_significant_digits_rule():
    assert long_numbers("0.18627450980392157 and 0.186 and 1.158 and 12.34 and 2026-11-08 and 1.235e-05 and 1.2346e-05") == \
        ["0.18627450980392157", "1.2346e-05"]


def test_tour_unhealthy_models_and_why_on_first_load(page, webserver):
    """model_health of the latest demo day: who is unhealthy and why, inline in the verdicts table
    (no [Show Markdown] to open), with the alerts it queued and where they were held."""
    visit(page, f"{webserver}/assets/model_health?view=partitions&partition={LATEST_DEMO_DAY}", "verdicts")
    verdicts = page.locator("tr").filter(has=page.get_by_text("verdicts", exact=True)).first
    verdicts.get_by_text("breast_cancer_classifier", exact=True).wait_for()
    snap(page, "1_model_health_latest_day")
    assert page.get_by_role("dialog").count() == 0
    for model, status in UNHEALTHY.items():
        row = verdicts.locator("tr").filter(has=page.get_by_text(model, exact=True)).first
        cells = row.locator("td").all_inner_texts()
        assert status in cells and ("fail" if status == "degraded" else "warn") in cells, f"{model}: {cells}"
    why = verdicts.inner_text()
    assert "Accuracy" in why and "below the reference" in why, "the degraded model's reason is not inline"
    assert "bmi (wasserstein" in why and "reference SDs" in why, "the drifted model's features and effects are not inline"
    assert "; each signal" not in why and ".;" not in why
    assert long_numbers(page.inner_text("body")) == []
    assert page.script_errors == []


def test_tour_healthy_check_warns_and_fails_per_model(page, webserver):
    """The `healthy` check's latest execution (the broken day, the newest window) names each unhealthy
    model and why, and gives every model its pass / warn / fail."""
    visit(page, f"{webserver}/assets/model_health?view=checks", "healthy")
    page.get_by_text("healthy", exact=True).first.click()
    page.get_by_text("models unhealthy", exact=False).first.wait_for()
    snap(page, "2_model_health_healthy_check")
    body = page.inner_text("body")
    assert BROKEN_DAY in body and f"1 of 4 models unhealthy. {BROKEN_MODEL} is failed: The window failed data quality" in body
    for model in PRIMARY:   # one metadata entry per model, its name then its outcome
        assert f"\n{model}\n{'fail' if model == BROKEN_MODEL else 'pass'}\n" in body, model
    assert long_numbers(body) == []
    assert page.script_errors == []


def test_tour_each_model_trend_in_plots_tab(page, webserver):
    """performance_metrics' Overview, Metadata, Plots: one chart per model's primary metric over the windows."""
    visit(page, f"{webserver}/assets/performance_metrics", "Metadata")
    page.get_by_role("button", name="Plots").click()
    for model, metric in PRIMARY.items():
        page.get_by_text(f"{model} {metric}", exact=True).first.wait_for()
    page.wait_for_function("() => document.querySelectorAll('canvas').length >= 4")
    snap(page, "3_performance_plots")
    assert page.script_errors == []


def test_tour_scorecard_of_every_model_with_links(page, webserver):
    """Every model has a scorecard: its latest verdict and why, its problems with their tickets inline,
    and absolute links to its drift report, its alerts and its MLflow version."""
    host = webserver.rsplit(":", 1)[0]
    for model in PRIMARY:
        visit(page, f"{webserver}/assets/model_scorecard?view=partitions&partition={model}", "latest_status")
        page.get_by_text("latest_why", exact=True).first.wait_for()
        snap(page, f"4_scorecard_{model}")
        for link in ("drift_report", "model_health", "#/models/"):
            href = page.locator(f"a[href*='{link}']").first.get_attribute("href")
            assert href.startswith(host), f"{model}: {link} link {href} is not absolute"
        assert long_numbers(page.inner_text("body")) == []
    visit(page, f"{webserver}/assets/model_scorecard?view=partitions&partition=breast_cancer_classifier", "problems")
    problems = page.locator("tr").filter(has=page.get_by_text("problems", exact=True)).first.inner_text()
    assert "performance" in problems and "incident" in problems and "tickets" in problems
    assert "promotion_approval" in problems and "change" in problems
    assert page.script_errors == []


def test_tour_drift_pictures_fit_their_frame(page, webserver):
    visit(page, f"{webserver}/assets/drift_report?view=partitions&partition={DRIFTED_DAY}", "summary")
    report = show_markdown(page, "report")
    images = report.locator("img")
    images.first.wait_for()
    page.wait_for_function("() => [...document.querySelectorAll('[role=dialog] img')].every(i => i.complete)")
    snap(page, "5_drift_report_pictures")
    frame = report.bounding_box()
    for i in range(images.count()):
        image = images.nth(i)
        box = image.bounding_box()
        natural = image.evaluate("img => img.naturalWidth")
        assert box["x"] >= frame["x"] and box["x"] + box["width"] <= frame["x"] + frame["width"] + 1, \
            f"picture {i} ({box}) sticks out of its frame ({frame})"
        assert natural <= frame["width"], f"picture {i} is {natural} px wide, scaled into a {frame['width']} px frame"
    text = report.inner_text()
    assert "reference SDs" not in text or "wasserstein" in text
    assert long_numbers(text) == []


def widest_table_end(page) -> float:
    """Where the rightmost table of the page ends, in px: Dagster lays every metadata value out as wide
    as the widest, so one wide table pushes them all off the page."""
    return page.evaluate("() => Math.max(...[...document.querySelectorAll('table')].map(t => t.getBoundingClientRect().right))")


def test_tour_performance_tables_fit_and_flag_cbpe(page, webserver):
    """performance_metrics of the drifted day, as laid out on a 1600 px page: the `metrics` table (every
    metric with its interval, reference and CBPE estimate) and the per-model `models` table end inside
    the page; only the concept-drifted model is noted as one CBPE cannot see. Its partitions are the
    days with data: none is "missing"."""
    visit(page, f"{webserver}/assets/performance_metrics?view=partitions&partition={DRIFTED_DAY}", "metrics")
    metrics = page.locator("table").filter(has=page.get_by_text("cbpe", exact=True)).last
    models = page.locator("table").filter(has=page.get_by_text("labelled", exact=True)).last
    models.wait_for()
    snap(page, "6_performance_metrics")
    viewport = page.viewport_size["width"]
    for table in (metrics, models):
        box = table.bounding_box()
        assert box["x"] + box["width"] <= viewport, f"a table ends at {box['x'] + box['width']:.0f} px ({viewport})"
    assert widest_table_end(page) <= viewport
    rows = [line.split("\t") for line in metrics.inner_text().splitlines()]
    assert rows[0] == ["model", "metric", "realised", "reference", "cbpe"]
    cancer = {row[1]: row for row in rows if row[0] == "breast_cancer_classifier"}
    assert {"accuracy", "precision", "recall", "f1", "roc_auc"} <= set(cancer)
    assert cancer["accuracy"][4].endswith("*") and all(row[3] != "-" for row in cancer.values())
    noted = [line.split("\t")[0] for line in models.inner_text().splitlines() if "CBPE is blind to concept drift" in line]
    assert noted == ["breast_cancer_classifier"]
    page.get_by_text("Missing (0)", exact=True).wait_for()
    assert long_numbers(page.inner_text("body")) == []


def test_window_partitions_are_the_days_with_data(webserver):
    """The served demo (its 14 days and the broken day) has those days as windows and no later one."""
    query = '{ assetNodeOrError(assetKey: {path: ["performance_metrics"]}) { ... on AssetNode { partitionKeys } } }'
    answer = requests.post(f"{webserver}/graphql", json={"query": query}, timeout=60).json()
    days = [f"2026-11-{d:02d}" for d in range(1, 15)] + [BROKEN_DAY]
    assert answer["data"]["assetNodeOrError"]["partitionKeys"] == days


def test_tour_alerts_of_the_drifted_day_after_label_refreshes(page, webserver):
    """2026-11-08's model_health was last materialised by a label refresh that raised nothing new; the
    alerts the day raised are still there, with their full text."""
    visit(page, f"{webserver}/assets/model_health?view=partitions&partition={DRIFTED_DAY}", "verdicts")
    page.get_by_text("refresh_labels", exact=True).first.wait_for()
    raised = page.locator("tr").filter(has=page.get_by_text("alerts_raised", exact=True)).first.inner_text()
    assert int(raised.split()[-1]) >= 3, raised
    alerts = show_markdown(page, "alerts")
    snap(page, "7_model_health_drifted_day_alerts")
    text = alerts.inner_text()
    for title in ("breast_cancer_classifier v1: performance degradation", "breast_cancer_classifier v1: concept drift",
                  "diabetes_regressor v1: data drift"):
        assert title in text
    assert "error rate" in text and "bmi: ks statistic" in text
    assert long_numbers(text) == []
