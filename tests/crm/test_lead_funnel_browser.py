"""Sales open the lead lifecycle funnel under the workspace's 评分分布 tab in Chromium, at
1280×800 and 390×844, and read per week and per room the same figures the API test counts
from the events (tests/crm/test_lead_funnel.py make_story); a room is named by its title and
links to its 战报."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings

from tests.crm.test_lead_funnel import make_story
from tests.support.browser import launch_chromium

pytestmark = [pytest.mark.integration, pytest.mark.browser]

VIEWPORTS = ({"width": 1280, "height": 800}, {"width": 390, "height": 844})
SIZE_NAMES = {1280: "desktop", 390: "phone"}
# docs/screenshots/workspace-funnel-*.png come from here (the demo has no broadcast, so its
# funnel is empty); rewritten only with UPDATE_SCREENSHOTS=1.
SCREENSHOTS = Path(settings.BASE_DIR) / (
    "docs/screenshots" if os.environ.get("UPDATE_SCREENSHOTS") == "1" else "test-artifacts"
)
STAGES = ("viewers", "engaged", "hot", "customers")


def _sign_in(browser, live_server, viewport):
    page = browser.new_page(viewport=viewport, locale="zh-CN")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # CSP (script-src 'self') refusals show as console errors; the live server's missing
    # WebSocket endpoint does too, and is not this page's fault.
    page.on(
        "console",
        lambda msg: "Content Security Policy" in msg.text and errors.append(msg.text),
    )
    page.goto(f"{live_server.url}/workspace/")
    page.fill("input[name=username]", "bob")
    page.fill("input[name=password]", "pw-123456")
    page.click("#login-form button")
    page.wait_for_selector("#app:not([hidden])")
    return page, errors


def _row(page, cohort: str) -> dict:
    row = page.locator(f"#funnel-rows tr[data-cohort='{cohort}']")
    counts = tuple(int(row.locator(f"td[data-stage={s}] strong").inner_text()) for s in STAGES)
    rates = tuple(row.locator(f"td[data-stage={s}] .rate").inner_text().strip() for s in STAGES[1:])
    return {
        "counts": counts,
        "rates": rates,
        "overall": row.locator("td[data-stage=overall]").inner_text(),
    }


def _chart_against_api(page, by: str) -> tuple[list, list]:
    """(the chart's series data, the API's stage counts per stage), both read in the page:
    the chart from its ECharts instance, the API with the sales user's own token."""
    return page.evaluate(
        """async ([by, stages]) => {
            const chart = echarts.getInstanceByDom(document.getElementById('funnel-chart'));
            const option = chart.getOption();
            const res = await fetch(`/api/v1/leads/funnel?by=${by}`, {headers: {Authorization:
                `Token ${sessionStorage.getItem('qm.staff.token')}`}});
            const rows = (await res.json()).rows;
            return [
                {series: option.series.map((s) => [s.name, s.data]), names: option.yAxis[0].data},
                {series: stages.map((s) => rows.map((r) => r[s])),
                 cohorts: rows.map((r) => r.title || r.cohort)},
            ];
        }""",
        [by, list(STAGES)],
    )


def _chart_fits(page) -> dict:
    """The chart's drawn canvas and its box against the viewport."""
    return page.evaluate(
        "() => { const box = document.getElementById('funnel-chart');"
        " const c = box.querySelector('canvas'); const r = box.getBoundingClientRect();"
        " return {canvas: c ? c.width * c.height : 0, right: r.right, height: r.height}; }"
    )


