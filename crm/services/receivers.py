"""Wiring: what the crm does after an event commits and after a lead changes grade."""

from __future__ import annotations

from core.tasks import enqueue
from crm.models import Contact
from crm.services.events import on_event_recorded, on_events_recorded
from crm.services.leads import hot_lead_route
from crm.services.rfm import contact_update_rfm
from crm.services.scoring import contact_rescore, contacts_rescore, on_grade_changed

# Contacts per background task of a recorded batch (ids and a type each in the message).
AFTER_EVENTS_BATCH = 2_000


@on_event_recorded
def _after_event(event) -> None:
    # Off the caller's path (a coupon claim must not wait for scoring); within seconds.

    enqueue("crm.contact_after_event", event.contact_id, event.type, event.org_id)


def contact_after_event(*, contact_id: int, event_type: str, org_id: int | None = None) -> None:
    """RFM/lifecycle for orders, then the per-contact re-score (which reads the contact, its
    consents and events in one query: the hot path of every event)."""
    if event_type == "order" or org_id is None:
        contact = Contact.unscoped.filter(pk=contact_id).first()
        if contact is None:
            return
        if event_type == "order":
            contact_update_rfm(contact=contact)
        org_id = contact.org_id
    contact_rescore(org_id=org_id, contact_id=contact_id, reason=event_type)


@on_events_recorded(instead_of=_after_event)
def _after_events(events) -> None:
    # A batch (events_record_batch): one task per organisation and AFTER_EVENTS_BATCH
    # contacts instead of one per event. Per contact: its first new event's type (the reason
    # the per-event path's first re-score records — that one already sees the whole batch,
    # so the later ones change nothing) and whether an order follows it (RFM, re-score).

    per_org: dict[int, dict[int, list]] = {}
    for event in events:
        contacts = per_org.setdefault(event.org_id, {})
        if event.contact_id in contacts:
            contacts[event.contact_id][2] |= event.type == "order"
        else:
            contacts[event.contact_id] = [event.contact_id, event.type, False]
    for org_id, contacts in per_org.items():
        rows = list(contacts.values())
        for start in range(0, len(rows), AFTER_EVENTS_BATCH):
            enqueue("crm.contacts_after_events", org_id, rows[start : start + AFTER_EVENTS_BATCH])


def contacts_after_events(*, org_id: int, contacts: list[list]) -> int:
    """What ``contact_after_event`` does for each event of a recorded batch, once per contact:
    ``contacts`` are ``[contact_id, first event type, an order followed]`` in batch order.
    RFM before the re-score for a first event that is an order; the re-score of all of them
    set-based (``contacts_rescore``, reason = the first event's type); then for a later order
    RFM and a re-score with reason ``order``. Returns how many scores changed."""

    def rfm(ids: list[int]) -> None:
        if ids:
            for contact in Contact.objects.for_org(org_id).filter(pk__in=ids).order_by("id"):
                contact_update_rfm(contact=contact)

    rfm([cid for cid, first, _later in contacts if first == "order"])
    changed = contacts_rescore(
        org_id=org_id, reasons={int(cid): first for cid, first, _later in contacts}
    )
    later = [int(cid) for cid, first, order_later in contacts if order_later and first != "order"]
    rfm(later)
    for cid in later:
        changed += contact_rescore(org_id=org_id, contact_id=cid, reason="order")
    return changed


@on_grade_changed
def _route_hot_lead(contact, old_grade: str, new_grade: str) -> None:
    hot_lead_route(contact=contact, old_grade=old_grade, new_grade=new_grade)
