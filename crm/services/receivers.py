"""Wiring: what the crm does after an event commits and after a lead changes grade."""

from __future__ import annotations

from core.tasks import enqueue
from crm.models import Contact
from crm.services.events import on_event_recorded
from crm.services.scoring import contact_rescore, on_grade_changed


@on_event_recorded
def _after_event(event) -> None:
    # Off the caller's path (a coupon claim must not wait for scoring); within seconds.
    from crm.tasks import contact_after_event_task

    enqueue(contact_after_event_task, event.contact_id, event.type, event.org_id)


def contact_after_event(*, contact_id: int, event_type: str, org_id: int | None = None) -> None:
    """RFM/lifecycle for orders, then the per-contact re-score (which reads the contact, its
    consents and events in one query: the hot path of every event)."""
    if event_type == "order" or org_id is None:
        contact = Contact.unscoped.filter(pk=contact_id).first()
        if contact is None:
            return
        if event_type == "order":
            from crm.services.rfm import contact_update_rfm

            contact_update_rfm(contact=contact)
        org_id = contact.org_id
    contact_rescore(org_id=org_id, contact_id=contact_id, reason=event_type)


@on_grade_changed
def _route_hot_lead(contact, old_grade: str, new_grade: str) -> None:
    from crm.services.leads import hot_lead_route

    hot_lead_route(contact=contact, old_grade=old_grade, new_grade=new_grade)
