"""The sales workspace on the seeded demo, as the demo admin first meets it, in Chromium at
1280×800 and 390×844: every tab of /workspace/ and /workspace/campaigns/ opens with the
demo's data in it (leads, score distribution with its rules, the segment builder, campaigns,
journeys, templates) and no stray "null"/"undefined", and a lead's detail shows its score
breakdown and timeline. The screenshots of each tab in docs/screenshots/ come from this
test with UPDATE_SCREENSHOTS=1 (test-artifacts/ otherwise), like tests/browser/test_viewer_page.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(settings.BASE_DIR) / (
    "docs/screenshots" if os.environ.get("UPDATE_SCREENSHOTS") == "1" else "test-artifacts"
)
SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
# tab -> a selector that holds demo data once the tab has loaded
WORKSPACE_TABS = {
    "leads": "#lead-rows tr",
    "segments": "[data-panel=segments] h2",
    "stats": "#rule-rows tr",
    "tasks": "[data-panel=tasks] h2",
    "teams": "#team-rules h3",
    "invites": "[data-panel=invites] h2",
}
CAMPAIGN_TABS = ("campaigns", "journeys", "templates")


def _text(page, selector: str) -> str:
    return page.locator(selector).inner_text()


@pytest.mark.parametrize("size", list(SIZES))
def test_the_demo_admin_tours_every_workspace_tab(server, size, monkeypatch):
    from playwright.sync_api import sync_playwright

    from tests.support.browser import launch_chromium

    call_command("seed_demo")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # no ORM below
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_context(viewport=SIZES[size], locale="zh-CN").new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{server}/workspace/")
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", "demo12345")
            page.click("#login-form button[type=submit]")
            page.wait_for_selector("#app:not([hidden])")

            for tab, filled in WORKSPACE_TABS.items():
                page.click(f".tabs button[data-tab={tab}]")
                panel = f"[data-panel={tab}]"
                page.wait_for_selector(f"{panel}:not([hidden])")
                page.wait_for_selector(filled)
                page.wait_for_load_state("networkidle")
                text = _text(page, panel)
                assert "null" not in text and "undefined" not in text, (tab, text)
                page.screenshot(path=str(SCREENSHOTS / f"workspace-{tab}-{size}.png"))
            # the demo's leads, its scoring rules and its saved segments are on the page
            page.click(".tabs button[data-tab=stats]")
            assert page.locator("#rule-rows tr").count() >= 3
            assert page.locator("#chart svg").count() == 1
            # the lifecycle funnel under it, per week, from the demo's recorded joins
            page.wait_for_selector("#funnel-rows tr")
            # (its screenshot is tests/crm/test_lead_funnel_browser.py's, with broadcasts in it)
            page.click(".tabs button[data-tab=leads]")
            assert page.locator("#lead-rows tr").count() >= 10

            # a lead's detail: its score, why, and what happened
            page.click("#lead-rows tr >> nth=0")
            page.wait_for_selector("#detail:not([hidden]) ol.timeline li")
            page.wait_for_load_state("networkidle")
            detail = _text(page, "#detail")
            assert "null" not in detail and "undefined" not in detail, detail
            page.screenshot(path=str(SCREENSHOTS / f"workspace-lead-{size}.png"))

            page.goto(f"{server}/workspace/campaigns/")
            page.wait_for_selector("#app:not([hidden])")
            for tab in CAMPAIGN_TABS:
                page.click(f".cp-top button[data-tab={tab}]")
                page.wait_for_selector(f"#tab-{tab}:not([hidden])")
                page.wait_for_load_state("networkidle")
                text = _text(page, f"#tab-{tab}")
                assert text.strip() and "undefined" not in text, (tab, text)
                page.screenshot(path=str(SCREENSHOTS / f"workspace-campaigns-{tab}-{size}.png"))
            assert page.evaluate("document.documentElement.scrollWidth") <= SIZES[size]["width"] + 1
            assert errors == []
        finally:
            browser.close()
