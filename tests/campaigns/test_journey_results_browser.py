"""旅程实验结果 in Chromium at 1280×800 and 390×844 (issue 22): a journey's bandit send step
has run for a hundred followers; sales open the journey and read, per allocation, each copy's
share and the messages actually sent under it — in the table and in an ECharts chart whose
series hold exactly the counts of the raw outbox rows — and each copy's conversion beside the
holdout's, which is shown apart and never allocated. No page errors, no sideways scrolling.
Screenshots: docs/screenshots/workspace-journey-results-desktop.png, -phone.png (rewritten
with UPDATE_SCREENSHOTS=1, else written to test-artifacts/).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from campaigns.models import Arm, BanditAllocation, Delivery, DeliveryStatus, Journey
from crm.services.consent import consent_grant
from crm.services.events import event_record
from tests.campaigns.factories import ProviderAccountFactory, TemplateFactory, add_phone
from tests.factories import ContactFactory
from tests.support.browser import campaigns_page_signed_in, launch_chromium

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
SCREENSHOTS = Path(settings.BASE_DIR) / (
    "docs/screenshots" if os.environ.get("UPDATE_SCREENSHOTS") == "1" else "test-artifacts"
)
REACHED = (DeliveryStatus.SENT, DeliveryStatus.DELIVERED)

CHART_SERIES = """(selector) => {
  const box = document.querySelector(selector);
  const chart = box && echarts.getInstanceByDom(box);
  if (!chart) return null;
  return chart.getOption().series.map((s) => ({
    id: s.id, type: s.type,
    data: s.data.map((d) => (d !== null && typeof d === "object" && !Array.isArray(d) ? d.value : d)),
  }));
}"""


def _js_percent(share: float) -> float:
    """The page's ``Math.round(share * 1000) / 10`` (half up, unlike Python's ``round``)."""
    return math.floor(share * 1000 + 0.5) / 10


def _walk_the_step(acme, journey: Journey) -> None:
    """Four rounds of 25 followers walk the step (the real trigger, the real sender on the
    SMS stub); between rounds the readers answer — copy B's click one in two, A's one in ten
    — and one in four of B's readers, one in eight of everyone else, order."""
    rows = Delivery.objects.for_org(acme).filter(journey=journey, journey_step=0)
    for round_ in range(4):
        people = []
        for i in range(round_ * 25, round_ * 25 + 25):
            contact = ContactFactory(org=acme, nickname=f"粉丝{i}")
            add_phone(contact, f"1362{i:07d}")
            consent_grant(contact=contact, purpose="sms_marketing", source="test")
            people.append(contact)
        for contact in people:
            event_record(contact=contact, type="follow")
        for row in rows.filter(contact__in=people).select_related("template", "contact"):
            is_b = row.template.key == "copy_b" and row.arm != Arm.HOLDOUT
            if row.status in REACHED and row.contact_id % (2 if is_b else 10) == 0:
                Delivery.objects.for_org(acme).filter(pk=row.pk).update(clicked_at=timezone.now())
            if row.contact_id % (4 if is_b else 8) == 0:
                event_record(contact=row.contact, type="order")


@pytest.mark.parametrize("screen", list(VIEWPORTS))
def test_the_journey_results_chart_shows_what_was_sent_under_each_allocation(
    live_server, acme, sales_bob, monkeypatch, screen
):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls below are plain
    # test steps between browser steps, not async code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ProviderAccountFactory(org=acme, sign_name="千面")
    TemplateFactory(org=acme, key="copy_a", name="价格文案", body="今晚直降", param_names=[])
    TemplateFactory(org=acme, key="copy_b", name="卖点文案", body="新品首发", param_names=[])
    client = sales_bob.client()
    response = client.post(
        "/api/v1/journeys",
        {
            "name": "关注后推荐",
            "trigger_event": "follow",
            "steps": [
                {
                    "type": "send",
                    "template": "copy_a",
                    "variants": ["copy_b"],
                    "variant_mode": "bandit",
                    "bandit_goal": "click",
                    "holdout_pct": 20,
                }
            ],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    journey = Journey.objects.for_org(acme).get(pk=response.json()["id"])
    assert client.post(f"/api/v1/journeys/{journey.pk}/activate").status_code == 200
    _walk_the_step(acme, journey)

    # What the chart must hold, counted from the raw rows: per allocation (oldest first), the
    # messages that reached people under it, per copy; the holdout under none.
    rows = Delivery.objects.for_org(acme).filter(journey=journey, journey_step=0)
    allocations = list(BanditAllocation.objects.for_org(acme).filter(journey=journey))
    assert len(allocations) >= 3
    expected_sent = {
        key: [
            rows.filter(allocation=a, template__key=key, status__in=REACHED).count()
            for a in allocations
        ]
        for key in ("copy_a", "copy_b")
    }
    assert sum(map(sum, expected_sent.values())) == rows.filter(status__in=REACHED).count() > 0
    holdout = rows.filter(arm=Arm.HOLDOUT)
    assert holdout.exists() and not holdout.filter(allocation__isnull=False).exists()

    with sync_playwright() as p:
        browser = launch_chromium(p)
        page, errors = campaigns_page_signed_in(browser, live_server, VIEWPORTS[screen])
        page.click("button[data-tab=journeys]")
        page.wait_for_selector(f"#jb-pick option[value='{journey.pk}']", state="attached")
        page.select_option("#jb-pick", str(journey.pk))
        page.locator("#jb-results .jb-allocation-chart canvas").wait_for()
        page.locator("#jb-results .jb-conversion-chart canvas").wait_for()

        series = {
            s["id"]: s for s in page.evaluate(CHART_SERIES, "#jb-results .jb-allocation-chart")
        }
        for key, counts in expected_sent.items():
            assert series[f"sent:{key}"]["data"] == counts
            assert series[f"share:{key}"]["data"] == [
                _js_percent(next(a["share"] for a in x.arms if a["variant"] == key))
                for x in allocations
            ]
        # The table: one row per allocation, newest first, with its total sent.
        table = page.locator("#jb-results .jb-allocations tbody tr").all_inner_texts()
        assert len(table) == len(allocations)
        newest = rows.filter(allocation=allocations[-1], status__in=REACHED).count()
        assert f"共 {newest} 条" in table[0]

        # Each copy's conversion and the holdout's, apart: three bars with their intervals.
        bars = {s["id"]: s for s in page.evaluate(CHART_SERIES, "#jb-results .jb-conversion-chart")}
        assert len(bars["conversion"]["data"]) == 3
        assert len(bars["ci95"]["data"]) == 3
        held = page.locator("#jb-results .jb-holdout-members").inner_text()
        assert f"对照组 {holdout.count()} 人" in held and "不参与分配" in held

        width = VIEWPORTS[screen]["width"]
        assert page.evaluate("document.documentElement.scrollWidth") <= width + 1
        assert page.evaluate(
            "() => [...document.querySelectorAll('#jb-results canvas')]"
            ".every((c) => c.getBoundingClientRect().width > 100)"
        )
        assert errors == []
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.locator("#jb-results").screenshot(
            path=str(SCREENSHOTS / f"workspace-journey-results-{screen}.png")
        )
        browser.close()
