"""Batch recording (``events_record_batch``): the same outcome as recording the same events one
by one through ``event_record`` — events, scores, grades, breakdowns, history and grade
announcements — in a number of statements that grows with the chunks, not the events."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.demo import seed_scoring_model
from crm.models import Contact, Event, ScoreHistory, ScoringRule
from crm.services import scoring
from crm.services.events import EventIn, event_record, events_record_batch
from crm.services.scoring import scoring_model_for
from tests.crm.strategies import EVENTS, contact_spec
from tests.crm.test_conditions_property import NOW, Rollback, make_contacts
from tests.crm.test_scoring_property import rule_spec
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

PROPS = {"room.leave": "watch_seconds", "order": "amount", "like": "count"}


def _outcome(org, contacts, heard) -> dict:
    """What a user can see after recording: per contact its events, score, grade, breakdown,
    RFM, history and the grade changes announced for it."""
    out = {}
    for i, contact in enumerate(contacts):
        contact.refresh_from_db()
        events = Event.objects.for_org(org).filter(contact=contact).order_by("id")
        history = ScoreHistory.objects.for_org(org).filter(contact=contact).order_by("id")
        out[i] = {
            "events": [(e.type, e.props, e.room_id, e.value, e.key, e.occurred_at) for e in events],
            "score": (contact.score, contact.grade, contact.score_breakdown),
            "rfm": (contact.order_count, contact.lifecycle),
            "history": [(h.score, h.grade, h.old_score, h.old_grade, h.reason) for h in history],
            "announced": [(old, new) for cid, old, new in heard if cid == contact.pk],
        }
    return out


@st.composite
def batch_event(draw, contacts: int):
    type_ = draw(st.sampled_from([*EVENTS, "room.join", "like"]))
    prop = PROPS.get(type_)
    return {
        "contact": draw(st.integers(0, contacts - 1)),
        "type": type_,
        "props": {prop: draw(st.integers(0, 3)) * 100} if prop else {},
        "minutes_ago": draw(st.integers(0, 40 * 24 * 60)),
        "room_id": draw(st.sampled_from([None, 1, 2])),
        # A small key space: replays within the batch and against the history come up.
        "key": draw(st.one_of(st.none(), st.integers(0, 4).map(lambda k: f"k{k}"))),
    }


@st.composite
def scenario(draw):
    specs = draw(st.lists(contact_spec(NOW), min_size=1, max_size=4))
    return {
        "rules": draw(st.lists(rule_spec(), min_size=1, max_size=4)),
        "grades": draw(st.lists(st.integers(-20, 60), max_size=2, unique=True)),
        "specs": specs,
        "batch": draw(st.lists(batch_event(len(specs)), min_size=1, max_size=12)),
        "recorded_before": draw(st.sets(st.integers(0, 4), max_size=2)),
    }


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=scenario())
def test_a_batch_gives_what_recording_its_events_one_by_one_gives(
    acme, announced, django_capture_on_commit_callbacks, case
):
    """The baseline is what the hub's writer did before: ``event_record`` per event in one
    transaction, the listeners' work after it commits."""
    try:
        with transaction.atomic():
            model = scoring_model_for(acme.pk)
            model.grades = [
                {"grade": "ABC"[i], "min": m} for i, m in enumerate(sorted(case["grades"])[::-1])
            ]
            model.save()
            for i, spec in enumerate(case["rules"]):
                ScoringRule.objects.for_org(acme).create(
                    org=acme, model=model, name=f"r{i}", **spec
                )
            contacts = make_contacts(acme, case["specs"])
            for k in case["recorded_before"]:  # keys a previous batch already recorded
                event_record(contact=contacts[0], type="chat", key=f"k{k}", occurred_at=NOW)
            events = [
                EventIn(
                    org_id=acme.pk,
                    contact_id=contacts[e["contact"]].pk,
                    type=e["type"],
                    props=e["props"],
                    occurred_at=NOW - timedelta(minutes=e["minutes_ago"]),
                    room_id=e["room_id"],
                    key=e["key"],
                )
                for e in case["batch"]
            ]

            with transaction.atomic():
                announced.clear()
                with django_capture_on_commit_callbacks(execute=True):
                    by_id = {c.pk: c for c in Contact.objects.for_org(acme)}
                    for e in events:
                        event_record(
                            contact=by_id[e.contact_id],
                            type=e.type,
                            props=e.props,
                            occurred_at=e.occurred_at,
                            room_id=e.room_id,
                            key=e.key,
                        )
                one_by_one = _outcome(acme, contacts, announced)
                transaction.set_rollback(True)

            announced.clear()
            with django_capture_on_commit_callbacks(execute=True):
                events_record_batch(events=events)
            batched = _outcome(acme, contacts, announced)

            assert batched == one_by_one, case
            raise Rollback
    except Rollback:
        pass


