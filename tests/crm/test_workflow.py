"""Sales workflow: hot-lead routing during a live room, the pool sweep, assignment, notes,
tasks, segments, external events, CSV import, consent."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from crm.demo import seed_scoring_model
from crm.models import Consent, ConsentEvent, Contact, Event, Notification, Task
from crm.services.events import event_record
from crm.services.ingest import integration_token_create
from crm.services.leads import lead_sla_sweep
from tests.factories import RoomFactory


@pytest.fixture
def scored_org(acme):
    seed_scoring_model(acme)
    return acme


def test_a_lead_reaching_grade_a_during_a_live_room_is_routed_at_once(
    scored_org, acme, host_alice, sales_bob, django_capture_on_commit_callbacks
):
    room = RoomFactory(org=acme, streamer=host_alice.profile, status="live")
    year = timezone.now().year
    lead = Contact.objects.for_org(acme).create(
        org=acme, nickname="热线索", gender="female", birth_year=year - 28, income_level="high"
    )
    with django_capture_on_commit_callbacks(execute=True):
        event_record(contact=lead, type="product.click", room_id=room.pk, props={"name": "精华液"})
        event_record(contact=lead, type="chat", room_id=room.pk, props={"text": "敏感肌能用吗？"})
    with django_capture_on_commit_callbacks(execute=True):
        event_record(
            contact=lead, type="coupon.claim", room_id=room.pk, props={"name": "满199减30"}
        )
    lead.refresh_from_db()
    assert lead.score == 75 and lead.grade == "B"
    with django_capture_on_commit_callbacks(execute=True):
        event_record(contact=lead, type="order", room_id=room.pk, props={"amount": 199})
    lead.refresh_from_db()
    assert (lead.grade, lead.owner_id) == ("A", sales_bob.user.pk)
    assert (lead.order_count, lead.lifecycle) == (1, "new_customer")
    task = Task.objects.for_org(acme).get(contact=lead, kind="hot_lead")
    assert task.assignee_id == sales_bob.user.pk and task.returns_to_pool
    assert task.context["products_clicked"] == ["精华液"]
    assert task.context["coupons_claimed"] == ["满199减30"]
    assert task.context["questions"] == ["敏感肌能用吗？"]
    note = Notification.objects.for_org(acme).get(user=sales_bob.user, kind="hot_lead")
    assert note.data["contact"] == lead.pk
    feed = sales_bob.client().get("/api/v1/notifications").json()
    assert feed[0]["kind"] == "hot_lead"

    # Unattended past the SLA → back to the pool (公海).
    assert lead_sla_sweep(now=task.due_at + timedelta(seconds=1)) == 1
    lead.refresh_from_db()
    assert lead.owner_id is None
    assert Notification.objects.for_org(acme).filter(kind="lead_returned").exists()


def test_no_routing_when_no_room_is_live(
    scored_org, acme, sales_bob, django_capture_on_commit_callbacks
):
    year = timezone.now().year
    lead = Contact.objects.for_org(acme).create(
        org=acme, gender="female", birth_year=year - 28, income_level="high"
    )
    with django_capture_on_commit_callbacks(execute=True):
        event_record(contact=lead, type="order", props={"amount": 10})
    lead.refresh_from_db()
    assert lead.grade == "A" and lead.owner_id is None
    assert not Task.objects.for_org(acme).exists()


def test_attended_leads_stay_with_their_owner(acme, sales_bob):
    lead = Contact.objects.for_org(acme).create(org=acme, owner=sales_bob.user, status="contacted")
    Task.objects.for_org(acme).create(
        org=acme,
        contact=lead,
        assignee=sales_bob.user,
        title="x",
        due_at=timezone.now() - timedelta(minutes=1),
        returns_to_pool=True,
    )
    assert lead_sla_sweep() == 0
    lead.refresh_from_db()
    assert lead.owner_id == sales_bob.user.pk


def test_workflow_through_the_api(acme, sales_bob, admin_carol):
    a = Contact.objects.for_org(acme).create(org=acme, nickname="甲")
    b = Contact.objects.for_org(acme).create(org=acme, nickname="乙")
    client = sales_bob.client()
    response = client.post(
        "/api/v1/leads/assign", {"leads": [a.pk, b.pk], "mode": "round_robin"}, format="json"
    )
    assert response.json() == {"assigned": 2}
    a.refresh_from_db()
    assert a.owner_id == sales_bob.user.pk  # the only sales member
    response = client.patch(
        f"/api/v1/leads/{a.pk}", {"status": "contacted", "tags": ["高意向"]}, format="json"
    )
    assert (response.json()["status"], response.json()["tags"]) == ("contacted", ["高意向"])
    assert (
        client.patch(f"/api/v1/leads/{a.pk}", {"status": "nope"}, format="json").status_code == 400
    )
    assert (
        client.post(f"/api/v1/leads/{a.pk}/notes", {"body": "已加微信"}, format="json").status_code
        == 201
    )
    due = (timezone.now() + timedelta(days=1)).isoformat()
    task = client.post(
        f"/api/v1/leads/{a.pk}/tasks", {"title": "回访", "due_at": due}, format="json"
    ).json()
    assert task["assignee"] == sales_bob.user.pk
    assert client.get("/api/v1/tasks").json()["results"][0]["id"] == task["id"]
    assert client.post(f"/api/v1/tasks/{task['id']}/complete").json()["done_at"]
    detail = client.get(f"/api/v1/leads/{a.pk}").json()
    assert detail["notes"][0]["body"] == "已加微信"
    # The round-robin assignment is on the lead's timeline, with who did it.
    owner_changes = [item for item in detail["timeline"] if item["kind"] == "owner"]
    assert [(o["from"], o["to"], o["reason"], o["actor"]) for o in owner_changes] == [
        ("", sales_bob.user.username, "round_robin", sales_bob.user.username)
    ]
    assert [
        r["id"] for r in client.get("/api/v1/leads?owner=me&status=contacted").json()["results"]
    ] == [a.pk]
    assert (
        client.patch(f"/api/v1/leads/{a.pk}", {"owner": 999999}, format="json").status_code == 400
    )


def test_consent_grant_and_withdrawal_are_ledgered(acme, sales_bob):
    lead = Contact.objects.for_org(acme).create(org=acme)
    client = sales_bob.client()
    body = client.get(f"/api/v1/leads/{lead.pk}").json()
    assert body["consents"]["sms_marketing"]["granted"] is False  # opt-in
    assert body["consents"]["profiling"]["granted"] is True  # under the privacy notice
    for action in ("grant", "withdraw"):
        response = client.post(
            f"/api/v1/leads/{lead.pk}/consents",
            {
                "purpose": "sms_marketing",
                "action": action,
                "source": "phone_call",
                "evidence": {"call_id": "c-1"},
            },
            format="json",
        )
        assert response.status_code == 200
    assert not Consent.objects.for_org(acme).get(contact=lead).granted
    ledger = list(
        ConsentEvent.objects.for_org(acme).filter(contact=lead).values_list("action", flat=True)
    )
    assert ledger == ["grant", "withdraw"]
    response = client.post(
        f"/api/v1/leads/{lead.pk}/consents",
        {"purpose": "spam", "action": "grant", "source": "x"},
        format="json",
    )
    assert response.status_code == 400


def test_segments_preview_and_live_count(acme, sales_bob):
    for i in range(3):
        Contact.objects.for_org(acme).create(
            org=acme, gender="female", city="上海", nickname=f"f{i}"
        )
    Contact.objects.for_org(acme).create(org=acme, gender="male", city="上海")
    client = sales_bob.client()
    condition = {
        "all": [
            {"field": "gender", "op": "eq", "value": "female"},
            {"field": "city", "op": "in", "value": ["上海"]},
        ]
    }
    assert (
        client.post("/api/v1/segments/preview", {"condition": condition}, format="json").json()[
            "count"
        ]
        == 3
    )
    segment = client.post(
        "/api/v1/segments", {"name": "上海女性", "condition": condition}, format="json"
    ).json()
    preview = client.get(f"/api/v1/segments/{segment['id']}/preview").json()
    assert preview["count"] == 3 and len(preview["sample"]) == 3
    rows = client.get(f"/api/v1/leads?segment={segment['id']}").json()["results"]
    assert len(rows) == 3


def test_external_orders_with_an_integration_token_are_idempotent(
    acme, sales_bob, django_capture_on_commit_callbacks
):
    _token, raw = integration_token_create(org_id=acme.pk, name="商城")
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    body = {
        "contact": {"phone": "13900001111"},
        "type": "order",
        "props": {"amount": 299, "order_id": "M-1"},
        "occurred_at": timezone.now().isoformat(),
    }
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post("/api/v1/events", body, format="json")
    assert first.status_code == 201
    again = client.post("/api/v1/events", body, format="json")
    assert again.status_code == 200 and again.json() == {**first.json(), "recorded": False}
    contact = Contact.objects.for_org(acme).get(pk=first.json()["contact_id"])
    assert Event.objects.for_org(acme).filter(contact=contact, type="order").count() == 1
    contact.refresh_from_db()
    assert contact.order_amount == 299
    bad = client.post("/api/v1/events", {**body, "type": "hack"}, format="json")
    assert bad.status_code == 400
    assert client.post("/api/v1/events", {**body, "contact": {}}, format="json").status_code == 400
    # Staff tokens and forged tokens are refused.
    assert sales_bob.client().post("/api/v1/events", body, format="json").status_code in (401, 403)
    forged = APIClient()
    forged.credentials(HTTP_AUTHORIZATION="Token qmi_forged")
    assert forged.post("/api/v1/events", body, format="json").status_code == 401


def test_csv_import_records_consent_with_its_source(
    acme, sales_bob, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = str(tmp_path)
    csv_text = (
        "nickname,phone,gender,birth_year,city,tags,sms_marketing\n"
        "王小美,13700001234,女,1995,上海,护肤|宝妈,是\n"
        "坏行,12345,女,,,,\n"
    )
    client = sales_bob.client()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/leads/import", {"csv": csv_text, "consent_source": "门店登记表"}, format="json"
        )
    assert response.status_code == 202
    body = client.get(f"/api/v1/leads/jobs/{response.json()['id']}").json()
    assert (body["created"], body["error_count"]) == (1, 1)
    assert (body["errors"][0]["row"], body["errors"][0]["field"]) == (3, "phone")
    contact = Contact.objects.for_org(acme).get(nickname="王小美")
    assert sorted(contact.tags) == sorted(["护肤", "宝妈"]) and contact.gender == "female"
    event = ConsentEvent.objects.for_org(acme).get(contact=contact)
    assert (event.purpose, event.source) == ("sms_marketing", "门店登记表")


def test_the_lead_list_costs_a_fixed_number_of_queries(
    acme, sales_bob, django_assert_max_num_queries
):
    for i in range(30):
        Contact.objects.for_org(acme).create(org=acme, nickname=f"l{i}", owner=sales_bob.user)
    client = sales_bob.client()
    with django_assert_max_num_queries(6):
        response = client.get("/api/v1/leads?page_size=30")
    assert len(response.json()["results"]) == 30
