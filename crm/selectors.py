"""Reads for the crm app: consent state, segments, the lead pool."""

from __future__ import annotations

from django.db.models import QuerySet

from crm.conditions import contact_matches, contacts_matching
from crm.models import CONSENT_DEFAULTS, Consent, ConsentPurpose, Contact, Segment


def consent_granted(contact: Contact, purpose: str) -> bool:
    """Current consent for one purpose (profiling defaults to granted until refused)."""
    granted = (
        Consent.objects.for_org(contact.org_id)
        .filter(contact_id=contact.pk, purpose=purpose)
        .values_list("granted", flat=True)
        .first()
    )
    return CONSENT_DEFAULTS.get(purpose, False) if granted is None else granted


def consent_states(contact: Contact) -> dict[str, dict]:
    """Every purpose with its state, source and time (for the lead detail)."""
    rows = {
        c.purpose: c for c in Consent.objects.for_org(contact.org_id).filter(contact_id=contact.pk)
    }
    out = {}
    for purpose in ConsentPurpose.values:
        row = rows.get(purpose)
        out[purpose] = {
            "granted": row.granted if row else CONSENT_DEFAULTS.get(purpose, False),
            "source": row.source if row else "default" if purpose in CONSENT_DEFAULTS else "",
            "updated_at": row.updated_at if row else None,
        }
    return out


def segment_contacts(segment: Segment) -> QuerySet:
    """The segment's members, compiled to SQL (live: evaluated now)."""
    return contacts_matching(segment.org_id, segment.condition)


def segment_contains(segment: Segment, contact: Contact) -> bool:
    """Whether one contact is in the segment (same semantics as segment_contacts)."""
    if contact.org_id != segment.org_id:
        return False
    return contact_matches(contact, segment.condition)
