"""In Chromium, the campaign builder's official-account channels: the demo's copies fill the
mass-send (群发) and customer-service (客服消息) copy lists, a channel without copy says so and
leads to the templates tab, and a customer-service campaign built on the page reaches only
the follower inside WeChat's 48-hour window (the other shows as outside it in the report).
At 1280×800 and 390×844."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.demo import seed_org
from campaigns.models import Campaign, Delivery, MessagingPolicy
from crm.services.consent import consent_grant
from tests.support.browser import launch_chromium
from tests.wechat.callbacks import push, text_xml
from tests.wechat.factories import official_account, wechat_follower
from wechat.models import WeChatServiceWindow
from wechat.windows import openid_hash

pytestmark = [pytest.mark.integration, pytest.mark.browser]

RECENT, STALE = "o-recent-000000000000000001", "o-stale-0000000000000000001"


def _copies(page, expected):
    """Wait until copy A's picker offers exactly ``expected`` (the list reloads per channel)."""
    page.wait_for_function(
        """(want) => JSON.stringify([...document.querySelectorAll(
             '#builder [name=variant_a] option')].map((o) => o.textContent).filter(Boolean))
           === JSON.stringify(want)""",
        arg=expected,
    )


@pytest.mark.django_db(transaction=True)
def test_sales_send_a_customer_service_campaign_from_the_builder(
    live_server, acme, sales_bob, wechat_stub, monkeypatch
):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # the ORM between page steps
    seed_org(acme)
    # Two campaigns (one per viewport) reach the same follower: inside the allowed hours the
    # first is sent at once, and the default cap of one marketing message a day would
    # suppress the second (campaigns/services/policy.py, cap_slots_claim).
    MessagingPolicy.objects.for_org(acme).update_or_create(
        org=acme, defaults={"cap_per_day": 5, "cap_per_week": 10}
    )
    oa = official_account(acme)
    recent = wechat_follower(acme, oa, RECENT)
    stale = wechat_follower(acme, oa, STALE)
    for contact in (recent, stale):
        consent_grant(contact=contact, purpose="wechat_marketing", source="test")
    push(oa, text_xml(RECENT, "在吗", msg_id=1))
    push(oa, text_xml(STALE, "你好", msg_id=2))
    WeChatServiceWindow.objects.for_org(acme).filter(openid_hash=openid_hash(STALE)).update(
        last_inbound_at=timezone.now() - timedelta(hours=49)
    )
    with sync_playwright() as p:
        browser = launch_chromium(p)
        for i, viewport in enumerate(
            ({"width": 1280, "height": 800}, {"width": 390, "height": 844})
        ):
            page = browser.new_page(viewport=viewport, locale="zh-CN")
            errors: list[str] = []
            page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
            page.goto(f"{live_server.url}/workspace/campaigns/")
            page.fill("input[name=username]", "bob")
            page.fill("input[name=password]", "pw-123456")
            page.click("#login-form button")
            page.wait_for_selector("#app:not([hidden])")
            channels = page.locator("#builder [name=channel] option").all_inner_texts()
            assert "公众号客服消息" in channels and "公众号群发" in channels

            page.select_option("#builder [name=channel]", "wechat_mass")
            _copies(page, ["上新群发"])
            assert page.locator("#copy-empty").is_hidden()

            # No mini-program copy exists: the builder says so and leads to the templates tab.
            page.select_option("#builder [name=channel]", "mp_subscribe")
            page.locator("#copy-empty").wait_for()
            _copies(page, [])

            page.select_option("#builder [name=channel]", "wechat_customer")
            page.locator("#builder-channel-rule").filter(has_text="48小时").wait_for()
            _copies(page, ["上新客服消息"])
            assert page.locator("#copy-empty").is_hidden()
            page.fill("#builder input[name=name]", f"客服触达{i}")
            page.fill("#builder input[name=link_url]", f"{live_server.url}/live/1/")
            page.fill("#builder input[name=holdout_pct]", "0")
            page.click("#builder button[type=submit]")
            page.wait_for_selector("#launch")
            page.click("#launch")
            page.locator("#reasons li", has_text="超出48小时窗口：1").wait_for(timeout=15000)
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"] + 1
            assert not errors, errors

            campaign = Campaign.objects.for_org(acme).get(name=f"客服触达{i}")
            assert (campaign.channel, campaign.wechat_account_id) == ("wechat_customer", oa.pk)
            rows = {
                d.contact_id: d for d in Delivery.objects.for_org(acme).filter(campaign=campaign)
            }
            assert rows[stale.pk].reason == "outside_window"
            # Planned to go (sent by the worker, or deferred to the quiet-hours window's end);
            # the actual send is tests/campaigns/test_customer_service_campaign.py's.
            assert rows[recent.pk].status != "suppressed" and not rows[recent.pk].reason

            if i == 0:
                # The empty-list link opens the templates tab on that channel.
                page.select_option("#builder [name=channel]", "mp_subscribe")
                page.click("#copy-create")
                page.wait_for_selector("#tab-templates:not([hidden])")
                assert page.locator("#template-form [name=channel]").input_value() == (
                    "mp_subscribe"
                )
            page.evaluate("sessionStorage.clear()")
            page.close()
        browser.close()