@pytest.mark.django_db(transaction=True)
def test_sales_read_the_funnel_per_week_and_per_room_on_a_desktop_and_a_phone(
    live_server, acme, other_org, sales_bob
):
    from playwright.sync_api import expect, sync_playwright

    room1, room2 = make_story(acme, other_org)["rooms"]
    with sync_playwright() as p:
        browser = launch_chromium(p)
        for viewport in VIEWPORTS:
            page, errors = _sign_in(browser, live_server, viewport)
            page.click(".tabs button[data-tab=stats]")
            page.wait_for_selector("#funnel-rows tr[data-cohort='2026-11-02']")
            page.locator("#funnel-title").scroll_into_view_if_needed()
            assert page.locator("#funnel-rows tr").count() == 2
            week1 = _row(page, "2026-11-02")
            assert week1["counts"] == (6, 4, 2, 1), (viewport, week1)
            assert week1["rates"] == ("66.7%", "50%", "50%"), (viewport, week1)
            assert week1["overall"] == "16.7%"
            assert _row(page, "2026-11-09")["counts"] == (3, 2, 2, 1)
            assert "热线索" in page.locator("#funnel-head").inner_text()
            assert "A" in page.locator("#funnel-hint").inner_text()
            # The chart above the table draws the API's own counts, stage by stage.
            chart, api = _chart_against_api(page, "week")
            assert [name for name, _ in chart["series"]] == ["观众", "互动", "热线索", "成交客户"]
            assert [data for _, data in chart["series"]] == api["series"], (viewport, chart, api)
            # Each week's bars in the table's order, each bar the week's count at that stage.
            assert (
                chart["names"]
                == api["cohorts"]
                == page.locator("#funnel-rows th[scope=row]").all_inner_texts()
            )
            weeks = dict(zip(api["cohorts"], zip(*api["series"], strict=True), strict=True))
            assert weeks == {"2026-11-02": (6, 4, 2, 1), "2026-11-09": (3, 2, 2, 1)}
            fits = _chart_fits(page)
            assert fits["canvas"] > 0 and fits["height"] > 100, fits
            assert fits["right"] <= viewport["width"], fits
            # The funnel whole (title to table), cut from the full page: on a phone it is
            # taller than the screen under the sticky header.
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            area = page.evaluate(
                "() => { const a = document.getElementById('funnel-title').getBoundingClientRect();"
                " const b = document.querySelector('.funnel-wrap').getBoundingClientRect();"
                " return {x: 0, y: a.top + scrollY - 8, width: innerWidth,"
                " height: b.bottom - a.top + 16}; }"
            )
            page.screenshot(
                path=str(SCREENSHOTS / f"workspace-funnel-{SIZE_NAMES[viewport['width']]}.png"),
                full_page=True,
                clip=area,
            )

            page.click("#funnel-by button[data-by=room]")
            page.wait_for_selector(f"#funnel-rows tr[data-cohort='{room1}']")
            assert page.locator("#funnel-by button.on").get_attribute("data-by") == "room"
            first = _row(page, room1)
            assert first["counts"] == (6, 4, 2, 1), (viewport, first)
            assert _row(page, room2)["counts"] == (3, 2, 2, 1)
            page.wait_for_selector("#funnel-chart[data-by=room]")
            chart, api = _chart_against_api(page, "room")
            assert [data for _, data in chart["series"]] == api["series"], (viewport, chart, api)
            assert chart["names"] == api["cohorts"] == ["周二彩妆专场", "周二护肤专场"]
            rooms = dict(zip(api["cohorts"], zip(*api["series"], strict=True), strict=True))
            assert rooms == {"周二护肤专场": (6, 4, 2, 1), "周二彩妆专场": (3, 2, 2, 1)}
            names = page.locator("#funnel-rows th[scope=row]").all_inner_texts()
            assert names == ["周二彩妆专场", "周二护肤专场"]  # newest room first
            link = page.locator(f"#funnel-rows a[data-room-report='{room1}']")
            assert link.get_attribute("href") == f"/console/rooms/{room1}/report/"
            text = page.locator("[data-panel=stats]").inner_text()
            assert "直播间 #" not in text
            assert "null" not in text and "undefined" not in text
            # The table scrolls inside its box on a phone; the page itself never scrolls sideways.
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"] + 1
            # The room's name opens its 战报 (sales keep their sign-in).
            link.click()
            page.wait_for_url(f"**/console/rooms/{room1}/report/")
            expect(page.locator("#report-title")).to_contain_text("周二护肤专场")
            assert not errors, errors
            page.close()
        browser.close()
