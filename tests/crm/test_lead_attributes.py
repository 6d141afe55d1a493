"""Lead attributes through PATCH /api/v1/leads/{id}: gender, age (or birth year), province,
city and custom attributes; role rules, an audit entry naming the fields, an immediate
re-score explained on the lead's timeline (the demo scoring flow, docs/crm.md "Demo")."""

import pytest

from core.models import AuditLog
from crm.demo import seed_scoring_model
from crm.services.events import event_record
from crm.services.scoring import contact_rescore
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer_lead(acme):
    seed_scoring_model(acme)
    contact = ContactFactory(org=acme, nickname="新观众", gender="unknown", birth_year=None)
    event_record(contact=contact, type="coupon.claim", props={})  # 领券: 10
    contact_rescore(contact=contact)
    contact.refresh_from_db()
    assert contact.score == 10
    return contact


def test_demo_flow_gender_age_city_rescore_at_once_and_show_on_the_timeline(viewer_lead, sales_bob):
    response = sales_bob.client().patch(
        f"/api/v1/leads/{viewer_lead.pk}",
        {"gender": "female", "age": 30, "city": "上海"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    lead = response.json()
    assert (lead["gender"], lead["age"], lead["city"]) == ("female", 30, "上海")
    assert lead["score"] == 60 and lead["grade"] == "B"  # 10 + 女性 20 + 25–35岁 30
    rules = {row["name"] for row in lead["score_breakdown"]}
    assert {"女性", "25–35岁", "领券"} <= rules
    score, profile = lead["timeline"][0], lead["timeline"][1]
    assert score["kind"] == "score" and score["reason"] == "profile"
    assert (score["old_score"], score["score"]) == (10, 60)
    assert profile["kind"] == "profile" and profile["actor"] == "bob"
    assert sorted(profile["fields"]) == ["birth_year", "city", "gender"]
    audit = AuditLog.objects.for_org(viewer_lead.org_id).get(action="lead.profile_change")
    assert audit.actor == sales_bob.user
    assert audit.detail == {"fields": profile["fields"]}  # names only, never the values


def test_custom_attributes_merge_and_null_removes(viewer_lead, admin_carol):
    client = admin_carol.client()
    url = f"/api/v1/leads/{viewer_lead.pk}"
    client.patch(url, {"attributes": {"肤质": "干性", "预算": "300"}}, format="json")
    response = client.patch(url, {"attributes": {"预算": None, "渠道": "朋友圈"}}, format="json")
    assert response.status_code == 200
    assert response.json()["attributes"] == {"肤质": "干性", "渠道": "朋友圈"}
    too_long = client.patch(url, {"attributes": {"x" * 33: "1"}}, format="json")
    assert too_long.status_code == 400 and "attributes" in too_long.json()["fields"]


def test_same_values_change_nothing_and_age_with_birth_year_is_refused(viewer_lead, sales_bob):
    client = sales_bob.client()
    url = f"/api/v1/leads/{viewer_lead.pk}"
    client.patch(url, {"city": "上海"}, format="json")
    client.patch(url, {"city": "上海"}, format="json")
    assert (
        AuditLog.objects.for_org(viewer_lead.org_id).filter(action="lead.profile_change").count()
        == 1
    )
    both = client.patch(url, {"age": 30, "birth_year": 1990}, format="json")
    assert both.status_code == 400 and "age" in both.json()["fields"]


def test_sales_edit_only_their_own_or_pool_leads_admin_any(
    viewer_lead, sales_bob, admin_carol, acme
):
    from tests.conftest import _staff

    other_sales = _staff(acme, "dave", "sales")
    viewer_lead.owner = other_sales.user
    viewer_lead.save(update_fields=["owner"])
    url = f"/api/v1/leads/{viewer_lead.pk}"
    refused = sales_bob.client().patch(url, {"city": "北京"}, format="json")
    assert refused.status_code == 403
    viewer_lead.refresh_from_db()
    assert viewer_lead.city != "北京"
    assert other_sales.client().patch(url, {"city": "北京"}, format="json").status_code == 200
    assert admin_carol.client().patch(url, {"city": "杭州"}, format="json").status_code == 200


def test_outsiders_never_reach_the_lead(viewer_lead, outsider_erin):
    response = outsider_erin.client().patch(
        f"/api/v1/leads/{viewer_lead.pk}", {"city": "北京"}, format="json"
    )
    assert response.status_code == 404


def test_the_detail_says_whether_the_caller_may_edit_the_profile(
    viewer_lead, sales_bob, admin_carol, acme
):
    from tests.conftest import _staff

    url = f"/api/v1/leads/{viewer_lead.pk}"
    assert sales_bob.client().get(url).json()["profile_editable"] is True  # a pool lead
    other_sales = _staff(acme, "dave", "sales")
    viewer_lead.owner = other_sales.user
    viewer_lead.save(update_fields=["owner"])
    assert sales_bob.client().get(url).json()["profile_editable"] is False
    assert admin_carol.client().get(url).json()["profile_editable"] is True
