"""In Chromium, the issue-15 probe through the workspace builder: 文案 A no longer defaults to
the staff hot-lead notice (only marketing templates for customers are offered, template
messages are not a campaign channel), and a small campaign's report shows the sample-size
warning instead of 「提升 0.0（95% 区间 0.0~0.0）」."""

from __future__ import annotations

import pytest

from campaigns.demo import seed_org
from campaigns.models import Campaign, ConsoleSms, MessageTemplate
from crm.services.consent import consent_grant
from tests.campaigns.factories import add_phone
from tests.factories import ContactFactory
from tests.support.browser import campaigns_page_signed_in, launch_chromium


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_builder_offers_no_staff_or_service_template_and_warns_on_small_arms(
    live_server, acme, sales_bob, monkeypatch
):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    seed_org(acme)
    for i in range(3):
        contact = ContactFactory(org=acme, nickname=["小红", "", "阿明"][i])
        add_phone(contact, f"1350000000{i}")
        consent_grant(contact=contact, purpose="sms_marketing", source="test")
    marketing = set(
        MessageTemplate.objects.for_org(acme)
        .filter(channel="sms", message_class="marketing", audience="customer")
        .values_list("name", flat=True)
    )
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page, errors = campaigns_page_signed_in(browser, live_server)
        channels = page.locator("#builder [name=channel] option").all_inner_texts()
        assert not [c for c in channels if "模板消息" in c]
        page.wait_for_selector("#builder [name=variant_a] option >> nth=1", state="attached")
        offered = {
            text
            for text in page.locator("#builder [name=variant_a] option").all_inner_texts()
            if text
        }
        assert offered <= marketing and offered
        assert not [t for t in offered if "热线索" in t or "开播提醒" in t]
        assert "回放提醒" not in offered  # needs {room}: a campaign built here cannot fill it
        page.fill("#builder input[name=name]", "探针")
        # The shipped copies end with {link}: without a tracked link the API refuses, naming it.
        page.select_option("#builder [name=variant_a]", label="价格敏感文案")
        page.click("#builder button[type=submit]")
        page.locator("#builder-error").filter(has_text="link_url").wait_for()
        page.fill("#builder input[name=link_url]", f"{live_server.url}/live/1/")
        page.click("#builder button[type=submit]")
        page.wait_for_selector("#launch")
        page.click("#launch")
        page.locator("#uplift").filter(has_text="样本不足").wait_for(timeout=15000)
        assert "0.0" not in page.locator("#uplift").inner_text()
        assert errors == []
        browser.close()
    campaign = Campaign.objects.for_org(acme).get(name="探针")
    assert campaign.message_class == "marketing"
    texts = list(ConsoleSms.objects.for_org(acme).values_list("text", flat=True))
    assert not [t for t in texts if "{" in t or "线索" in t]
