"""PIPL: phones encrypted at rest, masked by role, reveals and exports audited, erasure leaves
no trace."""

from __future__ import annotations

import pytest
from django.utils import timezone

from core import pii
from core.models import AuditLog
from crm.models import Contact, ContactIdentity, Event
from crm.services.consent import consent_grant
from crm.services.contacts import contact_get_or_create_by_identity
from crm.services.identity import identity_attach
from crm.services.leads import note_add
from tests.support.personal_data import where_found

PHONE = "13812345678"


@pytest.fixture
def lead(acme):
    contact, _ = contact_get_or_create_by_identity(
        org=acme,
        kind="phone",
        value=PHONE,
        defaults={"nickname": "独一无二的昵称", "city": "苏州", "birth_year": 1990},
    )
    return contact


def test_phones_are_encrypted_at_rest(lead, acme):
    row = ContactIdentity.objects.for_org(acme).get(contact=lead)
    assert PHONE not in row.value_encrypted and PHONE not in row.value_hash
    assert pii.decrypt(row.value_encrypted) == PHONE


def test_sales_see_a_masked_phone_and_admins_reveal_it_with_an_audit_row(
    lead, acme, sales_bob, admin_carol
):
    body = sales_bob.client().get(f"/api/v1/leads/{lead.pk}").json()
    assert body["phone"] == "138****5678"
    assert not AuditLog.objects.for_org(acme).filter(action="pii.reveal").exists()

    body = admin_carol.client().get(f"/api/v1/leads/{lead.pk}").json()
    assert body["phone"] == PHONE
    audit = AuditLog.objects.for_org(acme).get(action="pii.reveal")
    assert (audit.actor_id, audit.target_id) == (admin_carol.user.pk, str(lead.pk))

    # The list always masks.
    rows = admin_carol.client().get("/api/v1/leads").json()["results"]
    assert rows[0]["phone"] == "138****5678"


def test_a_sales_member_with_the_reveal_permission_sees_it(lead, acme, sales_bob):
    sales_bob.membership.can_reveal_pii = True
    sales_bob.membership.save()
    assert sales_bob.client().get(f"/api/v1/leads/{lead.pk}").json()["phone"] == PHONE


# Masked, audited exports: tests/crm/test_lead_jobs.py (exports run as background jobs).


def test_lookup_by_any_identity(lead, sales_bob):
    rows = sales_bob.client().get(f"/api/v1/leads?identity={PHONE}").json()["results"]
    assert [r["id"] for r in rows] == [lead.pk]


def test_erasure_leaves_no_personal_data_in_any_table(
    lead, acme, admin_carol, sales_bob, host_alice
):
    from livecommerce.models.chat import ChatMessage
    from tests.factories import RoomFactory

    room = RoomFactory(org=acme, streamer=host_alice.profile)
    ChatMessage.unscoped.create(
        org=acme,
        room=room,
        contact=lead,
        nickname="独一无二的昵称",
        text="独一无二：我想要链接",
        device="dev-独一无二",
        ip="10.9.8.7",
    )
    identity_attach(contact=lead, kind="openid", value="o-secret-openid", app_id="wxapp")
    note_add(contact=lead, author=sales_bob.user, body="客户说住在独一无二的小区")
    consent_grant(contact=lead, purpose="sms_marketing", source="h5", evidence={"ip": "10.9.8.7"})
    Event.objects.for_org(acme).create(
        org=acme,
        contact=lead,
        type="chat",
        occurred_at=timezone.now(),
        props={"text": "我的电话是13812345678"},
        key="chat-独一无二",
    )
    secrets = [
        PHONE,
        "独一无二",
        "o-secret-openid",
        "10.9.8.7",
        pii.lookup_hash("phone", PHONE),
        pii.lookup_hash("openid", "o-secret-openid"),
    ]
    before = where_found(secrets)
    # (the openid itself is only stored encrypted; its hash is there)
    assert [s for s in secrets if s not in before] == ["o-secret-openid"]

    assert sales_bob.client().post(f"/api/v1/leads/{lead.pk}/erase").status_code == 403
    assert admin_carol.client().post(f"/api/v1/leads/{lead.pk}/erase").status_code == 204

    assert where_found([*secrets, "苏州"]) == {}
    # Anonymous counts survive.
    assert Event.objects.for_org(acme).filter(contact=lead, type="chat").count() == 1
    assert ChatMessage.unscoped.filter(contact=lead).count() == 1
    assert AuditLog.objects.for_org(acme).filter(action="contact.erase").exists()


def test_key_rotation_re_encrypts_under_the_newest_key(acme, settings):
    from cryptography.fernet import Fernet
    from django.core.management import call_command

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    try:
        settings.PII_ENCRYPTION_KEYS = [old]
        pii._fernet.cache_clear()
        contact = Contact.objects.for_org(acme).create(org=acme)
        identity_attach(contact=contact, kind="openid", value="o-rotate-me", app_id="wx")
        settings.PII_ENCRYPTION_KEYS = [new, old]
        pii._fernet.cache_clear()
        call_command("rotate_pii_keys")
        settings.PII_ENCRYPTION_KEYS = [new]
        pii._fernet.cache_clear()
        row = ContactIdentity.objects.for_org(acme).get(kind="openid")
        assert pii.decrypt(row.value_encrypted) == "o-rotate-me"
    finally:
        pii._fernet.cache_clear()
