"""Per-team follow-up rules: a team's hot-lead SLA overrides the organisation's, and a lapse
either returns the lead to the pool (公海) or hands it at once to the team's next member —
never back to the one who let it lapse. Every change of owner is audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core.models import AuditLog, Role
from crm.demo import seed_scoring_model
from crm.models import Contact, LapseAction, Notification, SalesTeam, Task
from crm.services.events import event_record
from crm.services.leads import lead_sla_sweep, lead_update
from crm.services.teams import InvalidTeam, assignment_rule_create, team_save
from tests.conftest import _staff
from tests.crm.factories import SegmentFactory
from tests.factories import ContactFactory, RoomFactory


@pytest.fixture
def live_room(acme, host_alice):
    seed_scoring_model(acme)
    return RoomFactory(org=acme, streamer=host_alice.profile, status="live")


@pytest.fixture
def east(acme, sales_bob, live_room):
    """华东组: bob and dave, hot leads of the live room, 5-minute SLA, lapses go to the next
    member."""
    dave = _staff(acme, "dave", Role.SALES)
    team = team_save(
        org_id=acme.pk,
        name="华东组",
        member_ids=[sales_bob.user.pk, dave.user.pk],
        hot_lead_sla_minutes=5,
        lapse_action=LapseAction.NEXT_MEMBER,
    )
    assignment_rule_create(org_id=acme.pk, team=team, room_id=live_room.pk)
    return team


def _hot_lead(acme, room, django_capture_on_commit_callbacks, **attrs) -> Contact:
    """A lead who reaches grade A by ordering in the live room (hot-lead routing runs)."""
    lead = Contact.objects.for_org(acme).create(
        org=acme,
        gender="female",
        birth_year=timezone.now().year - 28,
        income_level="high",
        **attrs,
    )
    with django_capture_on_commit_callbacks(execute=True):
        event_record(contact=lead, type="order", room_id=room.pk, props={"amount": 99})
    lead.refresh_from_db()
    assert lead.grade == "A"
    return lead


def _open_hot_task(acme, lead) -> Task:
    return Task.objects.for_org(acme).get(
        contact=lead, kind="hot_lead", done_at__isnull=True, lapsed_at__isnull=True
    )


def _sla(task: Task) -> timedelta:
    return task.due_at - task.created_at


def _owner_changes(acme, lead) -> list[tuple]:
    rows = AuditLog.objects.for_org(acme).filter(action="lead.owner_change", target_id=str(lead.pk))
    return [(r.detail["reason"], r.detail["from"], r.detail["to"]) for r in rows.order_by("id")]


def test_the_teams_sla_sets_the_hot_lead_tasks_due_time(
    acme, east, live_room, sales_bob, django_capture_on_commit_callbacks
):
    lead = _hot_lead(acme, live_room, django_capture_on_commit_callbacks)
    task = _open_hot_task(acme, lead)
    assert lead.owner_id == sales_bob.user.pk == task.assignee_id
    assert abs(_sla(task) - timedelta(minutes=5)) < timedelta(seconds=5)
    assert task.context["team"] == east.pk
    assert _owner_changes(acme, lead) == [("hot_lead", None, sales_bob.user.pk)]


def test_a_team_without_an_override_uses_the_org_sla(
    acme, east, live_room, django_capture_on_commit_callbacks
):
    SalesTeam.objects.for_org(acme).filter(pk=east.pk).update(hot_lead_sla_minutes=None)
    lead = _hot_lead(acme, live_room, django_capture_on_commit_callbacks)
    assert abs(_sla(_open_hot_task(acme, lead)) - timedelta(minutes=30)) < timedelta(seconds=5)


def test_an_owner_in_no_team_keeps_the_org_sla_and_the_pool(
    acme, east, live_room, admin_carol, django_capture_on_commit_callbacks
):
    # carol already owns the lead and is in no team: the organisation's rules apply.
    lead = _hot_lead(acme, live_room, django_capture_on_commit_callbacks, owner=admin_carol.user)
    task = _open_hot_task(acme, lead)
    assert task.assignee_id == admin_carol.user.pk and "team" not in task.context
    assert abs(_sla(task) - timedelta(minutes=30)) < timedelta(seconds=5)

    assert lead_sla_sweep(now=task.due_at + timedelta(seconds=1)) == 1
    lead.refresh_from_db()
    assert lead.owner_id is None
    assert _owner_changes(acme, lead) == [("sla_pool", admin_carol.user.pk, None)]


def test_an_owner_outside_the_leads_team_gets_the_rules_of_their_own_team(
    acme, east, live_room, django_capture_on_commit_callbacks
):
    eve = _staff(acme, "eve", Role.SALES)
    team_save(org_id=acme.pk, name="直播组", member_ids=[eve.user.pk], hot_lead_sla_minutes=12)
    lead = _hot_lead(acme, live_room, django_capture_on_commit_callbacks, owner=eve.user)
    assert abs(_sla(_open_hot_task(acme, lead)) - timedelta(minutes=12)) < timedelta(seconds=5)


def test_next_member_hands_the_lead_on_at_once_then_the_pool_when_nobody_is_left(
    acme, east, live_room, sales_bob, django_capture_on_commit_callbacks
):
    dave = SalesTeam.objects.for_org(acme).get(pk=east.pk).members.get(username="dave")
    lead = _hot_lead(acme, live_room, django_capture_on_commit_callbacks)
    first = _open_hot_task(acme, lead)
    assert lead.owner_id == sales_bob.user.pk

    assert lead_sla_sweep(now=first.due_at + timedelta(seconds=1)) == 1
    lead.refresh_from_db()
    second = _open_hot_task(acme, lead)
    assert lead.owner_id == dave.pk == second.assignee_id
    # A fresh SLA of the team's length, the same context, who let it lapse.
    assert abs(_sla(second) - timedelta(minutes=5)) < timedelta(seconds=5)
    assert second.context["lapsed_by"] == [sales_bob.user.pk]
    assert second.context["room_ids"] == first.context["room_ids"]
    first.refresh_from_db()
    assert first.lapsed_at is not None
    # Both owners are told.
    told_bob = Notification.objects.for_org(acme).get(user=sales_bob.user, kind="lead_reassigned")
    assert told_bob.data["to"] == dave.pk and "dave" in told_bob.title
    told_dave = Notification.objects.for_org(acme).get(user=dave, kind="hot_lead")
    assert told_dave.data["task"] == second.pk

    # dave lets it lapse too: bob already did, so it goes back to the pool.
    assert lead_sla_sweep(now=second.due_at + timedelta(seconds=1)) == 1
    lead.refresh_from_db()
    assert lead.owner_id is None
    assert Notification.objects.for_org(acme).filter(user=dave, kind="lead_returned").exists()
    assert _owner_changes(acme, lead) == [
        ("hot_lead", None, sales_bob.user.pk),
        ("sla_next_member", sales_bob.user.pk, dave.pk),
        ("sla_pool", dave.pk, None),
    ]


def test_next_member_never_hands_the_lead_back_to_the_member_who_let_it_lapse(
    acme, east, live_room, sales_bob, django_capture_on_commit_callbacks
):
    frank = _staff(acme, "frank", Role.SALES)
    members = [
        sales_bob.user.pk,
        *east.members.exclude(pk=sales_bob.user.pk).values_list("pk", flat=True),
        frank.user.pk,
    ]
    team_save(org_id=acme.pk, name="华东组", member_ids=members, team=east)
    for cursor in range(6):
        # Wherever the turn stands, bob owns the lead and lets it lapse.
        SalesTeam.objects.for_org(acme).filter(pk=east.pk).update(cursor=cursor)
        lead = _hot_lead(acme, live_room, django_capture_on_commit_callbacks, owner=sales_bob.user)
        task = _open_hot_task(acme, lead)
        assert task.context["team"] == east.pk
        lead_sla_sweep(now=task.due_at + timedelta(seconds=1))
        lead.refresh_from_db()
        assert lead.owner_id not in (None, sales_bob.user.pk), cursor


def test_next_member_with_a_single_member_returns_the_lead_to_the_pool(
    acme, east, live_room, sales_bob, django_capture_on_commit_callbacks
):
    team_save(org_id=acme.pk, name="华东组", member_ids=[sales_bob.user.pk], team=east)
    lead = _hot_lead(acme, live_room, django_capture_on_commit_callbacks)
    task = _open_hot_task(acme, lead)
    assert lead_sla_sweep(now=task.due_at + timedelta(seconds=1)) == 1
    lead.refresh_from_db()
    assert lead.owner_id is None
    assert not Task.objects.for_org(acme).filter(contact=lead, lapsed_at__isnull=True).exists()
    assert (
        Notification.objects.for_org(acme)
        .filter(user=sales_bob.user, kind="lead_returned")
        .exists()
    )


def test_pool_returns_the_lead_to_the_pool(
    acme, east, live_room, sales_bob, django_capture_on_commit_callbacks
):
    team_save(
        org_id=acme.pk,
        name="华东组",
        member_ids=list(east.members.values_list("pk", flat=True)),
        team=east,
        lapse_action=LapseAction.POOL,
    )
    lead = _hot_lead(acme, live_room, django_capture_on_commit_callbacks)
    task = _open_hot_task(acme, lead)
    assert lead_sla_sweep(now=task.due_at + timedelta(seconds=1)) == 1
    lead.refresh_from_db()
    assert lead.owner_id is None
    assert _owner_changes(acme, lead)[-1] == ("sla_pool", sales_bob.user.pk, None)


def test_a_lead_someone_worked_on_stays_with_its_owner(
    acme, east, live_room, sales_bob, django_capture_on_commit_callbacks
):
    lead = _hot_lead(acme, live_room, django_capture_on_commit_callbacks)
    task = _open_hot_task(acme, lead)
    lead_update(contact=lead, actor=sales_bob.user, status="contacted")
    assert lead_sla_sweep(now=task.due_at + timedelta(seconds=1)) == 0
    lead.refresh_from_db()
    assert lead.owner_id == sales_bob.user.pk
    assert lead_sla_sweep(now=task.due_at + timedelta(hours=1)) == 0  # lapsed once only


def test_manual_assignment_is_audited_with_its_actor(acme, admin_carol, sales_bob):
    lead = ContactFactory(org=acme)
    response = admin_carol.client().patch(
        f"/api/v1/leads/{lead.pk}", {"owner": sales_bob.user.pk}, format="json"
    )
    assert response.status_code == 200
    audit = AuditLog.objects.for_org(acme).get(action="lead.owner_change")
    assert audit.actor_id == admin_carol.user.pk
    assert audit.detail == {"from": None, "to": sales_bob.user.pk, "reason": "manual"}


def _team(client, **body):
    return client.post("/api/v1/teams", {"name": "华东组", "members": [], **body}, format="json")


def test_the_team_api_takes_and_returns_the_follow_up_rules(acme, admin_carol, sales_bob):
    client = admin_carol.client()
    created = _team(client)
    assert created.status_code == 201, created.json()
    team = created.json()
    assert (team["hot_lead_sla_minutes"], team["lapse_action"]) == (None, "pool")

    body = {
        "name": "华东一组",
        "members": [sales_bob.user.pk],
        "hot_lead_sla_minutes": 15,
        "lapse_action": "next_member",
    }
    updated = client.put(f"/api/v1/teams/{team['id']}", body, format="json").json()
    assert (updated["name"], updated["hot_lead_sla_minutes"], updated["lapse_action"]) == (
        "华东一组",
        15,
        "next_member",
    )
    # A client that does not know the rules keeps them on a PUT; null = the org's SLA.
    kept = client.put(
        f"/api/v1/teams/{team['id']}", {"name": "华东一组", "members": []}, format="json"
    ).json()
    assert (kept["hot_lead_sla_minutes"], kept["lapse_action"]) == (15, "next_member")
    cleared = client.put(
        f"/api/v1/teams/{team['id']}",
        {"name": "华东一组", "members": [], "hot_lead_sla_minutes": None},
        format="json",
    ).json()
    assert cleared["hot_lead_sla_minutes"] is None
    listed = sales_bob.client().get("/api/v1/teams").json()
    assert listed[0]["lapse_action"] == "next_member"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"hot_lead_sla_minutes": -5}, "hot_lead_sla_minutes"),
        ({"hot_lead_sla_minutes": 0}, "hot_lead_sla_minutes"),
        ({"hot_lead_sla_minutes": 10**9}, "hot_lead_sla_minutes"),
        ({"hot_lead_sla_minutes": "soon"}, "hot_lead_sla_minutes"),
        ({"lapse_action": "explode"}, "lapse_action"),
    ],
)
def test_bad_rules_are_a_400_naming_the_field(acme, admin_carol, body, field):
    response = _team(admin_carol.client(), **body)
    assert response.status_code == 400
    payload = response.json()
    assert list(payload["fields"]) == [field] and payload["fields"][field][0]
    assert not SalesTeam.objects.for_org(acme).exists()


def test_the_service_refuses_bad_rules_too(acme):
    with pytest.raises(InvalidTeam) as refused:
        team_save(
            org_id=acme.pk,
            name="x",
            member_ids=[],
            hot_lead_sla_minutes=-1,
            lapse_action="later",
        )
    assert set(refused.value.fields) == {"hot_lead_sla_minutes", "lapse_action"}


def test_sales_read_teams_but_only_admins_change_them(acme, admin_carol, sales_bob):
    team = _team(admin_carol.client()).json()
    body = {"name": "x", "members": [], "lapse_action": "next_member"}
    assert (
        sales_bob.client().put(f"/api/v1/teams/{team['id']}", body, format="json").status_code
        == 403
    )
    assert sales_bob.client().get(f"/api/v1/teams/{team['id']}").status_code == 200


def test_another_organisations_team_is_a_404(acme, admin_carol, outsider_erin):
    team = team_save(org_id=acme.pk, name="华东组", member_ids=[])
    erin = outsider_erin.client()
    body = {"name": "被改", "members": [], "lapse_action": "next_member"}
    assert erin.get(f"/api/v1/teams/{team.pk}").status_code == 404
    assert erin.put(f"/api/v1/teams/{team.pk}", body, format="json").status_code == 404
    assert erin.delete(f"/api/v1/teams/{team.pk}").status_code == 404
    assert (
        erin.post("/api/v1/assignment-rules", {"team": team.pk, "room": 1}, format="json")
    ).status_code == 404
    team.refresh_from_db()
    assert (team.name, team.lapse_action) == ("华东组", "pool")


def test_another_organisations_user_room_or_segment_is_refused(
    acme, admin_carol, outsider_erin, other_org
):
    client = admin_carol.client()
    team = team_save(org_id=acme.pk, name="华东组", member_ids=[])
    response = client.put(
        f"/api/v1/teams/{team.pk}",
        {"name": "华东组", "members": [outsider_erin.user.pk]},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["fields"]["members"] == [str(outsider_erin.user.pk)]

    their_room = RoomFactory(org=other_org)
    their_segment = SegmentFactory(org=other_org)
    for target in ({"room": their_room.pk}, {"segment": their_segment.pk}):
        response = client.post(
            "/api/v1/assignment-rules", {"team": team.pk, **target}, format="json"
        )
        assert response.status_code == 404, target
    assert not team.rules.exists()


def test_admins_edit_an_assignment_rule(acme, admin_carol, host_alice, sales_bob):
    client = admin_carol.client()
    east = team_save(org_id=acme.pk, name="华东组", member_ids=[])
    south = team_save(org_id=acme.pk, name="华南组", member_ids=[])
    room = RoomFactory(org=acme, streamer=host_alice.profile)
    vip = SegmentFactory(org=acme, name="高价值")
    rule = client.post(
        "/api/v1/assignment-rules", {"team": east.pk, "room": room.pk}, format="json"
    ).json()
    assert (rule["team_name"], rule["room"], rule["segment"]) == ("华东组", room.pk, None)

    body = {"team": south.pk, "priority": 5, "room": None, "segment": vip.pk}
    edited = client.put(f"/api/v1/assignment-rules/{rule['id']}", body, format="json")
    assert edited.status_code == 200, edited.json()
    assert client.get("/api/v1/assignment-rules").json() == [
        {
            "id": rule["id"],
            "team": south.pk,
            "priority": 5,
            "room": None,
            "segment": vip.pk,
            "team_name": "华南组",
            "segment_name": "高价值",
        }
    ]
    bad = client.put(
        f"/api/v1/assignment-rules/{rule['id']}", {"team": south.pk, "priority": -1}, format="json"
    )
    assert bad.status_code == 400 and "priority" in bad.json()["fields"]
    assert (
        sales_bob.client()
        .put(f"/api/v1/assignment-rules/{rule['id']}", body, format="json")
        .status_code
        == 403
    )
