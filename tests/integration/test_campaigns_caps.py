"""The frequency cap holds across concurrent campaigns on PostgreSQL: two sender threads
claiming two campaigns' rows for the same people at the same instant."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
import time_machine
from django.db import connection, connections

from campaigns.models import ConsoleSms, Delivery, MarketingSendCount, MessagingPolicy
from campaigns.services.campaigns import campaign_create
from campaigns.services.planning import campaign_plan
from campaigns.services.sending import deliveries_send_due
from tests.campaigns.factories import (
    ProviderAccountFactory,
    TemplateFactory,
    beijing,
    sms_audience,
)

pytestmark = pytest.mark.integration

N = 300


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_campaigns_never_exceed_a_cap_of_one_a_day(acme):
    assert connection.vendor == "postgresql"
    MessagingPolicy.objects.for_org(acme).create(org=acme, cap_per_day=1, cap_per_week=5)
    account = ProviderAccountFactory(org=acme)
    template = TemplateFactory(org=acme, provider_account=account)
    sms_audience(acme, N, prefix="135")
    with time_machine.travel(beijing(10), tick=True):
        campaigns = []
        for name in ("周末秒杀", "新品首发"):
            campaign = campaign_create(
                org=acme,
                name=name,
                channel="sms",
                variants=[{"template": template}],
                provider_account=account,
            )
            campaign_plan(campaign=campaign)
            campaigns.append(campaign)
        assert Delivery.objects.for_org(acme).filter(status="pending").count() == 2 * N

        start = threading.Barrier(2)
        errors: list[BaseException] = []

        def sender(campaign_id: int) -> None:
            try:
                start.wait()
                # Small claims, both campaigns in contact order: the same people are claimed
                # by both threads at nearly the same instant, over and over.
                deliveries_send_due(campaign_id=campaign_id, batch=10, time_budget=120)
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=sender, args=(c.pk,)) for c in campaigns]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
    assert not errors, errors
    per_phone = Counter(ConsoleSms.objects.for_org(acme).values_list("phone_hash", flat=True))
    assert len(per_phone) == N and set(per_phone.values()) == {1}  # every person exactly one
    rows = Delivery.objects.for_org(acme)
    assert rows.filter(status="sent").count() == N
    assert rows.filter(status="suppressed", reason="frequency_cap").count() == N
    assert set(MarketingSendCount.objects.for_org(acme).values_list("count", flat=True)) == {1}
