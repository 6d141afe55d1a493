"""Grade changes: the listeners other apps register (``on_grade_changed``, declared here
for the apps above crm) and how a change is announced — the owner's real-time hint and the
listeners, after commit."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction

from core.staff_events import send_staff_event_on_commit
from crm.models import Contact

log = logging.getLogger(__name__)

_grade_listeners: list[Callable] = []


def on_grade_changed(fn: Callable) -> Callable:
    """Register ``fn(contact, old_grade, new_grade)``, called after commit whenever the
    per-contact path (``contact_rescore``, ``contacts_rescore``) moves a lead to another
    grade, and — from background batches after each
    chunk commits — whenever a bulk re-score lifts a lead into a higher grade."""
    _grade_listeners.append(fn)
    return fn


def grade_changed_emit(contact: Contact, old_grade: str, new_grade: str) -> None:
    if contact.owner_id:
        send_staff_event_on_commit(
            org_id=contact.org_id,
            user_id=contact.owner_id,
            type="lead.grade_changed",
            data={"contact": contact.pk, "old_grade": old_grade, "grade": new_grade},
        )

    def fire() -> None:
        for fn in list(_grade_listeners):
            try:
                fn(contact, old_grade, new_grade)
            except Exception:
                log.exception("grade listener %r failed for contact %s", fn, contact.pk)

    transaction.on_commit(fire)


def grade_changes_notify(*, org_id: int, changes: list[list]) -> int:
    """Call the grade listeners (hot-lead routing, journeys, the owner's real-time hint) for a
    batch of ``[contact_id, old_grade, new_grade]`` from a bulk re-score. A lead that moved
    again since (another event, merged, erased) is skipped: its own change speaks for it.
    Returns how many were notified."""
    wanted = {int(cid): (old, new) for cid, old, new in changes}
    contacts = Contact.objects.for_org(org_id).filter(
        pk__in=wanted, merged_into__isnull=True, erased_at__isnull=True
    )
    notified = 0
    for contact in contacts:
        old, new = wanted[contact.pk]
        if contact.grade == new:
            grade_changed_emit(contact, old, new)
            notified += 1
    return notified
