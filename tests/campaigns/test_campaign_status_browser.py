"""In Chromium: the campaign list and the campaign's report never disagree on its status (the
list said 发送中 while the report said 已完成 once the campaign had finished after the list
was loaded)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from campaigns.models import Campaign, CampaignStatus
from tests.support.browser import campaigns_page_signed_in, launch_chromium


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_list_shows_the_status_the_report_shows(live_server, acme, sales_bob, monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # the ORM between page steps

    campaign = Campaign.objects.for_org(acme).create(
        org=acme,
        name="双十二预热",
        channel="sms",
        message_class="marketing",
        status=CampaignStatus.SENDING,
        launched_at=timezone.now(),
    )
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page, errors = campaigns_page_signed_in(browser, live_server)
        row = page.locator(f"#campaign-list li[data-campaign='{campaign.pk}']")
        row.filter(has_text="发送中").wait_for()
        # The sender settles the last row and finishes the campaign while the page is open.
        Campaign.objects.for_org(acme).filter(pk=campaign.pk).update(
            status=CampaignStatus.DONE, finished_at=timezone.now()
        )
        row.click()
        page.locator("#report-title").filter(has_text="已完成").wait_for()
        assert "已完成" in row.inner_text() and "发送中" not in row.inner_text()
        assert errors == []
        browser.close()
