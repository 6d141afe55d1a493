"""Round-robin assignment per sales team: rules pick the team (room, segment, default), the
turn moves atomically, hot-lead routing uses it; admins manage teams through the API."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connections
from django.utils import timezone

from core.models import Role
from crm.demo import seed_scoring_model
from crm.models import Contact, SalesTeam, Task
from crm.services.events import event_record
from crm.services.teams import owner_for_lead, team_next_member, team_save
from tests.conftest import _staff
from tests.crm.factories import SegmentFactory
from tests.factories import RoomFactory


@pytest.fixture
def sales_team(acme, sales_bob):
    """Two more sales people; bob and dave form the 华东组, eve is on her own."""
    dave = _staff(acme, "dave", Role.SALES)
    eve = _staff(acme, "eve", Role.SALES)
    east = team_save(org_id=acme.pk, name="华东组", member_ids=[sales_bob.user.pk, dave.user.pk])
    solo = team_save(org_id=acme.pk, name="直播组", member_ids=[eve.user.pk])
    return {"east": east, "solo": solo, "bob": sales_bob, "dave": dave, "eve": eve}


def test_admins_manage_teams_and_rules_through_the_api(
    acme, admin_carol, sales_bob, outsider_erin, host_alice
):
    client = admin_carol.client()
    room = RoomFactory(org=acme, streamer=host_alice.profile)
    candidates = client.get("/api/v1/teams/candidates").json()
    assert {c["username"] for c in candidates} == {"bob", "carol"}
    response = client.post(
        "/api/v1/teams",
        {"name": "华东组", "members": [sales_bob.user.pk], "is_default": True},
        format="json",
    )
    assert response.status_code == 201, response.json()
    team = response.json()
    assert team["members"] == [{"id": sales_bob.user.pk, "username": "bob"}] and team["is_default"]

    # A member of another organisation is refused, naming the id.
    response = client.post(
        "/api/v1/teams", {"name": "外部", "members": [outsider_erin.user.pk]}, format="json"
    )
    assert response.status_code == 400
    assert str(outsider_erin.user.pk) in str(response.json()["fields"]["members"])

    # A second default team takes the flag over.
    second = client.post(
        "/api/v1/teams", {"name": "华南组", "members": [], "is_default": True}, format="json"
    ).json()
    teams = {t["name"]: t["is_default"] for t in client.get("/api/v1/teams").json()}
    assert teams == {"华东组": False, "华南组": True}

    rule = client.post(
        "/api/v1/assignment-rules", {"team": second["id"], "room": room.pk}, format="json"
    )
    assert rule.status_code == 201
    assert (
        client.post("/api/v1/assignment-rules", {"team": second["id"]}, format="json").status_code
        == 400
    )
    assert (
        sales_bob.client()
        .post("/api/v1/teams", {"name": "x", "members": []}, format="json")
        .status_code
        == 403
    )
    assert outsider_erin.client().get(f"/api/v1/teams/{team['id']}").status_code == 404
    assert client.delete(f"/api/v1/assignment-rules/{rule.json()['id']}").status_code == 204


def test_round_robin_goes_around_the_team_in_turn(acme, sales_team):
    east = sales_team["east"]
    owners = [team_next_member(team=east).username for _ in range(5)]
    assert owners == ["bob", "dave", "bob", "dave", "bob"]


def test_rules_pick_the_team_by_room_then_segment_then_default(
    acme, sales_team, admin_carol, host_alice
):
    from crm.services.teams import assignment_rule_create

    east, solo = sales_team["east"], sales_team["solo"]
    room = RoomFactory(org=acme, streamer=host_alice.profile)
    vip = SegmentFactory(org=acme, condition={"field": "city", "op": "eq", "value": "杭州"})
    assignment_rule_create(org_id=acme.pk, team=solo, priority=1, room_id=room.pk)
    assignment_rule_create(org_id=acme.pk, team=east, priority=2, segment=vip)
    in_room = Contact.objects.for_org(acme).create(org=acme, city="上海")
    in_segment = Contact.objects.for_org(acme).create(org=acme, city="杭州")
    elsewhere = Contact.objects.for_org(acme).create(org=acme, city="北京")

    assert owner_for_lead(contact=in_room, room_ids=[room.pk]).username == "eve"
    assert owner_for_lead(contact=in_segment).username in {"bob", "dave"}
    # No rule matches and no default team: the org-wide round robin over sales members.
    assert owner_for_lead(contact=elsewhere).username in {"bob", "dave", "eve"}
    SalesTeam.objects.for_org(acme).filter(pk=solo.pk).update(is_default=True)
    assert owner_for_lead(contact=elsewhere).username == "eve"


def test_a_hot_lead_in_a_live_room_goes_to_that_rooms_team(
    acme, host_alice, sales_team, django_capture_on_commit_callbacks
):
    from crm.services.teams import assignment_rule_create

    seed_scoring_model(acme)
    room = RoomFactory(org=acme, streamer=host_alice.profile, status="live")
    assignment_rule_create(org_id=acme.pk, team=sales_team["solo"], room_id=room.pk)
    year = timezone.now().year
    lead = Contact.objects.for_org(acme).create(
        org=acme, gender="female", birth_year=year - 28, income_level="high"
    )
    with django_capture_on_commit_callbacks(execute=True):
        event_record(contact=lead, type="order", room_id=room.pk, props={"amount": 99})
    lead.refresh_from_db()
    assert lead.grade == "A" and lead.owner_id == sales_team["eve"].user.pk
    assert Task.objects.for_org(acme).get(contact=lead, kind="hot_lead").assignee_id == (
        sales_team["eve"].user.pk
    )


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_concurrent_assignments_never_take_the_same_turn(acme, sales_bob):
    """Threads on their own PostgreSQL connections assign at once: every turn is handed out
    exactly once, so the team's members get exactly equal shares."""
    assert connections["default"].vendor == "postgresql"
    others = [_staff(acme, f"s{i}", Role.SALES) for i in range(2)]
    team = team_save(
        org_id=acme.pk, name="并发组", member_ids=[sales_bob.user.pk] + [o.user.pk for o in others]
    )
    picks: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def assign() -> None:
        try:
            start.wait()
            for _ in range(20):
                user = team_next_member(team=team)
                with lock:
                    picks.append(user.username)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=assign) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(picks) == 120
    assert Counter(picks) == {"bob": 40, "s0": 40, "s1": 40}
    team.refresh_from_db()
    assert team.cursor == 120
