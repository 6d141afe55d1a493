"""In Chromium, a personal recall built in the campaign builder without the API: choosing a
来源直播间 offers the copies with {product}/{clip_url} and a fallback copy; the campaign sends
each viewer their own product and the fallback to someone who did nothing in the room, and
the report's outbox shows the text each one read."""

from __future__ import annotations

import pytest
import time_machine

from campaigns.models import Campaign, Delivery
from campaigns.services.campaigns import campaign_launch
from campaigns.services.sending import deliveries_send_due
from tests.campaigns.factories import ProviderAccountFactory, TemplateFactory, beijing
from tests.campaigns.test_recall import FALLBACK_BODY, RECALL_BODY, Broadcast
from tests.support.browser import campaigns_page_signed_in, launch_chromium


@pytest.mark.integration
@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_recall_campaign_is_built_from_a_room_in_the_builder(
    live_server, acme, host_alice, sales_bob, monkeypatch
):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ProviderAccountFactory(org=acme)
    show = Broadcast(acme, host_alice.profile)
    ann = show.viewer("Ann", "13700000001")
    dan = show.viewer("Dan", "13700000004")
    show.claim(ann, show.rose_clip)
    TemplateFactory(org=acme, name="召回文案", body=RECALL_BODY)
    TemplateFactory(org=acme, name="回放兜底", body=FALLBACK_BODY)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page, errors = campaigns_page_signed_in(browser, live_server)
        page.wait_for_selector("#builder [name=variant_a] option >> nth=0", state="attached")
        # Without a room the recall copy cannot be filled: not offered.
        assert "召回文案" not in page.locator("#builder [name=variant_a] option").all_inner_texts()
        assert page.locator("#fallback-label").is_hidden()
        page.select_option("#source-room-select", label=show.room.title)
        page.wait_for_selector(
            "#builder [name=variant_a] option:text('召回文案')", state="attached"
        )
        assert page.locator("#fallback-label").is_visible()
        page.fill("#builder input[name=name]", "直播召回")
        page.select_option("#builder [name=variant_a]", label="召回文案")
        page.select_option("#builder [name=variant_fallback]", label="回放兜底")
        page.fill("#builder input[name=holdout_pct]", "0")
        page.click("#builder button[type=submit]")
        page.wait_for_selector("#launch")
        assert page.locator("#builder-error").inner_text() == ""
        assert errors == []
        browser.close()
    campaign = Campaign.objects.for_org(acme).get(name="直播召回")
    assert campaign.source_room_id == show.room.pk
    assert campaign.variants.get().fallback_template.name == "回放兜底"
    with time_machine.travel(beijing(10), tick=True):
        campaign_launch(campaign=campaign)
        deliveries_send_due(campaign_id=campaign.pk)
    rows = {r.contact_id: r for r in Delivery.objects.for_org(acme).filter(campaign=campaign)}
    assert rows[ann.pk].rendered.startswith("Ann，你看中的玫瑰精华讲解回放：http")
    assert f"/live/{show.room.pk}/clips/{show.rose_clip.pk}/" in rows[ann.pk].rendered
    assert rows[dan.pk].rendered.startswith("Dan，昨晚的直播回放已上线")
    # The report's outbox shows what each person read.
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page, errors = campaigns_page_signed_in(browser, live_server)
        page.click(f"#campaign-list li[data-campaign='{campaign.pk}']")
        page.wait_for_selector("#outbox-rows tr >> nth=1")
        shown = {
            cells[0]: cells[-1]
            for cells in (r.split("\t") for r in page.locator("#outbox-rows tr").all_inner_texts())
        }
        assert shown[f"#{ann.pk}"] == rows[ann.pk].rendered
        assert shown[f"#{dan.pk}"] == rows[dan.pk].rendered
        assert errors == []
        browser.close()
