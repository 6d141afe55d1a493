"""The hub's CRM writer records a batch through ``events_record_batch``: one re-score per
viewer however many of their events the batch holds, nothing for another organisation's."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.utils import timezone

from crm.demo import seed_scoring_model
from crm.models import Event, ScoreHistory
from livecommerce.realtime.crm import events_from_line, line_from_events, write_events
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def test_a_viewers_join_leave_and_likes_rescore_them_once(
    acme, other_org, django_capture_on_commit_callbacks
):
    seed_scoring_model(acme)
    dan = ContactFactory(
        org=acme, nickname="dan", gender="female", birth_year=timezone.now().year - 30
    )
    erin = ContactFactory(org=other_org, nickname="erin")
    at = datetime(2026, 3, 1, 12, tzinfo=UTC)
    batch = [
        (acme.pk, dan.pk, "room.join", {}, 7, "join:7:dan", at),
        (acme.pk, dan.pk, "room.leave", {"watch_seconds": 1200}, 7, "leave:7:dan", at),
        (acme.pk, dan.pk, "like", {"count": 5}, 7, "like:7:dan", at),
        (acme.pk, erin.pk, "room.join", {}, 7, "join:7:erin", at),  # not acme's viewer
    ]
    with django_capture_on_commit_callbacks(execute=True):
        assert write_events(events_from_line(line_from_events(batch))) == 3
    logged = Event.objects.for_org(acme).filter(contact=dan).order_by("id")
    assert [(e.type, e.value) for e in logged] == [
        ("room.join", None),
        ("room.leave", 1200.0),
        ("like", 5.0),
    ]
    assert not Event.unscoped.filter(contact=erin).exists()
    history = ScoreHistory.objects.for_org(acme).filter(contact=dan)
    assert [h.reason for h in history] == ["room.join"]  # one re-score, seeing all three
    dan.refresh_from_db()
    assert dan.score == history.get().score and sum(dan.score_breakdown.values()) == dan.score
