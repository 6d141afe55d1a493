"""Claim rows once written, whatever wrote them: their CRM events and clip attribution, and
the small database reads the async backends make from a worker thread."""

from __future__ import annotations

from django.db import connection
from django.db.models import F

from crm.services.events import EventIn, events_record_batch
from livecommerce.models import Coupon, CouponClaim, ProductClip


def clip_of(org_id: int, room_id: int, clip_id: int | None) -> int | None:
    """``clip_id`` if it is this organisation's clip of the coupon's room, else None."""
    if not clip_id:
        return None
    exists = ProductClip.objects.for_org(org_id).filter(pk=clip_id, room_id=room_id).exists()
    return clip_id if exists else None


def after_claims(org_id: int, claims: list[CouponClaim]) -> None:
    """CRM events and clip attribution for freshly written claims (inside the transaction).

    Set-based whatever the count: one ``events_record_batch`` (an INSERT per 1,000 events,
    keyed so a replay records nothing twice, merged-away and erased people skipped) and one
    re-score task per 2,000 contacts after commit, where recording claim by claim cost a
    statement and a task each: the reconciler then wrote ~400 claims/s against claims
    arriving at 5,000/s (issue #20, docs/bench/coupons.md)."""
    events = [
        _claim_event(
            org_id, claim.coupon, claim.contact_id, claim.nth, claim.claimed_at, claim.clip_id
        )
        for claim in claims
    ]
    events_record_batch(events=events)
    clip_counts: dict[int, int] = {}
    for claim in claims:
        if claim.clip_id:
            clip_counts[claim.clip_id] = clip_counts.get(claim.clip_id, 0) + 1
    for clip_id, count in clip_counts.items():
        ProductClip.objects.for_org(org_id).filter(pk=clip_id).update(claims=F("claims") + count)


def claim_events_record(coupon: Coupon, claims: list[tuple]) -> None:
    """The CRM events of one coupon's freshly followed-up claims ``(contact, nth, claimed_at,
    clip)`` in one ``events_record_batch`` (the reconciler's set-based path: the same events
    ``after_claims`` records, without loading a model instance per claim)."""
    events_record_batch(
        events=[
            _claim_event(coupon.org_id, coupon, contact_id, nth, claimed_at, clip_id)
            for contact_id, nth, claimed_at, clip_id in claims
        ]
    )


def _claim_event(org_id: int, coupon: Coupon, contact_id, nth, claimed_at, clip_id) -> EventIn:
    """One claim's ``coupon.claim`` CRM event, keyed by its coupon, contact and nth so a
    replayed batch records nothing twice (the one shape both follow-up paths record)."""
    return EventIn(
        org_id=org_id,
        contact_id=contact_id,
        type="coupon.claim",
        props={"coupon": coupon.pk, "name": coupon.name, "clip": clip_id},
        room_id=coupon.room_id,
        occurred_at=claimed_at,
        key=f"coupon.claim:{coupon.pk}:{contact_id}:{nth}",
    )


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
