"""Per-variant results of a campaign (issue 17: "variants have no per-variant results"):
counts per copy, and rates only once a copy reached enough people, else a sample-size
warning — through the stats API and in the report on a phone and a desktop."""

from __future__ import annotations

import pytest
from django.utils import timezone

from campaigns.models import Campaign, CampaignStatus, Delivery, Variant
from crm.models import Contact
from tests.campaigns.factories import TemplateFactory
from tests.support.browser import campaigns_page_signed_in, launch_chromium


def _two_copies(acme):
    now = timezone.now()
    campaign = Campaign.objects.for_org(acme).create(
        org=acme,
        name="双文案",
        channel="sms",
        message_class="marketing",
        status=CampaignStatus.DONE,
        launched_at=now,
        finished_at=now,
    )
    a = Variant.objects.create(
        campaign=campaign, name="A", template=TemplateFactory(org=acme, name="价格文案")
    )
    b = Variant.objects.create(
        campaign=campaign, name="B", template=TemplateFactory(org=acme, name="情感文案")
    )
    people = Contact.objects.for_org(acme).bulk_create(
        [Contact(org=acme, nickname=f"p{i}") for i in range(102)]
    )
    rows = []
    for i, person in enumerate(people):
        variant = a if i < 100 else b
        rows.append(
            Delivery(
                org=acme,
                campaign=campaign,
                contact=person,
                channel="sms",
                message_class="marketing",
                template=variant.template,
                variant=variant,
                status="delivered",
                sent_at=now,
                clicked_at=now if i % 10 == 0 else None,
            )
        )
    Delivery.objects.for_org(acme).bulk_create(rows)
    return campaign


def test_the_stats_give_each_copy_its_counts_and_rates_only_above_the_minimum(acme, sales_bob):
    campaign = _two_copies(acme)
    stats = sales_bob.client().get(f"/api/v1/campaigns/{campaign.pk}/stats").json()
    a, b = stats["variants"]
    assert (a["name"], a["template"], a["sent"], a["delivered"], a["clicked"]) == (
        "A",
        "价格文案",
        100,
        100,
        10,
    )
    assert a["enough"] and a["click_rate"] == pytest.approx(0.1)
    assert (b["name"], b["sent"], b["clicked"], b["enough"]) == ("B", 2, 1, False)
    assert b["click_rate"] is None and b["conversion_rate"] is None


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_report_shows_each_copy_with_a_sample_size_warning(live_server, acme, sales_bob):
    from playwright.sync_api import sync_playwright

    campaign = _two_copies(acme)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page, errors = campaigns_page_signed_in(browser, live_server)  # 390×844
        page.click(f"#campaign-list li[data-campaign='{campaign.pk}']")
        page.wait_for_selector("#variant-rows tr >> nth=1")
        a, b = [r.split("\t") for r in page.locator("#variant-rows tr").all_inner_texts()]
        assert a[0] == "A · 价格文案" and a[1:4] == ["100", "100", "10"]
        assert "10.0%" in a[5]
        assert b[0] == "B · 情感文案" and "样本不足" in b[5] and "0.0" not in b[5]
        assert page.evaluate("document.documentElement.scrollWidth") <= 391
        assert errors == []
        browser.close()
