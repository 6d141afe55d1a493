"""Coupon batches: create and release into a room, redeem a claimed coupon."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import Conflict, DomainError, NotFound
from core.models import Membership
from crm.services.events import event_record
from livecommerce.events import send_room_event_on_commit
from livecommerce.models import Coupon, CouponClaim, CouponKind, ProductClip, Room, RoomStatus
from livecommerce.services.coupons.backends.redis import redis_load
from livecommerce.services.coupons.contract import Expired, backend
from livecommerce.services.coupons.stock import coupon_card
from livecommerce.services.rooms import ensure_can_manage_room


def coupon_create(
    *,
    membership: Membership,
    room: Room,
    name: str,
    kind: str,
    amount: Decimal,
    threshold: Decimal = Decimal(0),
    stock: int,
    per_viewer_limit: int = 1,
    valid_until: datetime,
) -> Coupon:
    """A coupon batch for a room the caller manages. Not visible to viewers until released."""
    ensure_can_manage_room(membership=membership, room=room)
    errors: dict[str, list[str]] = {}
    if kind == CouponKind.DISCOUNT and not (Decimal("0.1") <= amount < Decimal(10)):
        errors["amount"] = [_("折扣应在 0.1 到 9.9 折之间")]
    if kind == CouponKind.THRESHOLD and threshold <= amount:
        errors["threshold"] = [_("满减门槛必须大于减免金额")]
    if valid_until <= timezone.now():
        errors["valid_until"] = [_("有效期必须晚于现在")]
    if room.status == RoomStatus.ENDED:
        raise Conflict(_("直播已结束"), code="room_ended")
    if errors:
        raise DomainError(_("优惠券参数有误"), fields=errors)
    return Coupon.objects.for_org(room.org_id).create(
        org_id=room.org_id,
        room=room,
        name=name,
        kind=kind,
        amount=amount,
        threshold=threshold if kind == CouponKind.THRESHOLD else Decimal(0),
        stock=stock,
        per_viewer_limit=per_viewer_limit,
        valid_until=valid_until,
    )


def coupon_release(*, membership: Membership, coupon: Coupon) -> Coupon:
    """Release a coupon into its room: viewers see it pop up and may claim it."""
    ensure_can_manage_room(membership=membership, room=coupon.room)
    with transaction.atomic():
        coupon = Coupon.unscoped.select_for_update().get(pk=coupon.pk)
        if coupon.released_at is not None:
            return coupon
        if coupon.valid_until <= timezone.now():
            raise Expired(_("优惠券已过期"))
        coupon.released_at = timezone.now()
        coupon.save(update_fields=["released_at", "updated_at"])
        send_room_event_on_commit(
            room_id=coupon.room_id, type="coupon.released", data={"coupon": coupon_card(coupon)}
        )
    if backend() == "redis":
        transaction.on_commit(lambda: redis_load(coupon))
    return coupon


def coupon_redeem(
    *, org_id: int, code: str, via: str = "code", order_ref: str = "", props: dict | None = None
) -> CouponClaim:
    """Redeem a claimed coupon by its verification code (till or order callback). Idempotent
    for the same order; a second, different redemption is a 409."""
    with transaction.atomic():
        claim = (
            CouponClaim.objects.for_org(org_id)
            .select_for_update()
            .select_related("coupon", "contact")
            .filter(code=code)
            .first()
        )
        if claim is None:
            raise NotFound(_("核销码不存在"), fields={"code": [_("核销码不存在")]})
        if claim.redeemed_at is not None:
            if order_ref and claim.order_ref == order_ref:
                return claim
            raise Conflict(_("该券已核销"), code="already_redeemed")
        if claim.coupon.valid_until <= timezone.now():
            raise Expired(_("优惠券已过期"))
        claim.redeemed_at = timezone.now()
        claim.redeemed_via = via
        claim.order_ref = order_ref
        claim.save(update_fields=["redeemed_at", "redeemed_via", "order_ref", "updated_at"])
        event_record(
            contact=claim.contact,
            type="coupon.redeem",
            props={"coupon": claim.coupon_id, "order": order_ref, **(props or {})},
            room_id=claim.coupon.room_id,
            key=f"coupon.redeem:{claim.pk}",
        )
        if claim.clip_id and order_ref:
            ProductClip.unscoped.filter(pk=claim.clip_id).update(orders=F("orders") + 1)
    return claim
