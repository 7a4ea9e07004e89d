"""A real browser (headless Chromium) on the UI's asset graph and on the chart page."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from jaffle_stack.graphql import WEBSERVER_URL
from jaffle_stack.stack import ObservedRun, Stack
from tests import ASSETS

pytestmark = pytest.mark.stack

REPORTS_URL = "http://127.0.0.1:8080"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set CHROMIUM)")
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS,
            viewport={"width": 1600, "height": 1000},
        )  # fmt: skip
        assert context.browser is not None
        yield context.browser
        context.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    page = browser.contexts[0].new_page()
    yield page
    page.close()


def test_login_then_asset_graph_shows_every_asset(
    page: Page, stack: Stack, materialized: ObservedRun, artifacts: Path
) -> None:
    # Any page of the UI sends a browser without a session to the login form, then back.
    page.goto(f"{WEBSERVER_URL}/asset-groups", wait_until="load")
    assert "/login" in page.url
    page.screenshot(path=str(artifacts / "login.png"))
    assert stack.admin is not None
    page.fill("input[name=username]", stack.admin[0])
    page.fill("input[name=password]", stack.admin[1])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{WEBSERVER_URL}/asset-groups*", timeout=30_000)
    # Global asset lineage; its groups start collapsed, the graph's settings menu expands them.
    # The community dialog of a first visit covers the page whenever it shows up: skip it.
    skip = page.get_by_role("button", name="Skip")
    page.add_locator_handler(skip, lambda: skip.click())
    page.wait_for_load_state("networkidle")
    page.get_by_role("button", name="settings", exact=True).click()
    page.get_by_role("menuitem", name="Expand all groups").click()
    page.keyboard.press("Escape")
    graph = page.locator("svg foreignObject")
    for name in ASSETS:
        graph.get_by_text(name, exact=True).first.wait_for(state="visible", timeout=30_000)
    page.screenshot(path=str(artifacts / "asset_graph.png"))


def test_chart_page_draws_a_plotly_bar_chart(
    page: Page, materialized: ObservedRun, artifacts: Path
) -> None:
    page.goto(f"{REPORTS_URL}/order_count_chart.html", wait_until="load")
    plot = page.locator(".js-plotly-plot")
    plot.wait_for(state="visible", timeout=30_000)
    assert plot.locator("svg.main-svg").count() >= 1
    bars = plot.locator("g.trace.bars path")
    bars.first.wait_for(state="attached", timeout=30_000)
    assert bars.count() > 1
    assert plot.locator(".gtitle").text_content() == "Orders per customer"
    page.screenshot(path=str(artifacts / "order_count_chart.png"))


def logged_in(page: Page, stack: Stack, url: str) -> None:
    """Opens url, through the login form when the browser has no session yet."""
    page.goto(url, wait_until="load")
    if "/login" in page.url:
        assert stack.admin is not None
        page.fill("input[name=username]", stack.admin[0])
        page.fill("input[name=password]", stack.admin[1])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{url}*", timeout=30_000)
    skip = page.get_by_role("button", name="Skip")
    page.add_locator_handler(skip, lambda: skip.click())


def test_the_daily_partitions_show_with_the_loaded_days(
    page: Page, stack: Stack, materialized: ObservedRun, artifacts: Path
) -> None:
    """Issue 10: raw_orders' partitions tab lists the days, the sample's days materialized."""
    logged_in(page, stack, f"{WEBSERVER_URL}/assets/raw_orders?view=partitions")
    page.wait_for_load_state("networkidle")
    page.get_by_text("Materialized", exact=False).first.wait_for(state="visible", timeout=30_000)
    # The partition keys are days: the newest (today, in the schedule's time zone) heads the list.
    page.get_by_text("2018-01-01", exact=False).first.wait_for(state="attached", timeout=30_000)
    page.screenshot(path=str(artifacts / "partitions.png"))
