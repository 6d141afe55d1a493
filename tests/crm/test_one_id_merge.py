"""One-ID: when a new identity meets an existing contact the two merge; nothing is lost and an
admin can undo it."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import models
from django.utils import timezone

from core.models import AuditLog
from crm.models import (
    Consent,
    ConsentEvent,
    Contact,
    ContactIdentity,
    ContactMerge,
    Event,
    Note,
    Task,
)
from crm.services.consent import consent_grant, consent_withdraw
from crm.services.contacts import contact_create_guest, contact_get_or_create_by_identity
from crm.services.identity import contact_references, identity_attach
from crm.services.leads import note_add


@pytest.fixture
def wechat_contact(acme, sales_bob):
    contact, _ = contact_get_or_create_by_identity(
        org=acme,
        kind="openid",
        value="o-wx-1",
        app_id="wxapp",
        defaults={"nickname": "微信用户", "gender": "female"},
    )
    identity_attach(contact=contact, kind="phone", value="13800138000")
    contact.owner = sales_bob.user
    contact.save()
    Event.objects.for_org(acme).create(
        org=acme, contact=contact, type="chat", occurred_at=timezone.now(), props={"text": "hi"}
    )
    consent_withdraw(contact=contact, purpose="sms_marketing", source="sms_reply")
    return contact


def test_a_guest_binding_a_known_phone_merges_into_the_wechat_contact(
    acme, wechat_contact, sales_bob, admin_carol
):
    guest, _ = contact_create_guest(org=acme, guest_id="g-123", nickname="游客")
    guest.city = "杭州"
    guest.tags = ["宝妈"]
    guest.save()
    Event.objects.for_org(acme).create(
        org=acme, contact=guest, type="coupon.claim", occurred_at=timezone.now()
    )
    note_add(contact=guest, author=sales_bob.user, body="游客时留下的备注")
    Task.objects.for_org(acme).create(org=acme, contact=guest, title="回访", due_at=timezone.now())
    consent_grant(contact=guest, purpose="sms_marketing", source="h5_form", evidence={"form": 7})

    survivor = identity_attach(contact=guest, kind="phone", value="+86 138-0013-8000")

    assert survivor.pk == wechat_contact.pk
    guest.refresh_from_db()
    assert guest.merged_into_id == survivor.pk
    # Everything moved: identities (guest id too), events, notes, tasks, the consent ledger.
    assert set(
        ContactIdentity.objects.for_org(acme)
        .filter(contact=survivor)
        .values_list("kind", flat=True)
    ) == {"openid", "phone", "guest"}
    assert set(
        Event.objects.for_org(acme).filter(contact=survivor).values_list("type", flat=True)
    ) == {
        "chat",
        "coupon.claim",
    }
    assert Note.objects.for_org(acme).filter(contact=survivor).count() == 1
    assert Task.objects.for_org(acme).filter(contact=survivor).count() == 1
    assert ConsentEvent.objects.for_org(acme).filter(contact=survivor).count() == 2
    # The latest decision wins: the guest's later grant.
    assert Consent.objects.for_org(acme).get(contact=survivor, purpose="sms_marketing").granted
    # Profile: blanks filled, owner kept, tags united.
    assert (survivor.city, survivor.owner_id, survivor.tags) == (
        "杭州",
        sales_bob.user.pk,
        ["宝妈"],
    )
    merge = ContactMerge.objects.for_org(acme).get()
    assert AuditLog.objects.for_org(acme).filter(action="contact.merge").exists()

    # The absorbed record leaves the pool.
    ids = [r["id"] for r in sales_bob.client().get("/api/v1/leads").json()["results"]]
    assert guest.pk not in ids and survivor.pk in ids

    # An admin undoes it exactly.
    assert sales_bob.client().post(f"/api/v1/merges/{merge.pk}/undo").status_code == 403
    assert admin_carol.client().post(f"/api/v1/merges/{merge.pk}/undo").status_code == 200
    guest.refresh_from_db()
    survivor.refresh_from_db()
    assert guest.merged_into_id is None
    assert Event.objects.for_org(acme).filter(contact=guest).get().type == "coupon.claim"
    assert Note.objects.for_org(acme).filter(contact=guest).count() == 1
    assert ContactIdentity.objects.for_org(acme).filter(contact=guest, kind="guest").exists()
    assert (survivor.city, survivor.tags) == ("", [])
    assert not Consent.objects.for_org(acme).get(contact=survivor, purpose="sms_marketing").granted
    assert Consent.objects.for_org(acme).get(contact=guest, purpose="sms_marketing").granted


def test_every_model_referencing_a_contact_is_covered_by_merges():
    """New models in any app that point at Contact are moved automatically."""
    covered = {(m, f) for m, f in contact_references()}
    for model in apps.get_models():
        for field in model._meta.get_fields():
            if (
                isinstance(field, models.ForeignKey)
                and field.related_model is Contact
                and model is not Contact
                and model is not ContactMerge
            ):
                assert (model, field.attname) in covered, model
