"""The consent ledger: every grant and withdrawal is an append-only ConsentEvent, and the
current state per purpose is kept in Consent for set-based SQL (segments, campaign planning)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from core.errors import DomainError
from crm.models import Consent, ConsentAction, ConsentEvent, ConsentPurpose, Contact
from crm.services.scoring import contact_rescore


class UnknownPurpose(DomainError):
    code = "unknown_purpose"


def _record(
    *, contact: Contact, purpose: str, granted: bool, source: str, evidence: dict | None
) -> ConsentEvent:
    if purpose not in ConsentPurpose.values:
        raise UnknownPurpose(f"unknown consent purpose '{purpose}'", fields={"purpose": [purpose]})
    now = timezone.now()
    with transaction.atomic():
        event = ConsentEvent.objects.for_org(contact.org_id).create(
            org_id=contact.org_id,
            contact=contact,
            purpose=purpose,
            action=ConsentAction.GRANT if granted else ConsentAction.WITHDRAW,
            source=source[:64],
            evidence=evidence or {},
            at=now,
        )
        Consent.objects.for_org(contact.org_id).update_or_create(
            contact=contact,
            purpose=purpose,
            defaults={"org_id": contact.org_id, "granted": granted, "source": source[:64]},
        )
        if purpose == ConsentPurpose.PROFILING:
            # Refusing profiling removes the score at once; granting it back re-scores.

            contact_rescore(contact=contact, reason="consent")
    return event


def consent_grant(
    *, contact: Contact, purpose: str, source: str, evidence: dict | None = None
) -> ConsentEvent:
    """Record an explicit grant (opt-in) for ``purpose`` with where it came from and proof
    (form id, IP, message text, import file…)."""
    return _record(contact=contact, purpose=purpose, granted=True, source=source, evidence=evidence)


def consent_withdraw(
    *, contact: Contact, purpose: str, source: str, evidence: dict | None = None
) -> ConsentEvent:
    """Record a withdrawal: as easy as the grant, effective for every later send or score."""
    return _record(
        contact=contact, purpose=purpose, granted=False, source=source, evidence=evidence
    )


def consent_set(
    *, contact: Contact, purpose: str, granted: bool, source: str, evidence: dict | None = None
) -> ConsentEvent:
    """Record a grant (``granted``) or a withdrawal, as staff record either on a lead."""
    record = consent_grant if granted else consent_withdraw
    return record(contact=contact, purpose=purpose, source=source, evidence=evidence)
