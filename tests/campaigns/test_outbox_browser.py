"""The outbox of a campaign in the workspace, read-only: each row's state, provider message id
and dedup key, on a phone (inside the card) and on a desktop."""

from __future__ import annotations

import pytest
from django.utils import timezone

from campaigns.models import Campaign, CampaignStatus, Delivery
from crm.models import Contact
from tests.campaigns.factories import TemplateFactory
from tests.support.browser import launch_chromium


def _campaign_with_outbox(acme):
    template = TemplateFactory(org=acme)
    campaign = Campaign.objects.for_org(acme).create(
        org=acme,
        name="年货节",
        channel="sms",
        message_class="marketing",
        status=CampaignStatus.DONE,
        finished_at=timezone.now(),
    )
    a = Contact.objects.for_org(acme).create(org=acme, nickname="甲")
    b = Contact.objects.for_org(acme).create(org=acme, nickname="乙")
    common = {
        "org": acme,
        "campaign": campaign,
        "channel": "sms",
        "message_class": "marketing",
        "template": template,
    }
    Delivery.objects.for_org(acme).create(
        **common,
        contact=a,
        status="delivered",
        provider_message_id="SMS-0001",
        sent_at=timezone.now(),
        arm="treatment",
    )
    Delivery.objects.for_org(acme).create(
        **common, contact=b, status="suppressed", reason="no_consent"
    )
    return campaign, a, b


def test_the_deliveries_api_gives_state_provider_id_and_dedup_key(acme, sales_bob):
    campaign, a, b = _campaign_with_outbox(acme)
    rows = sales_bob.client().get(f"/api/v1/campaigns/{campaign.pk}/deliveries").json()["results"]
    assert [(r["status"], r["provider_message_id"], r["dedup_key"]) for r in rows] == [
        ("delivered", "SMS-0001", f"campaign:{campaign.pk}/contact:{a.pk}/sms"),
        ("suppressed", "", f"campaign:{campaign.pk}/contact:{b.pk}/sms"),
    ]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_sales_read_a_campaigns_outbox_on_a_phone_and_a_desktop(live_server, acme, sales_bob):
    from playwright.sync_api import sync_playwright

    campaign, a, b = _campaign_with_outbox(acme)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        for viewport in ({"width": 1280, "height": 800}, {"width": 390, "height": 844}):
            page = browser.new_page(viewport=viewport, locale="zh-CN")
            errors: list[str] = []
            page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
            page.goto(f"{live_server.url}/workspace/campaigns/")
            page.fill("input[name=username]", "bob")
            page.fill("input[name=password]", "pw-123456")
            page.click("#login-form button")
            page.click(f"#campaign-list li[data-campaign='{campaign.pk}']")
            page.wait_for_selector("#outbox-rows tr >> nth=1")
            rows = [r.split("\t") for r in page.locator("#outbox-rows tr").all_inner_texts()]
            assert rows[0][:4] == [
                f"#{a.pk}",
                "已送达",
                "SMS-0001",
                f"campaign:{campaign.pk}/contact:{a.pk}/sms",
            ]
            assert rows[1][:4] == [
                f"#{b.pk}",
                "已拦截 · 未授权营销",
                "—",
                f"campaign:{campaign.pk}/contact:{b.pk}/sms",
            ]
            assert "共 2 条" in page.locator("#outbox-count").inner_text()
            assert page.locator("#outbox-more").is_hidden()
            # Read-only: nothing in the outbox to click that changes a row.
            assert page.locator("#outbox button, #outbox input").count() == 0
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"] + 1
            assert not errors, errors
            page.evaluate("sessionStorage.clear()")
            page.close()
        browser.close()


def test_a_leads_outbox_api_lists_its_rows_newest_first_within_the_org(
    acme, sales_bob, outsider_erin
):
    campaign, a, b = _campaign_with_outbox(acme)
    rows = sales_bob.client().get(f"/api/v1/leads/{a.pk}/deliveries").json()["results"]
    assert [(r["campaign_name"], r["status"], r["provider_message_id"]) for r in rows] == [
        ("年货节", "delivered", "SMS-0001")
    ]
    assert rows[0]["dedup_key"] == f"campaign:{campaign.pk}/contact:{a.pk}/sms"
    assert outsider_erin.client().get(f"/api/v1/leads/{a.pk}/deliveries").status_code == 404


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_sales_see_a_leads_outbox_in_its_detail_on_a_phone_and_a_desktop(
    live_server, acme, sales_bob
):
    from playwright.sync_api import sync_playwright

    campaign, a, b = _campaign_with_outbox(acme)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        for viewport in ({"width": 1280, "height": 800}, {"width": 390, "height": 844}):
            page = browser.new_page(viewport=viewport, locale="zh-CN")
            errors: list[str] = []
            page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
            page.goto(f"{live_server.url}/workspace/")
            page.fill("input[name=username]", "bob")
            page.fill("input[name=password]", "pw-123456")
            page.click("#login-form button")
            page.locator("#lead-rows tr", has_text="甲").click()
            item = page.locator("#lead-outbox li").first
            item.wait_for()
            text = item.inner_text()
            assert "年货节" in text and "已送达" in text and "SMS-0001" in text
            assert f"campaign:{campaign.pk}/contact:{a.pk}/sms" in text
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"] + 1
            assert not errors, errors
            page.evaluate("sessionStorage.clear()")
            page.close()
        browser.close()