def _join(contact, key: str) -> EventIn:
    return EventIn(
        org_id=contact.org_id, contact_id=contact.pk, type="room.join", room_id=7, key=key
    )


def test_a_replayed_key_is_recorded_once_within_a_batch_and_across_batches(
    acme, django_capture_on_commit_callbacks
):
    seed_scoring_model(acme)
    dan = ContactFactory(org=acme, nickname="dan")
    with django_capture_on_commit_callbacks(execute=True):
        first = events_record_batch(
            events=[_join(dan, "j:1"), _join(dan, "j:1"), _join(dan, "j:2")]
        )
        again = events_record_batch(events=[_join(dan, "j:2"), _join(dan, "j:3")])
    assert [e.key for e in first] == ["j:1", "j:2"]
    assert [e.key for e in again] == ["j:3"]
    keys = Event.objects.for_org(acme).filter(contact=dan).values_list("key", flat=True)
    assert sorted(keys) == ["j:1", "j:2", "j:3"]


def test_a_key_recorded_in_another_organisation_does_not_block_this_one(acme, other_org):
    dan, erin = ContactFactory(org=acme), ContactFactory(org=other_org)
    events_record_batch(events=[_join(erin, "j:1")])
    assert [e.contact_id for e in events_record_batch(events=[_join(dan, "j:1")])] == [dan.pk]


def test_unknown_foreign_merged_and_erased_contacts_are_skipped(acme, other_org):
    dan = ContactFactory(org=acme, nickname="dan")
    erin = ContactFactory(org=other_org, nickname="erin")
    merged = ContactFactory(org=acme, merged_into=dan)
    erased = ContactFactory(org=acme, erased_at=timezone.now())
    events = [
        _join(dan, "a"),
        EventIn(
            org_id=acme.pk, contact_id=erin.pk, type="room.join", key="b"
        ),  # erin's, not acme's
        EventIn(org_id=acme.pk, contact_id=10**9, type="room.join", key="c"),  # unknown
        _join(merged, "d"),
        _join(erased, "e"),
    ]
    recorded = events_record_batch(events=events)
    assert [(e.contact_id, e.key) for e in recorded] == [(dan.pk, "a")]
    assert not Event.unscoped.filter(contact__in=[erin, merged, erased]).exists()


def test_value_comes_from_the_same_props_as_for_one_event(acme, settings):
    # Props off their schema on purpose (crm/events.py): the value is read the same way
    # whatever a row holds.
    settings.EVENT_SCHEMA_CHECKS = False
    dan = ContactFactory(org=acme)
    recorded = events_record_batch(
        events=[
            EventIn(
                org_id=acme.pk, contact_id=dan.pk, type="room.leave", props={"watch_seconds": "90"}
            ),
            EventIn(org_id=acme.pk, contact_id=dan.pk, type="like", props={"count": "many"}),
            EventIn(org_id=acme.pk, contact_id=dan.pk, type="chat", props={"count": 3}),
        ]
    )
    assert [e.value for e in recorded] == [90.0, None, None]
    assert all(e.pk and e.occurred_at for e in recorded)


