"""The ``db`` backend: one database transaction per claim. It locks the coupon row, bumps
``claimed`` under ``claimed < stock`` and inserts the claim. The embedded default (SQLite)
and the DRF view's path everywhere."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from livecommerce.events import send_room_event_on_commit
from livecommerce.models import Coupon, CouponClaim, claim_code, new_claim_code
from livecommerce.services.coupons.contract import ClaimReceipt, LimitReached, SoldOut, classify
from livecommerce.services.coupons.records import after_claims, clip_of


def db_claim(*, org_id: int, coupon_id: int, contact_id: int, clip_id: int | None):
    now = timezone.now()
    with transaction.atomic():
        coupon = Coupon.objects.for_org(org_id).select_for_update().filter(pk=coupon_id).first()
        mine = (
            CouponClaim.objects.for_org(org_id)
            .filter(coupon_id=coupon_id, contact_id=contact_id)
            .count()
        )
        if (
            coupon is None
            or coupon.released_at is None
            or coupon.valid_until <= now
            or mine >= coupon.per_viewer_limit
            or coupon.claimed >= coupon.stock
        ):
            raise classify(coupon, org_id, mine)
        updated = Coupon.unscoped.filter(pk=coupon_id, claimed__lt=F("stock")).update(
            claimed=F("claimed") + 1
        )
        if not updated:
            raise SoldOut(_("优惠券已抢光"))
        slot = coupon.claimed + 1
        try:
            with transaction.atomic():
                claim = CouponClaim.objects.for_org(org_id).create(
                    org_id=org_id,
                    coupon_id=coupon_id,
                    contact_id=contact_id,
                    nth=mine + 1,
                    slot=slot,
                    code=claim_code(coupon_id, slot, new_claim_code()),
                    claimed_at=now,
                    clip_id=clip_of(org_id, coupon.room_id, clip_id),
                )
        except IntegrityError:
            # A concurrent request of the same viewer won the (coupon, contact, nth) row.
            raise LimitReached(_("已达领取上限")) from None
        after_claims(org_id, [claim])
        remaining = coupon.stock - slot
        send_room_event_on_commit(
            room_id=coupon.room_id,
            type="coupon.stock",
            data={"coupon": coupon_id, "remaining": remaining},
        )
    return ClaimReceipt(coupon_id, contact_id, claim.nth, slot, claim.code, remaining)
