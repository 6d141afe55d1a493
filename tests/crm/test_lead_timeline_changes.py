"""Every owner, status and consent change of a lead is on its timeline, as the workspace's
lead detail (GET /api/v1/leads/{id}) returns it."""

from __future__ import annotations

from crm.models import Contact
from crm.services.consent import consent_grant, consent_withdraw


def test_owner_status_and_consent_changes_are_all_on_the_leads_timeline(
    acme, sales_bob, admin_carol
):
    lead = Contact.objects.for_org(acme).create(org=acme, nickname="小林")
    bob, carol = sales_bob.client(), admin_carol.client()
    url = f"/api/v1/leads/{lead.pk}"
    assert bob.patch(url, {"owner": sales_bob.user.pk}, format="json").status_code == 200
    assert bob.patch(url, {"status": "contacted"}, format="json").status_code == 200
    assert carol.patch(url, {"status": "won", "owner": None}, format="json").status_code == 200
    # Saving the same status again is no change and adds nothing.
    assert carol.patch(url, {"status": "won"}, format="json").status_code == 200
    consent_grant(contact=lead, purpose="sms_marketing", source="门店登记表")
    consent_withdraw(contact=lead, purpose="sms_marketing", source="短信退订")

    timeline = bob.get(url).json()["timeline"]
    statuses = [(i["from"], i["to"], i["actor"]) for i in timeline if i["kind"] == "status"]
    assert statuses == [("contacted", "won", "carol"), ("new", "contacted", "bob")]
    owners = [(i["from"], i["to"], i["actor"]) for i in timeline if i["kind"] == "owner"]
    assert owners == [("bob", "", "carol"), ("", "bob", "bob")]
    consents = [(i["type"], i["source"]) for i in timeline if i["kind"] == "consent"]
    assert consents == [("consent.withdraw", "短信退订"), ("consent.grant", "门店登记表")]