def test_a_batch_event_enters_the_journey_it_triggers(acme, django_capture_on_commit_callbacks):
    from campaigns.models import Journey, JourneyMembership

    journey = Journey.objects.for_org(acme).create(
        org=acme,
        key="welcome",
        name="欢迎",
        trigger_event="room.join",
        steps=[{"type": "tag", "tag": "来过直播间"}],
    )
    dan, mei = ContactFactory(org=acme), ContactFactory(org=acme)
    with django_capture_on_commit_callbacks(execute=True):
        events_record_batch(
            events=[_join(dan, "j:dan"), _join(mei, "j:mei"), _join(dan, "j:dan:again")]
        )
    members = JourneyMembership.objects.for_org(acme).filter(journey=journey)
    # One membership per person per room, as for events recorded one by one.
    assert sorted(m.contact_id for m in members) == sorted([dan.pk, mei.pk])
    assert members.get(contact=dan).key == f"{dan.pk}:room:7"
    dan.refresh_from_db()
    assert "来过直播间" in dan.tags


def _storm(org, n: int) -> list[EventIn]:
    viewers = Contact.objects.for_org(org).bulk_create(
        Contact(org=org, nickname=f"观众{i}", gender="female", birth_year=NOW.year - 30)
        for i in range(n)
    )
    return [
        EventIn(org_id=org.pk, contact_id=v.pk, type="room.join", room_id=7, key=f"j:{v.pk}")
        for v in viewers
    ]


def _statements(org, n: int, capture) -> int:
    events = _storm(org, n)
    with CaptureQueriesContext(connection) as queries, capture(execute=True):
        assert len(events_record_batch(events=events)) == n
    return len(queries)


def test_a_join_storm_costs_statements_per_chunk_not_per_event(
    acme, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    seed_scoring_model(acme)
    scoring.model_and_rules(acme.pk)  # warm the rules memo
    small = _statements(acme, 50, django_capture_on_commit_callbacks)
    large = _statements(acme, 1_500, django_capture_on_commit_callbacks)
    # 30× the events, a few more statements: the 1,000-row chunks of the insert and the
    # re-score, and Django's 999-id batches of the contact reads.
    assert large <= small + 10, (small, large)
    events = _storm(acme, 1_500)
    with django_assert_max_num_queries(25), django_capture_on_commit_callbacks(execute=True):
        events_record_batch(events=events)
    scored = Contact.objects.for_org(acme).filter(pk=events[-1].contact_id).get()
    assert scored.score == 20 + 30 and scored.grade  # 女性 + 25–35岁, graded
    history = ScoreHistory.objects.for_org(acme).get(contact=scored)
    assert history.reason == "room.join"


@pytest.mark.integration
def test_a_batch_gives_what_one_by_one_gives_on_postgresql(
    acme, announced, django_capture_on_commit_callbacks
):
    """The PostgreSQL statement (ON CONFLICT … RETURNING, the UPDATE … FROM re-score with a
    reason per contact) against the per-event path, on a fixed mixed batch."""
    seed_scoring_model(acme)
    year = timezone.now().year
    people = [
        ContactFactory(org=acme, gender="female", birth_year=year - 30),
        ContactFactory(org=acme, gender="male"),
        ContactFactory(org=acme, gender="female"),
    ]
    events = []
    for i, person in enumerate(people):
        events += [
            _join(person, f"j:{i}"),
            EventIn(org_id=acme.pk, contact_id=person.pk, type="chat", key=f"c:{i}:1"),
            EventIn(org_id=acme.pk, contact_id=person.pk, type="chat", key=f"c:{i}:2"),
            EventIn(
                org_id=acme.pk,
                contact_id=person.pk,
                type="room.leave",
                props={"watch_seconds": 900 * i},
                key=f"l:{i}",
            ),
        ]
    events.append(
        EventIn(org_id=acme.pk, contact_id=people[0].pk, type="order", props={"amount": 399})
    )
    events.append(_join(people[1], "j:1"))  # a replay
    with transaction.atomic():
        with django_capture_on_commit_callbacks(execute=True):
            for e in events:
                event_record(
                    contact=Contact.objects.for_org(acme).get(pk=e.contact_id),
                    type=e.type,
                    props=e.props,
                    room_id=e.room_id,
                    key=e.key,
                )
        expected = _without_times(_outcome(acme, people, announced))
        transaction.set_rollback(True)
    announced.clear()
    with django_capture_on_commit_callbacks(execute=True):
        events_record_batch(events=events)
    assert _without_times(_outcome(acme, people, announced)) == expected


def _without_times(outcome: dict) -> dict:
    for person in outcome.values():
        person["events"] = [e[:-1] for e in person["events"]]
    return outcome
