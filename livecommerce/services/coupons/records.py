"""Claim rows once written, whatever wrote them: their CRM events and clip attribution, and
the small database reads the async backends make from a worker thread."""

from __future__ import annotations

from django.db import connection
from django.db.models import F

from crm.models import Contact
from crm.services.events import event_record
from livecommerce.models import Coupon, CouponClaim, ProductClip


def clip_of(org_id: int, room_id: int, clip_id: int | None) -> int | None:
    """``clip_id`` if it is this organisation's clip of the coupon's room, else None."""
    if not clip_id:
        return None
    exists = ProductClip.objects.for_org(org_id).filter(pk=clip_id, room_id=room_id).exists()
    return clip_id if exists else None


def after_claims(org_id: int, claims: list[CouponClaim]) -> None:
    """CRM events and clip attribution for freshly written claims (inside the transaction)."""
    contacts = Contact.objects.for_org(org_id).in_bulk({c.contact_id for c in claims})
    clip_counts: dict[int, int] = {}
    for claim in claims:
        contact = contacts.get(claim.contact_id)
        if contact is None:
            continue
        coupon = claim.coupon
        event_record(
            contact=contact,
            type="coupon.claim",
            props={"coupon": claim.coupon_id, "name": coupon.name, "clip": claim.clip_id},
            room_id=coupon.room_id,
            occurred_at=claim.claimed_at,
            key=f"coupon.claim:{claim.coupon_id}:{claim.contact_id}:{claim.nth}",
        )
        if claim.clip_id:
            clip_counts[claim.clip_id] = clip_counts.get(claim.clip_id, 0) + 1
    for clip_id, count in clip_counts.items():
        ProductClip.objects.for_org(org_id).filter(pk=clip_id).update(claims=F("claims") + count)


def off_request(fn):
    """Run a database read from an async path's worker thread and hand the connection back
    (no request cycle will close it there)."""
    try:
        return fn()
    finally:
        if not connection.in_atomic_block:
            connection.close()


def coupon_or_none(coupon_id: int) -> Coupon | None:
    return off_request(lambda: Coupon.unscoped.filter(pk=coupon_id).first())
