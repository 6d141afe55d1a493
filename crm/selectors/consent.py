"""Reads of consent: one purpose's current state, every purpose's state."""

from __future__ import annotations

from crm.models import CONSENT_DEFAULTS, Consent, ConsentPurpose, Contact


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
