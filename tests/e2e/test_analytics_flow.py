"""A manager signs in to the analytics dashboard in Chromium and sees what a generation cost."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    OWNER_EMAIL,
    OWNER_PASSWORD,
    free_port,
    run_creator,
    start_server,
    stop_server,
)

pytestmark = pytest.mark.e2e


def grid_cell(table: Any, text: str) -> Any:
    """A cell of an st.dataframe by its text.

    The grid draws on a canvas and mirrors the cells in view into a hidden accessibility
    table, which is what screen readers (and this test) read.
    """
    return table.get_by_role("gridcell", name=text, exact=True, include_hidden=True)


def agrees(shown: str, printed: str) -> bool:
    """True when the dashboard's amount, rounded as the CLI printed it, is the CLI's amount.

    The dashboard writes costs under $0.0001 to the micro-dollar where the CLI may not.
    """
    shown_usd, printed_usd = (Decimal(t.replace("$", "").replace(",", "")) for t in (shown, printed))
    precise_enough = shown_usd.as_tuple().exponent <= printed_usd.as_tuple().exponent
    return precise_enough and shown_usd.quantize(printed_usd) == printed_usd


def test_owner_sees_the_cost_of_a_cli_generation_on_the_dashboard(
    creator_env: dict[str, str], page: Any, screenshots_dir: Path
) -> None:
    from playwright.sync_api import expect

    made = run_creator(
        creator_env, "generate", "a red fox", "--model", "tiny-sd",
        "--project", "Analytics demo", "--user", OWNER_EMAIL, "--seed", "7",
    )  # fmt: skip
    printed = re.search(r"^cost: (\$[\d,.]+)$", made, re.MULTILINE)
    assert printed, f"the CLI printed no cost:\n{made}"
    cost = printed.group(1)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    server = start_server(creator_env, ["analytics", "--port", str(port)], url + "_stcore/health")
    try:
        page.goto(url)
        expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=30_000)
        page.screenshot(path=str(screenshots_dir / "analytics-sign-in.png"))
        page.get_by_role("textbox", name="E-mail").fill(OWNER_EMAIL)
        page.get_by_role("textbox", name="Password").fill(OWNER_PASSWORD)
        page.get_by_role("button", name="Sign in").click()

        metric = page.get_by_test_id("stMetric")
        spend = metric.filter(has_text="Spend").get_by_test_id("stMetricValue")
        expect(spend).to_have_text(re.compile(r"^\$[\d,.]+$"), timeout=30_000)
        shown = spend.inner_text()
        assert agrees(shown, cost), f"the dashboard shows {shown}, the CLI printed {cost}"
        expect(metric.filter(has_text="Generations")).to_contain_text("1")
        expect(metric.filter(has_text="Unpriced runs")).to_contain_text("0")
        expect(page.get_by_test_id("stSidebar")).to_contain_text("Acme Studio")
        table = page.get_by_test_id("stDataFrame")
        expect(table).to_be_visible()
        for text in ("Analytics demo", OWNER_EMAIL, "tiny-sd · diffusers", "succeeded", shown):
            expect(grid_cell(table, text)).to_have_count(1)
        expect(page.locator(".js-plotly-plot .gtitle")).to_have_text("Spend per day (USD)")

        page.wait_for_timeout(1000)  # let plotly finish its transition before the picture
        page.screenshot(path=str(screenshots_dir / "analytics.png"), full_page=True)

        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    finally:
        stop_server(server)
