"""The workspace's navigation in Chromium as sales and admin use it: every tab reachable on a
phone (390×844) and on a desktop, and the Teams tab without stray "null" text."""

from __future__ import annotations

import pytest

from tests.support.browser import launch_chromium

TABS = ["leads", "segments", "stats", "tasks", "teams", "invites"]
VIEWPORTS = ({"width": 1280, "height": 800}, {"width": 390, "height": 844})


def _signed_in(browser, live_server, viewport, username):
    page = browser.new_page(viewport=viewport, locale="zh-CN")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server.url}/workspace/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "pw-123456")
    page.click("#login-form button")
    page.wait_for_selector("#app:not([hidden])")
    return page, errors


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_sales_reach_every_workspace_tab_on_a_phone_and_a_desktop(live_server, acme, sales_bob):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        for viewport in VIEWPORTS:
            page, errors = _signed_in(browser, live_server, viewport, "bob")
            for tab in TABS:
                button = page.locator(f".tabs button[data-tab={tab}]")
                box = button.bounding_box()
                # A finger-sized target inside the screen, not a 6 px sliver.
                assert box and box["width"] >= 32 and box["height"] >= 24, (viewport, tab, box)
                assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"] + 1
                button.click()  # a real click: fails if anything covers the tab
                page.wait_for_selector(f"[data-panel={tab}]:not([hidden])")
                assert page.locator(f"[data-panel={tab}]").is_visible()
            link = page.locator('.tabs a.tab-link[href="/workspace/campaigns/"]')
            box = link.bounding_box()
            assert box and box["width"] >= 32 and box["x"] + box["width"] <= viewport["width"] + 1
            link.click()
            page.wait_for_url("**/workspace/campaigns/")
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"] + 1
            assert not errors, errors
            page.close()
        browser.close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_teams_tab_prints_no_null_for_sales_or_for_an_admin_without_teams(
    live_server, acme, sales_bob, admin_carol
):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        for username in ("bob", "carol"):  # sales, then an admin while no team exists
            page, errors = _signed_in(browser, live_server, VIEWPORTS[1], username)
            page.click(".tabs button[data-tab=teams]")
            page.wait_for_selector("#team-rules h3")
            text = page.locator("[data-panel=teams]").inner_text()
            assert "null" not in text and "undefined" not in text, (username, text)
            assert "还没有团队" in text and "还没有分配规则" in text
            if username == "carol":
                # The admin still gets the form to create the first team.
                assert page.locator("#team-form form[data-form=new]").is_visible()
            assert not errors, errors
            page.close()
        browser.close()
