"""In Chromium, on a phone and a desktop: the builder's 智能节奏 control previews how many of
the audience fall in each allowed hour and what share has enough history; the campaign made
with it is timed, and its report says how the timed share compares with the untimed one."""

from __future__ import annotations

import pytest

from campaigns.models import Campaign, Delivery
from crm.services.consent import consent_grant
from tests.campaigns.factories import (
    ProviderAccountFactory,
    TemplateFactory,
    active_at,
    add_phone,
)
from tests.factories import ContactFactory
from tests.support.browser import campaigns_page_signed_in, launch_chromium

VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_builder_previews_each_hour_and_the_report_compares_timed_with_untimed(
    live_server, acme, sales_bob, monkeypatch
):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ProviderAccountFactory(org=acme, sign_name="千面")
    TemplateFactory(org=acme, name="上新通知", body="今晚8点上新")
    for i, hour in enumerate((9, 9, 9, 14, 14)):
        contact = ContactFactory(org=acme)
        add_phone(contact, f"1350000000{i}")
        consent_grant(contact=contact, purpose="sms_marketing", source="test")
        active_at(contact, hour)
    ContactFactory(org=acme)  # no history: the fallback hour
    with sync_playwright() as p:
        browser = launch_chromium(p)
        for name, viewport in VIEWPORTS.items():
            page, errors = campaigns_page_signed_in(browser, live_server, viewport)
            page.wait_for_selector("#builder [name=variant_a] option >> nth=0", state="attached")
            assert page.locator("#best-hour-panel").is_hidden()
            page.check("#best-hour")
            page.locator("#best-hour-chart .row").first.wait_for()
            # One bar per hour SMS marketing may go out in (08–21), with its count.
            hours = page.locator("#best-hour-chart .label").all_inner_texts()
            assert hours[0] == "08:00" and hours[-1] == "20:00" and len(hours) == 13
            assert page.locator('#best-hour-chart [data-hour="9"] .n').inner_text() == "3"
            assert page.locator('#best-hour-chart [data-hour="14"] .n').inner_text() == "2"
            assert page.locator('#best-hour-chart [data-hour="10"] .n').inner_text() == "1"
            summary = page.locator("#best-hour-summary").inner_text()
            assert "6 人中 5 人有活跃记录" in summary and "83.3%" in summary
            # Moving the fallback hour moves the person without history.
            page.fill("#builder [name=fallback_hour]", "22")
            page.locator("#builder [name=fallback_hour]").dispatch_event("change")
            page.locator('#best-hour-chart [data-hour="20"] .n').filter(has_text="1").wait_for()
            box = page.locator("#best-hour-chart").bounding_box()
            assert box and box["width"] <= viewport["width"]
            page.fill("#builder input[name=name]", f"智能节奏·{name}")
            page.select_option("#builder [name=variant_a]", label="上新通知")
            page.click("#builder button[type=submit]")
            page.wait_for_selector("#launch")
            page.click("#launch")
            page.locator("#timing-uplift").filter(has_text="样本不足").wait_for(timeout=15000)
            assert "智能时刻" in page.locator("#timing-uplift").inner_text()
            assert errors == []
            page.close()
        browser.close()
    campaign = Campaign.objects.for_org(acme).get(name="智能节奏·phone")
    assert (campaign.send_timing, campaign.fallback_hour) == ("best_hour", 22)
    timings = set(
        Delivery.objects.for_org(acme)
        .filter(campaign=campaign, arm="treatment")
        .values_list("timing", flat=True)
    )
    assert timings <= {"timed", "untimed"} and timings
