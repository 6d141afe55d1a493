"""Reads of one contact as the person themselves reaches it (the viewer's own data)."""

from __future__ import annotations

from crm.models import Contact


def contact_for_viewer(*, org_id: int, contact_id: int) -> Contact | None:
    """The viewer's own contact; None once erased (the token then reaches nothing)."""
    contact = Contact.objects.for_org(org_id).filter(pk=contact_id).first()
    if contact is None or contact.erased_at is not None:
        return None
    return contact
