"""In Chromium, on a desktop and on a 390×844 phone: a sales user switches a journey's send
step to 自动优化 with a second copy and a goal, holds out a share of the step and sets the
智能节奏 untimed share; a bad share is pointed out by the API's field message; once members
have walked the step, the journey page shows each copy's results and share, the allocation
history and both uplifts (against the holdout, timed against untimed)."""

from __future__ import annotations

import pytest

from campaigns.models import Arm, BanditAllocation, Delivery, Journey
from crm.services.consent import consent_grant
from crm.services.events import event_record
from tests.campaigns.factories import ProviderAccountFactory, TemplateFactory, add_phone
from tests.factories import ContactFactory
from tests.support.browser import campaigns_page_signed_in, launch_chromium


def _wait_for_text(page, selector: str, text: str) -> None:
    # Polled from here: the page's CSP forbids wait_for_function's string evaluation.
    for _ in range(80):
        if text in page.locator(selector).inner_text():
            return
        page.wait_for_timeout(250)
    raise AssertionError(
        f"{selector} never showed {text!r}: {page.locator(selector).inner_text()!r}"
    )


VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("screen", list(VIEWPORTS))
def test_a_journey_step_runs_as_a_bandit_and_the_page_shows_its_results(
    live_server, acme, sales_bob, monkeypatch, screen
):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls below are plain
    # test steps between browser steps, not async code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ProviderAccountFactory(org=acme, sign_name="千面")
    TemplateFactory(org=acme, key="copy_a", name="价格文案", body="今晚直降", param_names=[])
    TemplateFactory(org=acme, key="copy_b", name="卖点文案", body="新品首发", param_names=[])
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page, errors = campaigns_page_signed_in(browser, live_server, VIEWPORTS[screen])
        page.click("button[data-tab=journeys]")
        # The builder has loaded (journeys and templates) once it states the new journey's
        # default: filling it earlier would be wiped by that load.
        _wait_for_text(page, "#jb-state", "新旅程保存后处于暂停状态")
        page.fill("#journey-builder input[name=name]", "关注后推荐")
        page.select_option("#jb-trigger", "follow")
        page.select_option("#jb-add-type", "send")
        page.click("#jb-add")
        step = page.locator("#jb-steps li >> nth=0")
        step.locator("select[name=template]").select_option("copy_a")
        step.locator("select[name=variant_0]").select_option("copy_b")
        assert step.locator(".jb-goal").is_hidden()
        assert step.locator(".jb-untimed").is_hidden()
        step.locator("select[name=variant_mode]").select_option(label="自动优化")
        step.locator("select[name=bandit_goal]").select_option(label="领券")
        step.locator("input[name=best_hour]").check()
        step.locator("input[name=untimed_pct]").fill("30")
        # Too large a holdout: the API names the step's field.
        step.locator("input[name=step_holdout_pct]").fill("80")
        page.click("#jb-save")
        _wait_for_text(page, "#jb-error", "steps[0].holdout_pct")
        step.locator("input[name=step_holdout_pct]").fill("20")
        page.click("#jb-save")
        page.locator("#jb-state").filter(has_text="已保存").wait_for()
        journey = Journey.objects.for_org(acme).get(name="关注后推荐")
        assert journey.steps == [
            {
                "type": "send",
                "template": "copy_a",
                "variants": ["copy_b"],
                "variant_mode": "bandit",
                "bandit_goal": "claim",
                "holdout_pct": 20,
                "best_hour": True,
                "untimed_pct": 30,
            }
        ]
        # Before anyone walked the step: its panel shows the copies, nothing allocated yet.
        page.locator("#jb-results .jb-result").wait_for()
        assert page.locator("#jb-results .jb-copies tbody tr").count() == 2
        page.click("#jb-toggle")
        page.locator("#jb-state").filter(has_text="运行中").wait_for()

        # Thirty people follow: each walks the step.
        for i in range(30):
            contact = ContactFactory(org=acme, nickname=f"粉丝{i}")
            add_phone(contact, f"1361{i:07d}")
            consent_grant(contact=contact, purpose="sms_marketing", source="test")
            event_record(contact=contact, type="follow")
        rows = Delivery.objects.for_org(acme).filter(journey=journey)
        assert rows.count() == 30

        page.reload()
        page.wait_for_selector("#app:not([hidden])")
        page.click("button[data-tab=journeys]")
        page.wait_for_selector(f"#jb-pick option[value='{journey.pk}']", state="attached")
        page.select_option("#jb-pick", str(journey.pk))
        page.locator("#jb-results .jb-allocations tbody tr").first.wait_for()
        copies = [
            r.split("\t") for r in page.locator("#jb-results .jb-copies tbody tr").all_inner_texts()
        ]
        assert [c[0] for c in copies] == ["价格文案（copy_a）", "卖点文案（copy_b）"]
        assert all(c[3].endswith("%") for c in copies)
        allocations = BanditAllocation.objects.for_org(acme).filter(journey=journey)
        assert page.locator("#jb-results .jb-allocations tbody tr").count() == allocations.count()
        holdout_n = rows.filter(arm=Arm.HOLDOUT).count()
        assert f"对照组 {holdout_n} 人" in page.locator(".jb-holdout-uplift").inner_text()
        assert "智能时刻" in page.locator(".jb-timing-uplift").inner_text()
        assert page.locator("#journey-list").is_visible()
        width = VIEWPORTS[screen]["width"]
        assert page.evaluate("document.documentElement.scrollWidth") <= width + 1
        assert errors == []
        browser.close()
