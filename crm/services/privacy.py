"""Personal data (PIPL): reveal with audit, masked export with audit, erasure everywhere,
encryption-key rotation."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable

from django.db import models, transaction
from django.utils import timezone

from core.errors import Forbidden
from core.models import AuditLog, Membership
from crm import pii
from crm.models import (
    Consent,
    ConsentEvent,
    Contact,
    ContactIdentity,
    IdentityKind,
    Note,
    ScoreHistory,
    Task,
)

# Other apps' erasure hooks: fn(contact) scrubs what they keep about the person.
_erasers: list[Callable[[Contact], None]] = []


def register_contact_eraser(fn: Callable[[Contact], None]) -> Callable[[Contact], None]:
    """Register ``fn(contact)`` to erase an app's personal data of a contact (chat text,
    delivery phone numbers…); called inside the erasure transaction."""
    _erasers.append(fn)
    return fn


def phones_of(contact_ids: Iterable[int]) -> dict[int, str]:
    """contact id → decrypted phone (first phone identity)."""
    out: dict[int, str] = {}
    rows = ContactIdentity.unscoped.filter(
        contact_id__in=list(contact_ids), kind=IdentityKind.PHONE
    ).order_by("id")
    for contact_id, token in rows.values_list("contact_id", "value_encrypted"):
        out.setdefault(contact_id, pii.decrypt(token))
    return out


def phone_for_viewer(
    *, contact: Contact, phone: str, membership: Membership | None, ip: str | None = None
) -> str:
    """The phone as this staff member may see it: full (and audited) when the role may
    reveal personal data, masked otherwise."""
    if not phone:
        return ""
    if membership is None or not membership.may_reveal_pii:
        return pii.mask_phone(phone)
    AuditLog.objects.for_org(contact.org_id).create(
        org_id=contact.org_id,
        actor_id=membership.user_id,
        action="pii.reveal",
        target_type="contact",
        target_id=str(contact.pk),
        detail={"field": "phone"},
        ip=ip,
    )
    return phone


EXPORT_COLUMNS = [
    "id",
    "nickname",
    "phone",
    "gender",
    "birth_year",
    "province",
    "city",
    "income_level",
    "tags",
    "score",
    "grade",
    "status",
    "owner",
    "source",
    "lifecycle",
    "rfm",
]


def leads_export_csv(
    *,
    contacts: models.QuerySet,
    membership: Membership,
    ip: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    out=None,
) -> str:
    """CSV of the given leads, written to ``out`` (a text stream; returned as a string when
    None), 2,000 leads at a time; phones masked unless the role may reveal them. One audit
    row per export (who, how many, masked or not)."""
    reveal = membership.may_reveal_pii
    total = contacts.count()
    buffered = out is None
    out = io.StringIO() if buffered else out
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    done = 0
    batch: list[Contact] = []

    def flush() -> None:
        nonlocal done
        phones = phones_of(c.pk for c in batch)
        for c in batch:
            phone = phones.get(c.pk, "")
            writer.writerow(
                [
                    c.pk,
                    _csv_safe(c.nickname),
                    phone if reveal else pii.mask_phone(phone) if phone else "",
                    c.gender,
                    c.birth_year or "",
                    _csv_safe(c.province),
                    _csv_safe(c.city),
                    c.income_level,
                    _csv_safe("|".join(c.tags or [])),
                    "" if c.score is None else c.score,
                    c.grade,
                    c.status,
                    c.owner.username if c.owner_id else "",
                    c.source,
                    c.lifecycle,
                    c.rfm,
                ]
            )
        done += len(batch)
        batch.clear()
        if progress:
            progress(done, total)

    for contact in contacts.select_related("owner").iterator(chunk_size=2000):
        batch.append(contact)
        if len(batch) >= 2000:
            flush()
    flush()
    AuditLog.objects.for_org(membership.org_id).create(
        org_id=membership.org_id,
        actor_id=membership.user_id,
        action="leads.export",
        target_type="contact",
        target_id="",
        detail={"rows": total, "phones": "revealed" if reveal else "masked"},
        ip=ip,
    )
    return out.getvalue() if buffered else ""


def _csv_safe(text: str) -> str:
    """Neutralise spreadsheet formulas (CSV injection)."""
    text = text or ""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def contact_erase(*, contact: Contact, actor=None, membership: Membership | None = None) -> None:
    """Erase a person's personal data everywhere (PIPL deletion request). What stays is
    anonymous: the contact row with no attribute, identity, note or consent, and its events
    without their properties (so counts stay right)."""
    if membership is not None and membership.role not in ("admin",):
        raise Forbidden("only an admin may erase personal data")
    from crm.models import ContactMerge, Event

    with transaction.atomic():
        # A merged-away tombstone of the same person is erased with it.
        tombstones = list(
            Contact.objects.for_org(contact.org_id)
            .filter(merged_into=contact)
            .values_list("pk", flat=True)
        )
        ids = [contact.pk, *tombstones]
        ContactIdentity.objects.for_org(contact.org_id).filter(contact_id__in=ids).delete()
        Note.objects.for_org(contact.org_id).filter(contact_id__in=ids).delete()
        Consent.objects.for_org(contact.org_id).filter(contact_id__in=ids).delete()
        ConsentEvent.objects.for_org(contact.org_id).filter(contact_id__in=ids).delete()
        Task.objects.for_org(contact.org_id).filter(contact_id__in=ids).delete()
        ScoreHistory.objects.for_org(contact.org_id).filter(contact_id__in=ids).delete()
        ContactMerge.objects.for_org(contact.org_id).filter(survivor_id__in=ids).update(
            survivor_before={}, moved={}
        )
        Event.objects.for_org(contact.org_id).filter(contact_id__in=ids).update(props={}, key=None)
        from crm.models import Notification

        Notification.objects.for_org(contact.org_id).filter(data__contact__in=ids).delete()
        now = timezone.now()
        Contact.objects.for_org(contact.org_id).filter(pk__in=ids).update(
            nickname="",
            avatar_url="",
            gender="unknown",
            birth_year=None,
            province="",
            city="",
            income_level="",
            tags=[],
            source_detail={},
            owner=None,
            score=None,
            grade="",
            score_breakdown={},
            erased_at=now,
        )
        _scrub_other_apps(ids)
        for fn in _erasers:
            for pk in ids:
                fn(Contact.unscoped.get(pk=pk))
        AuditLog.objects.for_org(contact.org_id).create(
            org_id=contact.org_id,
            actor=actor,
            action="contact.erase",
            target_type="contact",
            target_id=str(contact.pk),
            detail={"contacts": ids},
        )


CRM_HANDLED = {
    "crm.ContactIdentity",
    "crm.Note",
    "crm.Consent",
    "crm.ConsentEvent",
    "crm.Task",
    "crm.ScoreHistory",
    "crm.ContactMerge",
    "crm.Event",
    "crm.Notification",
}


def _scrub_other_apps(ids: list[int]) -> None:
    """Every other model pointing at the person (chat messages, restrictions, deliveries…):
    free text, device ids, IPs and JSON on their rows are blanked; choice fields, numbers and
    relations stay (anonymous counts). An app needing more registers an eraser."""
    from crm.services.identity import contact_references

    for model, attname in contact_references():
        if model._meta.label in CRM_HANDLED or model is Contact:
            continue
        updates = {}
        for f in model._meta.concrete_fields:
            if f.primary_key or f.is_relation or f.choices or f.attname == attname:
                continue
            if isinstance(f, models.GenericIPAddressField):
                if f.null:
                    updates[f.attname] = None
            elif isinstance(f, models.CharField | models.TextField):
                updates[f.attname] = None if f.null else ""
            elif isinstance(f, models.JSONField):
                updates[f.attname] = f.get_default() if f.has_default() else None
        if updates:
            manager = getattr(model, "unscoped", model._default_manager)
            manager.filter(**{f"{attname}__in": ids}).update(**updates)


def rotate_pii_keys() -> tuple[int, int]:
    """Re-encrypt every identity under the newest key (PII_ENCRYPTION_KEYS[0]). Returns
    (rotated, unreadable): unreadable tokens were encrypted under a key no longer configured
    and are left untouched (put the old key back, then rotate again)."""
    from cryptography.fernet import InvalidToken

    rotated = unreadable = 0
    for identity in ContactIdentity.unscoped.only("id", "value_encrypted").iterator(
        chunk_size=1000
    ):
        try:
            new = pii.rotate(identity.value_encrypted)
        except InvalidToken:
            unreadable += 1
            continue
        if new != identity.value_encrypted:
            ContactIdentity.unscoped.filter(pk=identity.pk).update(value_encrypted=new)
            rotated += 1
    return rotated, unreadable
