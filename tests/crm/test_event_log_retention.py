"""The event log's retention and idempotency keys on the embedded database (one plain table;
the monthly partitions are PostgreSQL's, tests/integration/test_event_partitions.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from crm.models import CrmSettings, Event, EventKey
from crm.services.event_partitions import event_partitions_ensure, event_retention_apply
from crm.services.events import EventIn, event_record, events_record_batch
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def _like(contact, days_ago: int, key: str | None = None):
    return event_record(
        contact=contact,
        type="like",
        occurred_at=timezone.now() - timedelta(days=days_ago),
        props={"count": 1},
        key=key,
    )


def test_retention_deletes_only_an_organisations_events_older_than_its_setting(acme, other_org):
    CrmSettings.objects.for_org(acme).create(org=acme, event_retention_days=30)
    mine, theirs = ContactFactory(org=acme), ContactFactory(org=other_org)
    old_mine, new_mine = _like(mine, 40, key="a-old"), _like(mine, 10, key="a-new")
    old_theirs = _like(theirs, 400)

    result = event_retention_apply()

    assert result.dropped == []  # no partitions here
    assert result.deleted == {acme.pk: 1}
    assert set(Event.unscoped.values_list("pk", flat=True)) == {new_mine.pk, old_theirs.pk}
    assert old_mine.pk not in set(Event.unscoped.values_list("pk", flat=True))
    assert list(EventKey.objects.for_org(acme).values_list("key", flat=True)) == ["a-new"]


def test_without_a_retention_setting_nothing_is_deleted(acme):
    lead = ContactFactory(org=acme)
    _like(lead, 3000)
    assert event_retention_apply().deleted == {}
    assert Event.objects.for_org(acme).count() == 1


def test_a_replayed_key_is_recorded_once_whatever_its_time(acme, other_org):
    lead, elsewhere = ContactFactory(org=acme), ContactFactory(org=other_org)
    first = _like(lead, 70, key="k")
    assert _like(lead, 2, key="k") is None
    recorded = events_record_batch(
        events=[
            EventIn(acme.pk, lead.pk, "like", {"count": 1}, key="k"),
            EventIn(acme.pk, lead.pk, "like", {"count": 1}, key="k2"),
            # Keys are per organisation: the same key elsewhere is another event.
            EventIn(other_org.pk, elsewhere.pk, "like", {"count": 1}, key="k"),
        ]
    )

    assert first is not None
    assert [(e.org_id, e.key) for e in recorded] == [(acme.pk, "k2"), (other_org.pk, "k")]
    assert Event.objects.for_org(acme).filter(key="k").count() == 1
    assert EventKey.objects.for_org(acme).count() == 2


def test_partitions_are_postgresqls_alone():
    assert event_partitions_ensure() == []
