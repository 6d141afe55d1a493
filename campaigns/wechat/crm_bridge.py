"""The CRM calls the WeChat code makes, in one place.

``crm.services.identity`` (One-ID merge) comes from the CRM issue; until it is on this
branch ``identity_attach`` keeps two contacts apart instead of merging them (documented
below), so nothing else in the WeChat code changes when it lands.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction

from crm import pii
from crm.models import Contact, ContactIdentity, IdentityKind
from crm.services.consent import consent_grant
from crm.services.contacts import contact_find_by_identity, contact_get_or_create_by_identity
from crm.services.events import event_record


def contact_for_openid(
    *,
    org,
    appid: str,
    openid: str,
    unionid: str = "",
    source: str,
    source_detail: dict | None = None,
    profile: dict | None = None,
) -> tuple[Contact, bool]:
    """The contact of this openid (found by unionid first when WeChat gave one), created
    with the given first-touch source when nobody holds either identity."""
    defaults = {"source": source, "source_detail": source_detail or {}, **(profile or {})}
    if unionid:
        by_union = contact_find_by_identity(org=org, kind=IdentityKind.UNIONID, value=unionid)
        by_openid = contact_find_by_identity(
            org=org, kind=IdentityKind.OPENID, value=openid, app_id=appid
        )
        if by_union is not None and by_openid is None:
            identity_attach(contact=by_union, kind=IdentityKind.OPENID, value=openid, app_id=appid)
            return by_union, False
        contact, created = contact_get_or_create_by_identity(
            org=org, kind=IdentityKind.OPENID, value=openid, app_id=appid, defaults=defaults
        )
        identity_attach(contact=contact, kind=IdentityKind.UNIONID, value=unionid)
        return contact, created
    return contact_get_or_create_by_identity(
        org=org, kind=IdentityKind.OPENID, value=openid, app_id=appid, defaults=defaults
    )


def identity_attach(*, contact: Contact, kind: str, value: str, app_id: str = "") -> Contact:
    """Give ``contact`` another identity. When another contact already holds it, the two are
    the same person: One-ID merges them (``crm.services.identity``). Returns the surviving
    contact."""
    try:
        from crm.services.identity import identity_attach as crm_identity_attach
    except ImportError:
        crm_identity_attach = None
    if crm_identity_attach is not None:
        return crm_identity_attach(contact=contact, kind=kind, value=value, app_id=app_id)
    # Until One-ID lands: attach when free; when another contact holds it, that one wins.
    try:
        with transaction.atomic():
            ContactIdentity.objects.for_org(contact.org_id).create(
                org_id=contact.org_id,
                contact=contact,
                kind=kind,
                app_id=app_id,
                value_hash=pii.lookup_hash(kind, value),
                value_encrypted=pii.encrypt(value),
            )
    except IntegrityError:
        holder = contact_find_by_identity(org=contact.org, kind=kind, value=value, app_id=app_id)
        del holder  # kept apart until One-ID can merge them
        return contact
    return contact


def record_event(
    *,
    contact: Contact,
    type: str,
    props: dict,
    occurred_at: datetime | None = None,
    room_id: int | None = None,
    key: str | None = None,
):
    return event_record(
        contact=contact, type=type, props=props, occurred_at=occurred_at, room_id=room_id, key=key
    )


def grant_consent(*, contact: Contact, purpose: str, source: str, evidence: dict) -> None:
    """Record a consent in the CRM ledger."""
    consent_grant(contact=contact, purpose=purpose, source=source, evidence=evidence)


def accept_invite(*, invitee: Contact, code: str, room_id: int | None, device: str) -> None:
    """Credit the inviter (share graph, fraud signals: ``livecommerce.services.invites``)."""
    if not code:
        return
    from livecommerce.services.invites import invite_accept

    invite_accept(invitee=invitee, code=code, room_id=room_id, device=device)
