"""The lead lifecycle funnel (GET /api/v1/leads/funnel): its figures equal the counts taken
by hand from factory-made events, per room and per week, and stay inside the organisation;
a room's row is named by the room's title (livecommerce answers crm.rooms.room_titles)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crm.models import ScoreHistory
from tests.crm.factories import ContactFactory, EventFactory
from tests.factories import RoomFactory, StreamerProfileFactory

# Tuesday 2026-11-03 10:00 Shanghai and the Tuesday after: two weeks, Monday-based.
WEEK1 = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)
WEEK2 = WEEK1 + timedelta(days=7)


def _event(contact, type_, at, room=None, **extra):
    return EventFactory(contact=contact, type=type_, occurred_at=at, room_id=room, **extra)


def _hot_at(contact, at, grade="A"):
    row = ScoreHistory.unscoped.create(
        org=contact.org, contact=contact, score=90, grade=grade, old_grade="B", reason="event"
    )
    ScoreHistory.unscoped.filter(pk=row.pk).update(created_at=at)


@pytest.fixture
def story(acme, other_org):
    return make_story(acme, other_org)


def make_story(acme, other_org):
    """Room 1 (week 1): six viewers. Room 2 (week 2): three viewers, one of them from room 1.
    Per room and per week: (6, 4, 2, 1) in room 1 / week 1, (3, 2, 2, 1) in room 2 / week 2.
    Returns the contacts and the two rooms' ids as strings (the funnel's room cohorts)."""
    streamer = StreamerProfileFactory(org=acme)
    room1 = RoomFactory(org=acme, streamer=streamer, title="周二护肤专场").pk
    room2 = RoomFactory(org=acme, streamer=streamer, title="周二彩妆专场").pk
    c = [ContactFactory(org=acme, nickname=f"c{i}") for i in range(8)]
    for person in c[:6]:
        _event(person, "room.join", WEEK1, room=room1)
    # engaged in room 1: c0..c3 (chat, like, click, claim); c4 only left; c5 nothing.
    for person, kind in zip(c[:4], ["chat", "like", "product.click", "coupon.claim"], strict=True):
        _event(person, kind, WEEK1 + timedelta(minutes=5), room=room1)
    _event(c[4], "room.leave", WEEK1 + timedelta(minutes=9), room=room1)
    # hot: c0 by history after the join, c1 by its current grade; c2 was A only before.
    _hot_at(c[0], WEEK1 + timedelta(minutes=6))
    c[1].grade = "A"
    c[1].save(update_fields=["grade"])
    _hot_at(c[2], WEEK1 - timedelta(days=3))
    # c5 is A now but never engaged: not hot in the funnel (stages are cumulative).
    c[5].grade = "A"
    c[5].save(update_fields=["grade"])
    # customer: c0 ordered after the join; c1 bought before the join only.
    _event(c[0], "order", WEEK1 + timedelta(hours=2), props={"amount": 99})
    _event(c[1], "coupon.redeem", WEEK1 - timedelta(days=1))
    # room 2 in week 2: c0 again (engaged, still A, no new purchase), c6 and c7 (c7 won).
    for person in (c[0], c[6], c[7]):
        _event(person, "room.join", WEEK2, room=room2)
    _event(c[0], "chat", WEEK2 + timedelta(minutes=1), room=room2)
    _event(c[7], "share", WEEK2 + timedelta(minutes=1), room=room2)
    c[0].grade = "A"
    c[0].save(update_fields=["grade"])
    c[7].grade = "A"
    c[7].status = "won"
    c[7].save(update_fields=["grade", "status"])
    # another organisation's viewer in a room with the same id: never counted.
    stranger = ContactFactory(org=other_org)
    _event(stranger, "room.join", WEEK1, room=room1)
    _event(stranger, "chat", WEEK1, room=room1)
    return {"contacts": c, "rooms": (str(room1), str(room2))}


@pytest.mark.django_db
def test_the_funnel_per_room_equals_the_counts_from_the_events(story, sales_bob):
    res = sales_bob.client().get("/api/v1/leads/funnel", {"by": "room"})
    assert res.status_code == 200, res.content
    body = res.json()
    assert body["by"] == "room" and body["hot_grade"] == "A"
    room1, room2 = story["rooms"]
    rows = {r["cohort"]: r for r in body["rows"]}
    assert list(rows) == [room2, room1]  # newest room first
    assert [rows[room1]["title"], rows[room2]["title"]] == ["周二护肤专场", "周二彩妆专场"]
    assert {k: rows[room1][k] for k in ("viewers", "engaged", "hot", "customers")} == {
        "viewers": 6,
        "engaged": 4,
        "hot": 2,
        "customers": 1,
    }
    assert rows[room1]["engaged_rate"] == 66.7
    assert rows[room1]["hot_rate"] == 50.0
    assert rows[room1]["customer_rate"] == 50.0
    assert rows[room1]["overall_rate"] == 16.7
    assert {k: rows[room2][k] for k in ("viewers", "engaged", "hot", "customers")} == {
        "viewers": 3,
        "engaged": 2,
        "hot": 2,
        "customers": 1,
    }


@pytest.mark.django_db
def test_the_funnel_per_week_groups_joins_by_monday_in_shanghai(story, admin_carol):
    res = admin_carol.client().get("/api/v1/leads/funnel", {"by": "week"})
    assert res.status_code == 200, res.content
    rows = res.json()["rows"]
    assert [r["cohort"] for r in rows] == ["2026-11-09", "2026-11-02"]
    assert [r["title"] for r in rows] == [None, None]
    assert [(r["viewers"], r["engaged"], r["hot"], r["customers"]) for r in rows] == [
        (3, 2, 2, 1),
        (6, 4, 2, 1),
    ]


@pytest.mark.django_db
def test_an_empty_stage_gives_no_rate_and_bad_input_is_a_400(acme, other_org, sales_bob):
    # The join names a room of another organisation: counted, but its title is not shown.
    elsewhere = RoomFactory(org=other_org, streamer=StreamerProfileFactory(org=other_org))
    c = ContactFactory(org=acme)
    _event(c, "room.join", WEEK1, room=elsewhere.pk)
    client = sales_bob.client()
    (row,) = client.get("/api/v1/leads/funnel", {"by": "room"}).json()["rows"]
    assert (row["viewers"], row["engaged"], row["engaged_rate"], row["hot_rate"]) == (
        1,
        0,
        0.0,
        None,
    )
    assert (row["cohort"], row["title"]) == (str(elsewhere.pk), None)
    assert client.get("/api/v1/leads/funnel", {"by": "day"}).status_code == 400
    assert client.get("/api/v1/leads/funnel", {"limit": 0}).status_code == 400


@pytest.mark.django_db
def test_the_funnel_is_one_query_whatever_the_number_of_contacts(
    story, sales_bob, django_assert_max_num_queries
):
    client = sales_bob.client()
    client.get("/api/v1/leads/funnel", {"by": "room"})  # warm the scoring model memo
    with django_assert_max_num_queries(6):
        assert client.get("/api/v1/leads/funnel", {"by": "room"}).status_code == 200
