"""The event log on real PostgreSQL is partitioned by month (issue 20): rows land in their
month's partition (far-future ones in the default partition), a month created late takes its
rows out of the default partition, erasure reaches every partition, an idempotency key holds
across months, and retention drops or deletes only what no organisation still keeps."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from crm.models import CrmSettings, Event, EventKey
from crm.services.event_partitions import (
    DEFAULT_PARTITION,
    event_partitions,
    event_partitions_ensure,
    event_retention_apply,
    month_add,
    month_start,
    partition_name,
)
from crm.services.events import EventIn, event_record, events_record_batch
from crm.services.privacy import contact_erase
from tests.factories import ContactFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def _where(*events: Event) -> list[str]:
    """The partition each event's row is stored in."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, tableoid::regclass::text FROM crm_event WHERE id = ANY(%s)",
            [[e.pk for e in events]],
        )
        found = dict(cursor.fetchall())
    return [found.get(e.pk) for e in events]


def _leaf_rows(sql_where: str, params: list) -> dict[str, int]:
    """Rows matching ``sql_where`` in each leaf partition, read from the leaf itself."""
    counts = {}
    for partition in event_partitions():
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {partition.name} WHERE {sql_where}", params)  # noqa: S608
            counts[partition.name] = cursor.fetchone()[0]
    return counts


def _months_ago(months: int, day: int = 10):
    return month_add(month_start(timezone.now()), -months) + timedelta(days=day - 1, hours=3)


def test_the_event_table_is_partitioned_by_month_with_a_default():
    assert connection.vendor == "postgresql"
    names = [p.name for p in event_partitions()]
    now = timezone.now()
    assert partition_name(month_start(now)) in names
    assert partition_name(month_add(month_start(now), 3)) in names  # created ahead
    assert names[-1] == DEFAULT_PARTITION
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'crm_event'::regclass "
            "AND i.indisprimary ORDER BY a.attname"
        )
        assert [name for (name,) in cursor.fetchall()] == ["id", "occurred_at"]


def test_events_land_in_their_months_partition_and_far_future_in_the_default(acme):
    event_partitions_ensure(since=_months_ago(2))
    lead = ContactFactory(org=acme)
    now = timezone.now()
    this_month = event_record(contact=lead, type="like", occurred_at=now, props={"count": 1})
    two_back = event_record(
        contact=lead, type="like", occurred_at=_months_ago(2), props={"count": 1}
    )
    [batched] = events_record_batch(
        events=[
            EventIn(
                org_id=acme.pk,
                contact_id=lead.pk,
                type="like",
                props={"count": 1},
                occurred_at=_months_ago(-1),
                key="k-next",
            )
        ]
    )
    far = event_record(
        contact=lead,
        type="like",
        occurred_at=now.replace(year=2100),
        props={"count": 1},
        key="k-far",
    )

    assert _where(this_month, two_back, batched, far) == [
        partition_name(month_start(now)),
        partition_name(month_add(month_start(now), -2)),
        partition_name(month_add(month_start(now), 1)),
        DEFAULT_PARTITION,
    ]
    # The ORM sees one table: the lead's timeline reads every partition.
    assert set(Event.objects.for_org(acme).filter(contact=lead).values_list("pk", flat=True)) == {
        this_month.pk,
        two_back.pk,
        batched.pk,
        far.pk,
    }


def test_a_month_created_late_takes_its_rows_out_of_the_default_partition(acme):
    lead = ContactFactory(org=acme)
    later = _months_ago(-6)  # beyond the months created ahead
    event = event_record(contact=lead, type="like", occurred_at=later, props={"count": 1})
    assert _where(event) == [DEFAULT_PARTITION]

    created = event_partitions_ensure(ahead=6)

    assert partition_name(month_start(later)) in created
    assert _where(event) == [partition_name(month_start(later))]
    assert Event.objects.for_org(acme).filter(pk=event.pk).exists()


def test_erasure_reaches_the_leads_events_in_every_partition(acme):
    event_partitions_ensure(since=_months_ago(7))
    lead = ContactFactory(org=acme, nickname="王小姐")
    other = ContactFactory(org=acme)
    secret = "我的手机号13812345678"
    months = [0, 3, 7]
    for n, months_back in enumerate(months):
        event_record(
            contact=lead,
            type="form.submit",
            occurred_at=_months_ago(months_back),
            props={"text": secret},
            key=f"lead-form-{n}",
            external=True,
        )
    kept = event_record(
        contact=other,
        type="form.submit",
        occurred_at=_months_ago(3),
        props={"text": "别人的留言"},
        key="other-form",
        external=True,
    )
    holding = {name for name, n in _leaf_rows("props::text LIKE %s", [f"%{secret}%"]).items() if n}
    assert holding == {partition_name(month_start(_months_ago(m))) for m in months}

    contact_erase(contact=lead)

    assert set(_leaf_rows("props::text LIKE %s", [f"%{secret}%"]).values()) == {0}
    assert set(_leaf_rows("key LIKE 'lead-form-%%'", []).values()) == {0}
    left = _leaf_rows("contact_id = %s AND (key IS NOT NULL OR props <> '{}')", [lead.pk])
    assert set(left.values()) == {0}
    assert not EventKey.objects.for_org(acme).filter(key__startswith="lead-form-").exists()
    # Someone else's events and keys are untouched.
    assert Event.objects.for_org(acme).get(pk=kept.pk).props == {"text": "别人的留言"}
    assert EventKey.objects.for_org(acme).filter(key="other-form").exists()


