"""In Chromium, on a desktop and on a 390×844 phone: the builder creates a 自动优化 (bandit)
campaign on a goal, and once it is launched its report shows each copy's current share and
the allocation history (table and chart) — the holdout outside it."""

from __future__ import annotations

import pytest

from campaigns.demo import seed_org
from campaigns.models import Arm, BanditAllocation, Campaign, Delivery
from crm.services.consent import consent_grant
from tests.campaigns.factories import add_phone
from tests.factories import ContactFactory
from tests.support.browser import campaigns_page_signed_in, launch_chromium

VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("screen", list(VIEWPORTS))
def test_the_builder_creates_a_bandit_campaign_and_the_report_shows_its_allocation(
    live_server, acme, sales_bob, monkeypatch, screen
):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    seed_org(acme)
    for i in range(12):
        contact = ContactFactory(org=acme, nickname=f"观众{i}")
        add_phone(contact, f"1350000{i:04d}")
        consent_grant(contact=contact, purpose="sms_marketing", source="test")
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page, errors = campaigns_page_signed_in(browser, live_server, VIEWPORTS[screen])
        page.wait_for_selector("#builder [name=variant_b] option >> nth=2", state="attached")
        page.fill("#builder input[name=name]", "自动优化上新")
        page.select_option("#builder [name=variant_a]", label="价格敏感文案")
        page.select_option("#builder [name=variant_b]", label="功能卖点文案")
        assert page.locator("#bandit-goal-label").is_hidden()
        page.select_option("#variant-mode-select", label="自动优化")
        assert "对照组在规划时固定" in page.locator("#bandit-hint").inner_text()
        page.select_option("#bandit-goal-select", label="点击")
        page.fill("#builder input[name=holdout_pct]", "25")
        page.fill("#builder input[name=link_url]", f"{live_server.url}/live/1/")
        page.click("#builder button[type=submit]")
        page.locator("#bandit-goal").filter(has_text="优化目标：点击").wait_for()
        assert page.locator("#bandit-empty").is_visible()  # nothing allocated before launch
        page.click("#launch")
        # The report reloads after the launch: the first batch's allocation is on it.
        page.wait_for_selector("#bandit-history-rows tr", timeout=20000)
        history = page.locator("#bandit-history-rows tr").all_inner_texts()
        assert len(history) == 1 and "A 0/0" in history[0] and "B 0/0" in history[0]
        arms = [r.split("\t") for r in page.locator("#bandit-arm-rows tr").all_inner_texts()]
        assert [a[0] for a in arms] == ["A · 价格敏感文案", "B · 功能卖点文案"]
        assert all(a[3].endswith("%") for a in arms)
        # The chart is drawn (ECharts' canvas) with one point per allocation.
        page.wait_for_selector("#bandit-chart canvas")
        assert page.locator("#bandit-chart").get_attribute("data-points") == "1"
        assert page.locator("#bandit-chart").bounding_box()["height"] > 100
        assert (
            page.evaluate("document.documentElement.scrollWidth") <= VIEWPORTS[screen]["width"] + 1
        )
        assert errors == []
        browser.close()
    campaign = Campaign.objects.for_org(acme).get(name="自动优化上新")
    assert (campaign.variant_mode, campaign.bandit_goal) == ("bandit", "click")
    allocation = BanditAllocation.objects.for_org(acme).get(campaign=campaign)
    rows = Delivery.objects.for_org(acme).filter(campaign=campaign)
    # The first batch was every treated person; the holdout got no copy and no allocation.
    assert allocation.batch_size == rows.filter(arm=Arm.TREATMENT).count()
    assert not rows.filter(arm=Arm.HOLDOUT).exclude(variant=None).exists()
    assert not rows.filter(arm=Arm.HOLDOUT, sent_at__isnull=False).exists()
