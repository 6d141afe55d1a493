"""Journeys fed by a batch of events (``events_record_batch``: the hub's CRM writer, the coupon
reconciler): the same memberships as the same events recorded one by one, with the journeys'
reads of a batch not growing with it."""

from __future__ import annotations

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from campaigns.models import Journey, JourneyMembership, JourneyStepLog
from campaigns.services import journeys
from crm.models import Contact, Event
from crm.services.consent import consent_grant
from crm.services.events import EventIn, event_record, events_record_batch
from tests.campaigns.factories import beijing
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

ROOM, OTHER_ROOM = 7, 8


def _journey(org, key: str, trigger: str, steps: list, condition: dict | None = None):
    return Journey.objects.for_org(org).create(
        org=org,
        key=key,
        name=key,
        trigger_event=trigger,
        trigger_condition=condition,
        steps=steps,
    )


def _seen(org, people: list) -> dict:
    """What the journeys page and the people's profiles show: who is in which journey (the
    trigger event named by its key, not its id), at which step, and their tags."""
    index = {c.pk: i for i, c in enumerate(people)}
    key_of = dict(Event.objects.for_org(org).values_list("pk", "key"))
    members = []
    for m in JourneyMembership.objects.for_org(org).select_related("journey"):
        key = m.key
        if ":event:" in key:
            who, event_id = key.split(":event:")
            key = f"{who}:event:{key_of[int(event_id)]}"
        context = {**m.context, "event": key_of[m.context["event"]]}
        members.append(
            (m.journey.key, index[m.contact_id], key, m.state, m.step_index, m.due_at, context)
        )
    steps = sorted(
        JourneyStepLog.objects.for_org(org).values_list(
            "journey__key", "membership__contact_id", "step_index", "outcome"
        )
    )
    tags = {index[c.pk]: c.tags for c in Contact.objects.for_org(org).filter(pk__in=index)}
    return {"members": sorted(members, key=repr), "steps": steps, "tags": tags}


def test_a_batch_enters_whom_recording_its_events_one_by_one_enters(
    acme, django_capture_on_commit_callbacks
):
    _journey(acme, "welcome", "room.join", [{"type": "tag", "tag": "来过直播间"}])
    # Attribute, behaviour and the tags the welcome journey sets in the same batch.
    _journey(
        acme,
        "regular",
        "room.join",
        [{"type": "wait", "seconds": 3600}],
        {
            "all": [
                {"field": "gender", "op": "eq", "value": "female"},
                {"event": "room.join", "agg": "count", "op": "gte", "value": 2},
                {"not": {"field": "tags", "op": "contains", "value": "来过直播间"}},
            ]
        },
    )
    _journey(
        acme,
        "claimed",
        "coupon.claim",
        [{"type": "tag", "tag": "领过券"}, {"type": "wait", "seconds": 60}],
        {"field": "consent.sms_marketing", "op": "eq", "value": True},
    )
    people = [
        ContactFactory(org=acme, gender="female"),
        ContactFactory(org=acme, gender="male"),
        ContactFactory(org=acme, gender="female", tags=["来过直播间"]),
        ContactFactory(org=acme, gender="female"),
    ]
    consent_grant(contact=people[1], purpose="sms_marketing", source="test")
    consent_grant(contact=people[3], purpose="sms_marketing", source="test")
    event_record(contact=people[3], type="room.join", room_id=OTHER_ROOM, key="before")

    def join(i: int, room: int, key: str) -> EventIn:
        return EventIn(
            org_id=acme.pk, contact_id=people[i].pk, type="room.join", room_id=room, key=key
        )

    def claim(i: int, key: str) -> EventIn:
        return EventIn(
            org_id=acme.pk,
            contact_id=people[i].pk,
            type="coupon.claim",
            props={"coupon": 1, "name": "券", "clip": None},
            room_id=ROOM,
            key=key,
        )

    batch = [
        join(0, ROOM, "j0"),
        join(1, ROOM, "j1"),
        join(0, ROOM, "j0-again"),  # the same room again: one membership per room
        join(3, ROOM, "j3"),
        claim(1, "c1"),
        join(2, ROOM, "j2"),
        claim(3, "c3"),
        claim(0, "c0"),
        join(0, OTHER_ROOM, "j0-other"),
        EventIn(org_id=acme.pk, contact_id=people[2].pk, type="like", key="l2"),
    ]
    with time_machine.travel(beijing(20), tick=False):
        with transaction.atomic():
            by_id = {c.pk: c for c in Contact.objects.for_org(acme)}
            with django_capture_on_commit_callbacks(execute=True):
                for e in batch:
                    event_record(
                        contact=by_id[e.contact_id],
                        type=e.type,
                        props=e.props,
                        room_id=e.room_id,
                        key=e.key,
                    )
            one_by_one = _seen(acme, people)
            transaction.set_rollback(True)

        with django_capture_on_commit_callbacks(execute=True):
            events_record_batch(events=batch)
        batched = _seen(acme, people)

    assert batched == one_by_one
    entered = {(journey, who) for journey, who, *_ in batched["members"]}
    # The conditions did decide: not everyone is in everything.
    assert ("regular", 3) in entered and ("regular", 2) not in entered
    assert ("claimed", 3) in entered and ("claimed", 0) not in entered


