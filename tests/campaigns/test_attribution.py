"""Conversions are credited per click: to the delivery the person clicked last within the
attribution window, else to the one sent to them last within it."""

from datetime import timedelta

import pytest
import time_machine

from campaigns.models import Delivery, MessagingPolicy, ShortLink
from campaigns.services.campaigns import campaign_create, campaign_launch
from crm.services.consent import consent_grant
from crm.services.events import event_record
from tests.campaigns.factories import ProviderAccountFactory, TemplateFactory, add_phone, beijing
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def test_conversions_are_credited_to_the_last_click_else_the_last_send(
    acme, sales_bob, anon, settings, django_capture_on_commit_callbacks
):
    settings.CAMPAIGNS_CONVERSION_DAYS = 3
    account = ProviderAccountFactory(org=acme)
    MessagingPolicy.objects.for_org(acme).create(org=acme, cap_per_day=5, cap_per_week=10)
    template = TemplateFactory(org=acme, provider_account=account, body="上新", param_names=[])
    people = []
    for i in range(3):
        contact = ContactFactory(org=acme, nickname=f"p{i}")
        add_phone(contact, f"1330000{i:04d}")
        consent_grant(contact=contact, purpose="sms_marketing", source="test")
        people.append(contact)
    clicker, quiet, late = people
    day0 = beijing(10)

    def launch(name, at):
        with time_machine.travel(at, tick=False):
            campaign = campaign_create(
                org=acme,
                name=name,
                channel="sms",
                variants=[{"template": template}],
                link_url="https://shop.example.com/new",
            )
            with django_capture_on_commit_callbacks(execute=True):
                campaign_launch(campaign=campaign)
        return campaign

    first = launch("首发", day0)
    with time_machine.travel(day0 + timedelta(hours=1), tick=False):
        link = ShortLink.objects.for_org(acme).get(
            delivery__campaign=first, delivery__contact=clicker
        )
        assert anon.get(f"/t/{link.code}").status_code == 302
    second = launch("返场", day0 + timedelta(days=1))
    with time_machine.travel(day0 + timedelta(days=1, hours=2), tick=False):
        event_record(contact=clicker, type="order", props={"amount": 99})
        event_record(contact=quiet, type="coupon.claim", props={})
    # Outside the 3-day window of every delivery it could be credited to.
    with time_machine.travel(day0 + timedelta(days=5), tick=False):
        event_record(contact=late, type="order", props={"amount": 10})

    client = sales_bob.client()
    first_stats = client.get(f"/api/v1/campaigns/{first.pk}/stats").json()
    second_stats = client.get(f"/api/v1/campaigns/{second.pk}/stats").json()
    # The clicker was also sent the second campaign later; the click wins.
    assert (first_stats["clicked"], first_stats["converted"]) == (1, 1)
    # The quiet one clicked nothing: credit goes to their most recent send.
    assert (second_stats["clicked"], second_stats["converted"]) == (0, 1)
    assert Delivery.objects.for_org(acme).filter(status="sent").count() == 6
    # Uplift stays a like-for-like comparison (no holdout here, so none).
    assert first_stats["uplift"]["uplift"] is None
