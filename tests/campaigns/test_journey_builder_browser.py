"""The journey builder in Chromium: a sales user creates a journey, edits its steps (a new
version), activates it; a bad step is pointed out by the API's field message."""

from __future__ import annotations

import pytest

from campaigns.demo import seed_org
from campaigns.models import Journey
from tests.support.browser import campaigns_page_signed_in, launch_chromium


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_sales_build_and_edit_a_journey_in_the_workspace(live_server, acme, sales_bob, monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM reads below are
    # plain test assertions between browser steps, not async code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    seed_org(acme)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page, errors = campaigns_page_signed_in(browser, live_server)
        page.click("button[data-tab=journeys]")
        page.wait_for_selector("#jb-pick option >> nth=4", state="attached")

        builder = page.locator("#journey-builder")
        builder.locator("input[name=name]").fill("<b>关注</b>后提醒")
        page.select_option("#jb-trigger", "follow")
        page.select_option("#jb-condition [name=cond_field]", "gender")
        page.fill("#jb-condition [name=cond_value]", "female")
        page.select_option("#jb-add-type", "wait")
        page.click("#jb-add")
        page.select_option("#jb-add-type", "send")
        page.click("#jb-add")
        page.select_option("#jb-steps li >> nth=1 >> select[name=template]", "replay_link")
        page.fill("#jb-steps li >> nth=0 >> input[name=minutes]", "30")
        # A tag step left empty is refused: the API names the step and the field.
        page.select_option("#jb-add-type", "tag")
        page.click("#jb-add")
        page.click("#jb-save")
        page.locator("#jb-error").filter(has_text="steps[2].tag").wait_for()
        assert "bad" in (page.locator("#jb-steps li >> nth=2").get_attribute("class") or "")

        page.fill("#jb-steps li >> nth=2 >> input[name=tag]", "已提醒")
        page.click("#jb-save")
        page.locator("#jb-state").filter(has_text="已保存").wait_for()
        journey = Journey.objects.for_org(acme).get(name="<b>关注</b>后提醒")
        assert journey.trigger_event == "follow" and not journey.is_active
        assert journey.trigger_condition == {"field": "gender", "op": "eq", "value": "female"}
        assert journey.steps == [
            {"type": "wait", "seconds": 1800},
            {"type": "send", "template": "replay_link"},
            {"type": "tag", "tag": "已提醒"},
        ]
        # The list shows the name as text, never markup.
        page.locator("#journey-list li", has_text="<b>关注</b>后提醒").wait_for()
        assert page.locator("#journey-list b").count() == 0

        # Edit: move the tag first and wait 45 minutes → version 2; then activate.
        page.click("#jb-steps li >> nth=2 >> button[data-action=up]")
        page.click("#jb-steps li >> nth=1 >> button[data-action=up]")
        page.fill("#jb-steps li >> nth=1 >> input[name=minutes]", "45")
        # 智能节奏: the send goes out at each member's own best hour.
        page.check("#jb-steps li >> nth=2 >> input[name=best_hour]")
        page.click("#jb-save")
        page.locator("#jb-state").filter(has_text="版本 2").wait_for()
        page.click("#jb-toggle")
        page.locator("#jb-state").filter(has_text="运行中").wait_for()
        journey.refresh_from_db()
        assert journey.version == 2 and journey.is_active
        assert journey.steps == [
            {"type": "tag", "tag": "已提醒"},
            {"type": "wait", "seconds": 2700},
            {"type": "send", "template": "replay_link", "best_hour": True},
        ]
        # The sales user leaves a phone for hot-lead notices: shown masked afterwards.
        page.fill("#my-contact input[name=phone]", "12345")
        page.click("#my-contact button[type=submit]")
        page.locator("#mc-error").filter(has_text="phone").wait_for()
        page.fill("#my-contact input[name=phone]", "13900000009")
        page.click("#my-contact button[type=submit]")
        page.locator("#mc-state").filter(has_text="139****0009").wait_for()
        assert not errors, errors
        assert page.evaluate("document.documentElement.scrollWidth") <= 391
        browser.close()