def _viewers(org, n: int) -> list[Contact]:
    return Contact.objects.for_org(org).bulk_create(
        Contact(org=org, nickname=f"观众{i}", gender="male") for i in range(n)
    )


def _journey_reads(org, n: int, capture) -> tuple[int, list[str]]:
    events = [
        EventIn(org_id=org.pk, contact_id=v.pk, type="room.join", room_id=ROOM, key=f"j:{v.pk}")
        for v in _viewers(org, n)
    ]
    with CaptureQueriesContext(connection) as queries, capture(execute=True):
        assert len(events_record_batch(events=events)) == n
    return len(queries), [q["sql"] for q in queries]


def test_a_batchs_journey_reads_do_not_grow_with_the_batch(
    acme, django_capture_on_commit_callbacks
):
    """A batch of N events that journeys listen to, whose trigger conditions read a contact
    field, their events and their consents: the same number of queries for 40 events as for
    4 (one read of the journeys, one of the contacts, one of their events, one of their
    consents), and the contacts read for their needed columns only."""
    condition = {
        "all": [
            {"field": "gender", "op": "eq", "value": "female"},
            {"event": "order", "agg": "count", "op": "gte", "value": 1},
            {"field": "consent.sms_marketing", "op": "eq", "value": True},
        ]
    }
    _journey(acme, "buyers_back", "room.join", [{"type": "tag", "tag": "回访"}], condition)
    _journey(acme, "women_back", "room.join", [{"type": "tag", "tag": "回访"}], condition)
    _journey_reads(acme, 2, django_capture_on_commit_callbacks)  # memos warmed alike

    few, _ = _journey_reads(acme, 4, django_capture_on_commit_callbacks)
    many, sql = _journey_reads(acme, 40, django_capture_on_commit_callbacks)

    assert many == few, sql
    assert not JourneyMembership.objects.for_org(acme).exists()  # nobody matched
    columns = [q.split(" FROM ")[0] for q in sql if 'FROM "crm_contact"' in q]
    # The journeys' read: the columns their conditions use and the merged/erased checks.
    wanted = ", ".join(
        f'"crm_contact"."{c}"' for c in ("id", "org_id", "gender", "erased_at", "merged_into_id")
    )
    assert columns.count(f"SELECT {wanted}") == 1, columns


def test_one_failing_entry_does_not_cost_the_rest_of_the_batch_theirs(
    acme, monkeypatch, django_capture_on_commit_callbacks
):
    _journey(acme, "welcome", "room.join", [{"type": "tag", "tag": "来过直播间"}])
    dan, mei = _viewers(acme, 2)
    advance = journeys.membership_advance

    def failing_for_dan(*, membership_id: int) -> None:
        if JourneyMembership.unscoped.get(pk=membership_id).contact_id == dan.pk:
            raise RuntimeError("a provider down")
        advance(membership_id=membership_id)

    monkeypatch.setattr(journeys, "membership_advance", failing_for_dan)
    with django_capture_on_commit_callbacks(execute=True):
        events_record_batch(
            events=[
                EventIn(org_id=acme.pk, contact_id=c.pk, type="room.join", room_id=ROOM, key=k)
                for c, k in ((dan, "j:dan"), (mei, "j:mei"))
            ]
        )
    mei.refresh_from_db()
    assert "来过直播间" in mei.tags
