"""The per-event path: one recorded event re-scores its lead within a fixed, small number of
database round trips (its latency budget is 10 ms p99; speed itself is measured by the bench)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.demo import seed_scoring_model
from crm.models import Contact, ScoreHistory
from crm.services.events import event_record

# Event insert, contact + consents + events in one SELECT, score update + history.
# SQLite writes the update and the history row as two statements in a savepoint.
ROUND_TRIPS = {"postgresql": 3, "sqlite": 6}


def _female_lead(org) -> Contact:
    year = timezone.now().year
    return Contact.objects.for_org(org).create(
        org=org, nickname="小雨", gender="female", birth_year=year - 30
    )


def test_one_event_rescores_its_lead_in_a_pinned_number_of_queries(
    acme, django_capture_on_commit_callbacks
):
    seed_scoring_model(acme)
    lead = _female_lead(acme)
    with django_capture_on_commit_callbacks(execute=True):
        event_record(contact=lead, type="chat", props={"text": "多少钱"})  # warms the memo
    lead.refresh_from_db()
    assert lead.score == 20 + 30  # 女性 + 25–35岁; one chat is not yet 互动活跃

    with (
        CaptureQueriesContext(connection) as queries,
        django_capture_on_commit_callbacks(execute=True),
    ):
        event_record(contact=lead, type="coupon.claim", props={"coupon": 1})
    assert len(queries) == ROUND_TRIPS[connection.vendor], [q["sql"] for q in queries]

    lead.refresh_from_db()
    assert lead.score == 60  # + 领券 10
    assert sum(lead.score_breakdown.values()) == lead.score
    assert ScoreHistory.objects.for_org(acme).filter(contact=lead, score=60).count() == 1


def test_an_event_that_changes_nothing_writes_nothing(acme, django_capture_on_commit_callbacks):
    seed_scoring_model(acme)
    lead = _female_lead(acme)
    with django_capture_on_commit_callbacks(execute=True):
        event_record(contact=lead, type="coupon.claim", props={"coupon": 1})
    history = ScoreHistory.objects.for_org(acme).filter(contact=lead).count()

    with (
        CaptureQueriesContext(connection) as queries,
        django_capture_on_commit_callbacks(execute=True),
    ):
        event_record(contact=lead, type="coupon.claim", props={"coupon": 2})
    # Insert + the one read; a second claim adds no points, so no write.
    assert len(queries) == 2, [q["sql"] for q in queries]
    assert ScoreHistory.objects.for_org(acme).filter(contact=lead).count() == history


def test_the_per_event_read_never_crosses_organisations(
    acme, other_org, django_capture_on_commit_callbacks
):
    from crm.services.scoring import contact_rescore

    seed_scoring_model(acme)
    lead = _female_lead(acme)
    # Asking for acme's lead under another organisation finds nothing and writes nothing.
    assert contact_rescore(org_id=other_org.pk, contact_id=lead.pk) is False
    lead.refresh_from_db()
    assert lead.score is None


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_autocommit_event_rescores_with_an_asynchronous_commit(acme):
    """Outside any transaction (a real request) the score write commits on its own without
    waiting for the WAL flush, in one round trip, and leaves the connection clean."""
    assert connection.vendor == "postgresql"
    seed_scoring_model(acme)
    lead = _female_lead(acme)
    event_record(contact=lead, type="chat", props={"text": "在吗"})
    with CaptureQueriesContext(connection) as queries:
        event_record(contact=lead, type="coupon.claim", props={"coupon": 1})
    assert len(queries) == ROUND_TRIPS["postgresql"], [q["sql"] for q in queries]
    assert connection.get_autocommit() and not connection.in_atomic_block
    lead.refresh_from_db()
    assert lead.score == 60
    assert ScoreHistory.objects.for_org(acme).filter(contact=lead, score=60).exists()
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"  # SET LOCAL ended with its transaction
