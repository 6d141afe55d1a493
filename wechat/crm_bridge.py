"""The CRM calls the WeChat code makes, in one place: contacts by openid/unionid, One-ID
merges (``crm.services.identity``), the event log, the consent ledger, the invite graph."""

from __future__ import annotations

from datetime import datetime

from crm.models import Contact, IdentityKind
from crm.services.consent import consent_grant
from crm.services.contacts import contact_find_by_identity, contact_get_or_create_by_identity
from crm.services.events import event_record
from crm.services.identity import identity_attach as crm_identity_attach
from livecommerce.services.invites import invite_accept


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
        # Another contact holding the unionid is the same person: One-ID merges them.
        survivor = identity_attach(contact=contact, kind=IdentityKind.UNIONID, value=unionid)
        return survivor, created and survivor.pk == contact.pk
    return contact_get_or_create_by_identity(
        org=org, kind=IdentityKind.OPENID, value=openid, app_id=appid, defaults=defaults
    )


def identity_attach(*, contact: Contact, kind: str, value: str, app_id: str = "") -> Contact:
    """Give ``contact`` another identity. When another contact already holds it, the two are
    the same person and One-ID merges them (``crm.services.identity``). Returns the surviving
    contact."""
    return crm_identity_attach(contact=contact, kind=kind, value=value, app_id=app_id)


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

    invite_accept(invitee=invitee, code=code, room_id=room_id, device=device)
