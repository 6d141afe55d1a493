"""The lead-scoring flow through the API, exactly as the demo model (docs/crm.md, "Demo")."""

from __future__ import annotations

import pytest
from django.utils import timezone

from crm.demo import DEMO_RULES
from crm.models import Contact
from crm.services.events import event_record


@pytest.fixture
def demo_rules(admin_carol):
    client = admin_carol.client()
    for name, points, condition in DEMO_RULES:
        response = client.post(
            "/api/v1/scoring-rules",
            {"name": name, "points": points, "condition": condition},
            format="json",
        )
        assert response.status_code == 201, response.json()
    return client


def _lead(client, contact):
    response = client.get(f"/api/v1/leads/{contact.pk}")
    assert response.status_code == 200
    return response.json()


def test_scores_follow_the_demo_model_end_to_end(
    acme, demo_rules, admin_carol, sales_bob, django_capture_on_commit_callbacks
):
    year = timezone.now().year
    lead = Contact.objects.for_org(acme).create(
        org=acme, nickname="小雨", gender="female", birth_year=year - 30, income_level="high"
    )
    # Attributes → score: 女性 20 + 25–35岁 30 + 高收入 15.
    assert demo_rules.post("/api/v1/leads/rescore").json()["state"] == "done"
    body = _lead(sales_bob.client(), lead)
    assert (body["score"], body["grade"]) == (65, "B")
    assert {r["name"]: r["points"] for r in body["score_breakdown"]} == {
        "女性": 20,
        "25–35岁": 30,
        "高收入": 15,
    }

    # A coupon claim → +10 within seconds (the per-event path, no bulk re-score).
    with django_capture_on_commit_callbacks(execute=True):
        event_record(contact=lead, type="coupon.claim", props={"coupon": 1}, room_id=None)
    body = _lead(sales_bob.client(), lead)
    assert body["score"] == 75
    assert sum(r["points"] for r in body["score_breakdown"]) == body["score"]
    assert any(item["type"] == "coupon.claim" for item in body["timeline"])

    # A new rule + bulk re-score moves the lead into grade A.
    response = demo_rules.post(
        "/api/v1/scoring-rules",
        {
            "name": "上海/杭州",
            "points": 10,
            "condition": {"field": "city", "op": "in", "value": ["上海", "杭州"]},
        },
        format="json",
    )
    assert response.status_code == 201
    Contact.objects.for_org(acme).filter(pk=lead.pk).update(city="上海")
    result = demo_rules.post("/api/v1/leads/rescore").json()
    assert result["changed"] == 1
    body = _lead(sales_bob.client(), lead)
    assert (body["score"], body["grade"]) == (85, "A")
    assert sum(r["points"] for r in body["score_breakdown"]) == 85

    listed = sales_bob.client().get("/api/v1/leads?grade=A&ordering=-score").json()
    assert [row["id"] for row in listed["results"]] == [lead.pk]


def test_an_unknown_op_is_a_400_naming_it(demo_rules):
    response = demo_rules.post(
        "/api/v1/scoring-rules",
        {
            "name": "x",
            "points": 5,
            "condition": {
                "all": [
                    {"field": "gender", "op": "eq", "value": "female"},
                    {"field": "age", "op": "around", "value": 30},
                ]
            },
        },
        format="json",
    )
    assert response.status_code == 400
    body = response.json()
    assert "all[1].op" in body["message"] and "around" in body["message"]

    response = demo_rules.post(
        "/api/v1/segments",
        {"name": "x", "condition": {"field": "shoe_size", "op": "eq", "value": 1}},
        format="json",
    )
    assert response.status_code == 400
    assert "shoe_size" in str(response.json()["fields"])


def test_only_admins_change_rules(sales_bob, demo_rules):
    response = sales_bob.client().post(
        "/api/v1/scoring-rules",
        {"name": "x", "points": 5, "condition": {"field": "gender", "op": "eq", "value": "male"}},
        format="json",
    )
    assert response.status_code == 403
    assert sales_bob.client().post("/api/v1/leads/rescore").status_code == 403


def test_other_organisations_never_see_a_lead(acme, sales_bob, outsider_erin):
    lead = Contact.objects.for_org(acme).create(org=acme, nickname="私有线索")
    erin = outsider_erin.client()
    assert erin.get(f"/api/v1/leads/{lead.pk}").status_code == 404
    assert (
        erin.patch(f"/api/v1/leads/{lead.pk}", {"status": "won"}, format="json").status_code == 404
    )
    assert (
        erin.post(f"/api/v1/leads/{lead.pk}/notes", {"body": "x"}, format="json").status_code == 404
    )
    assert lead.pk not in [r["id"] for r in erin.get("/api/v1/leads").json()["results"]]
    assert sales_bob.client().get(f"/api/v1/leads/{lead.pk}").status_code == 200
