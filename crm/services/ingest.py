"""External events (orders from the mall…) posted with an organisation integration token."""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import datetime

from django.utils import timezone

from core.errors import DomainError
from crm.models import Contact, IdentityKind, IntegrationToken, Source
from crm.services.contacts import contact_get_or_create_by_identity
from crm.services.events import event_record
from crm.services.identity import identity_normalise

TOKEN_PREFIX = "qmi_"  # noqa: S105 - a public prefix, not a secret


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def integration_token_create(*, org_id: int, name: str) -> tuple[IntegrationToken, str]:
    """A new token; the raw secret is returned once and only its hash is stored."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = IntegrationToken.objects.for_org(org_id).create(
        org_id=org_id, name=name, token_hash=_hash(raw), prefix=raw[:10]
    )
    return token, raw


def integration_token_verify(raw: str) -> IntegrationToken | None:
    if not raw.startswith(TOKEN_PREFIX):
        return None
    token = (
        IntegrationToken.unscoped.select_related("org")
        .filter(token_hash=_hash(raw), is_active=True, org__is_active=True)
        .first()
    )
    if token is not None:
        IntegrationToken.unscoped.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token


def external_event_ingest(
    *,
    token: IntegrationToken,
    contact: dict,
    type: str,
    props: dict,
    occurred_at: datetime | None,
    key: str | None = None,
) -> tuple[Contact, bool]:
    """Record one external event for the contact holding the given identity (created as a
    lead from the API when unknown). Idempotent: the same ``key`` — or, without one, the same
    body — is recorded once. Returns (contact, recorded)."""
    kinds = [
        k for k in (IdentityKind.PHONE, IdentityKind.UNIONID, IdentityKind.OPENID) if contact.get(k)
    ]
    if not kinds:
        raise DomainError(
            "contact needs phone, unionid or openid", fields={"contact": ["phone|openid|unionid"]}
        )
    kind = kinds[0]
    value = identity_normalise(kind, str(contact[kind]))
    app_id = str(contact.get("app_id", "")) if kind == IdentityKind.OPENID else ""
    person, _ = contact_get_or_create_by_identity(
        org=token.org, kind=kind, value=value, app_id=app_id, defaults={"source": Source.API}
    )
    while person.merged_into_id:
        person = person.merged_into
    if key is None:
        body = json.dumps(
            [kind, value, type, props, occurred_at.isoformat() if occurred_at else None],
            sort_keys=True,
            ensure_ascii=False,
        )
        key = hashlib.sha256(body.encode()).hexdigest()[:40]
    event = event_record(
        contact=person,
        type=type,
        props=props,
        occurred_at=occurred_at or timezone.now(),
        key=f"ext:{token.pk}:{key}"[:128],
        external=True,
    )
    return person, event is not None
