"""The viewer's own consents (privacy notice self-service): read, withdraw, give back."""

import pytest

from crm.models import ConsentEvent
from crm.selectors import consent_granted

pytestmark = pytest.mark.django_db


def test_a_viewer_sees_and_withdraws_their_own_consents_with_evidence(viewer_dan):
    client = viewer_dan.client()
    rows = {row["purpose"]: row for row in client.get("/api/v1/viewer/consents").json()}
    assert rows["profiling"]["granted"] is True  # under the notice until refused
    assert rows["sms_marketing"]["granted"] is False  # opt-in only
    assert rows["profiling"]["label"] == "画像与评分"

    response = client.post(
        "/api/v1/viewer/consents",
        {"purpose": "profiling", "granted": False},
        format="json",
        HTTP_USER_AGENT="Mozilla/5.0 test",
    )
    assert response.status_code == 200
    assert {r["purpose"]: r["granted"] for r in response.json()}["profiling"] is False
    assert consent_granted(viewer_dan.contact, "profiling") is False
    event = ConsentEvent.objects.for_org(viewer_dan.contact.org_id).get()
    assert event.action == "withdraw" and event.source == "viewer_privacy_page"
    assert event.evidence["notice"] and event.evidence["user_agent"] == "Mozilla/5.0 test"

    client.post(
        "/api/v1/viewer/consents", {"purpose": "sms_marketing", "granted": True}, format="json"
    )
    assert consent_granted(viewer_dan.contact, "sms_marketing") is True


def test_staff_and_strangers_cannot_use_the_viewer_consent_api(host_alice, anon):
    assert host_alice.client().get("/api/v1/viewer/consents").status_code in (401, 403)
    assert anon.get("/api/v1/viewer/consents").status_code in (401, 403)


def test_an_unknown_purpose_is_a_field_error(viewer_dan):
    response = viewer_dan.client().post(
        "/api/v1/viewer/consents", {"purpose": "spam", "granted": True}, format="json"
    )
    assert response.status_code == 400 and "purpose" in response.json()["fields"]


def test_the_privacy_page_names_the_organisation(client, acme):
    page = client.get("/live/privacy/?org=acme").content.decode()
    assert "个人信息保护说明" in page and "Acme 品牌" in page
    assert client.get("/live/privacy/?org=nope").status_code == 404


def test_a_viewer_exports_their_data_and_then_erases_it(viewer_dan):
    from crm.models import Contact

    client = viewer_dan.client()
    exported = client.get("/api/v1/viewer/export")
    assert exported.status_code == 200
    assert exported["Content-Disposition"].startswith('attachment; filename="my-data-')
    body = exported.json()
    assert body["contact"] == viewer_dan.contact.pk
    assert any(row.get("nickname") == "Dan" for row in body["tables"]["crm.Contact"])

    assert client.post("/api/v1/viewer/erase", {"confirm": False}, format="json").status_code == 400
    erased = client.post("/api/v1/viewer/erase", {"confirm": True}, format="json")
    assert erased.status_code == 200 and erased.json() == {"erased": True}
    assert Contact.unscoped.get(pk=viewer_dan.contact.pk).erased_at is not None
    # The same token reaches nothing any more.
    assert client.get("/api/v1/viewer/consents").status_code == 404
    assert client.get("/api/v1/viewer/export").status_code == 404
