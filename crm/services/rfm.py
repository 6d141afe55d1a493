"""RFM and lifecycle stage, derived from a contact's order events only."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Count, Max, Sum
from django.utils import timezone

from crm.models import Contact, Event, Lifecycle


def _band(x: float, cuts: tuple) -> int:
    """1..5: how many of the ascending ``cuts`` x reaches, plus one."""
    return 1 + sum(1 for c in cuts if x >= c)


def rfm_of(*, count: int, amount: float, last: datetime | None, now: datetime) -> tuple[str, str]:
    """(rfm code like "545", lifecycle stage)."""
    if not count or last is None:
        return "", Lifecycle.PROSPECT
    days = (now - last).days
    recency = 6 - _band(days, (8, 31, 91, 181))  # ≤7 days → 5 … > 180 days → 1
    frequency = _band(count, (2, 3, 5, 10))
    monetary = _band(amount, (300, 1000, 2000, 5000))
    if days > 180:
        stage = Lifecycle.LAPSED
    elif days > 90:
        stage = Lifecycle.AT_RISK
    elif count == 1:
        stage = Lifecycle.NEW_CUSTOMER
    else:
        stage = Lifecycle.ACTIVE
    return f"{recency}{frequency}{monetary}", stage


def contact_update_rfm(*, contact: Contact, now: datetime | None = None) -> None:
    """Recompute order count, amount, last order, RFM and lifecycle from the event log."""
    now = now or timezone.now()
    agg = (
        Event.objects.for_org(contact.org_id)
        .filter(contact_id=contact.pk, type="order")
        .aggregate(n=Count("id"), amount=Sum("value"), last=Max("occurred_at"))
    )
    rfm, stage = rfm_of(count=agg["n"], amount=agg["amount"] or 0, last=agg["last"], now=now)
    fields = {
        "order_count": agg["n"],
        "order_amount": float(agg["amount"] or 0),
        "last_order_at": agg["last"],
        "rfm": rfm,
        "lifecycle": stage,
    }
    Contact.objects.for_org(contact.org_id).filter(pk=contact.pk).update(**fields)
    for name, value in fields.items():
        setattr(contact, name, value)


def lifecycle_sweep(now: datetime | None = None) -> int:
    """Age recency: customers whose last order crossed a boundary since the last sweep."""
    now = now or timezone.now()
    stale = Contact.unscoped.filter(
        last_order_at__isnull=False, last_order_at__lt=now - timedelta(days=7)
    ).only("id", "org_id", "rfm", "lifecycle", "order_count", "order_amount", "last_order_at")
    changed = 0
    for contact in stale.iterator(chunk_size=2000):
        rfm, stage = rfm_of(
            count=contact.order_count,
            amount=contact.order_amount,
            last=contact.last_order_at,
            now=now,
        )
        if (rfm, stage) != (contact.rfm, contact.lifecycle):
            Contact.unscoped.filter(pk=contact.pk).update(rfm=rfm, lifecycle=stage)
            changed += 1
    return changed