def test_an_idempotency_key_holds_across_months(acme):
    event_partitions_ensure(since=_months_ago(5))
    lead = ContactFactory(org=acme)
    first = event_record(
        contact=lead, type="coupon.claim", occurred_at=_months_ago(1), key="claim:1", external=True
    )
    # The same delivery replayed with another time (another month): still recorded once.
    again = event_record(
        contact=lead, type="coupon.claim", occurred_at=_months_ago(0), key="claim:1", external=True
    )
    batch = events_record_batch(
        events=[
            EventIn(acme.pk, lead.pk, "coupon.claim", occurred_at=_months_ago(5), key="claim:1"),
            EventIn(acme.pk, lead.pk, "coupon.claim", occurred_at=_months_ago(5), key="claim:2"),
            EventIn(acme.pk, lead.pk, "coupon.claim", occurred_at=_months_ago(2), key="claim:2"),
        ]
    )

    assert first is not None and again is None
    assert [e.key for e in batch] == ["claim:2"]
    rows = Event.objects.for_org(acme).filter(contact=lead).order_by("key")
    assert [(e.key, e.occurred_at) for e in rows] == [
        ("claim:1", first.occurred_at),
        ("claim:2", batch[0].occurred_at),
    ]


def test_retention_drops_months_nobody_keeps_and_deletes_only_expired_rows(acme, other_org):
    CrmSettings.objects.for_org(acme).create(org=acme, event_retention_days=90)
    event_partitions_ensure(since=_months_ago(16))
    a, b = ContactFactory(org=acme), ContactFactory(org=other_org)

    def record(contact, months_back, key=None):
        return event_record(
            contact=contact,
            type="like",
            occurred_at=_months_ago(months_back),
            props={"count": 1},
            key=key,
        )

    only_acme = record(a, 16, key="old-a")  # acme alone: the whole month goes
    b_old = record(b, 15)  # other_org keeps everything: its month stays
    shared_a, shared_b = record(a, 14), record(b, 14)
    # Past acme's 90 days, in the month the cutoff falls in (kept for its newer days).
    cutoff = timezone.now() - timedelta(days=90)
    at = month_start(cutoff) + (cutoff - month_start(cutoff)) / 2
    expired_a = event_record(
        contact=a, type="like", occurred_at=at, props={"count": 1}, key="expired-a"
    )
    recent_a = record(a, 0, key="recent-a")

    result = event_retention_apply()

    names = {p.name for p in event_partitions()}
    assert partition_name(month_start(only_acme.occurred_at)) not in names
    assert partition_name(month_start(only_acme.occurred_at)) in result.dropped
    assert partition_name(month_start(b_old.occurred_at)) in names
    assert partition_name(month_start(shared_a.occurred_at)) in names
    assert partition_name(month_start(expired_a.occurred_at)) in names
    assert DEFAULT_PARTITION in names
    assert result.deleted == {acme.pk: 2}  # shared_a and expired_a; only_acme went with its month
    left = set(Event.unscoped.values_list("pk", flat=True))
    assert left == {b_old.pk, shared_b.pk, recent_a.pk}
    assert set(EventKey.objects.for_org(acme).values_list("key", flat=True)) == {"recent-a"}


def test_retention_drops_a_month_whose_rows_all_expired(acme):
    CrmSettings.objects.for_org(acme).create(org=acme, event_retention_days=30)
    event_partitions_ensure(since=_months_ago(20))
    lead = ContactFactory(org=acme)
    old = event_record(contact=lead, type="like", occurred_at=_months_ago(20), props={"count": 1})
    recent = event_record(contact=lead, type="like", occurred_at=_months_ago(0), props={"count": 1})
    month = partition_name(month_start(old.occurred_at))

    result = event_retention_apply()

    assert month in result.dropped
    assert month not in {p.name for p in event_partitions()}
    assert partition_name(month_start(recent.occurred_at)) not in result.dropped
    assert list(Event.objects.for_org(acme).values_list("pk", flat=True)) == [recent.pk]
