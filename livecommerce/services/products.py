"""Room product list and the "now explaining" pin; every pin span becomes a replay clip."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import Conflict
from core.models import Membership
from crm.services.events import event_record
from livecommerce.events import send_room_event_on_commit
from livecommerce.models import Product, ProductClip, Room, RoomProduct, RoomStatus
from livecommerce.services.room_access import ensure_can_manage_room


def product_card(product: Product, *, clip_id: int | None = None) -> dict:
    """What viewers see of a product (the ``product.pinned`` payload)."""
    return {
        "id": product.pk,
        "name": product.name,
        "price": str(product.price),
        "original_price": str(product.original_price) if product.original_price else None,
        "image": product.image.url if product.image else "",
        "link_url": product.link_url,
        "mp_path": product.mp_path,
        "clip": clip_id,
    }


def room_product_add(*, membership: Membership, room: Room, product: Product) -> RoomProduct:
    """Append a catalog product to the room's list (idempotent)."""
    ensure_can_manage_room(membership=membership, room=room)
    existing = RoomProduct.objects.for_org(room.org_id).filter(room=room, product=product).first()
    if existing:
        return existing
    position = (
        RoomProduct.objects.for_org(room.org_id).filter(room=room).aggregate(m=Max("position"))["m"]
        or 0
    ) + 1
    try:
        with transaction.atomic():
            return RoomProduct.objects.for_org(room.org_id).create(
                org_id=room.org_id, room=room, product=product, position=position
            )
    except IntegrityError:
        return RoomProduct.objects.for_org(room.org_id).get(room=room, product=product)


def _offset(room: Room, at) -> int:
    if room.started_at is None:
        return 0
    return max(int((at - room.started_at).total_seconds()), 0)


def _close_open_clip(room: Room, now) -> None:
    clip = ProductClip.objects.for_org(room.org_id).filter(room=room, unpinned_at=None).first()
    if clip is not None:
        clip.unpinned_at = now
        clip.end_s = max(_offset(room, now), clip.start_s)
        clip.save(update_fields=["unpinned_at", "end_s", "updated_at"])


def room_product_pin(
    *, membership: Membership, room: Room, product: Product, pinned: bool = True
) -> RoomProduct:
    """Pin (讲解中) one product, unpinning the previous one; ``pinned=False`` unpins it.

    While the room is live each pin opens a clip span (offsets from stream start) and the
    next pin/unpin or the end of the room closes it.
    """
    ensure_can_manage_room(membership=membership, room=room)
    if room.status == RoomStatus.ENDED:
        raise Conflict(_("直播已结束"), code="room_ended")
    now = timezone.now()
    with transaction.atomic():
        room = Room.unscoped.select_for_update().get(pk=room.pk)
        item = (
            RoomProduct.objects.for_org(room.org_id)
            .select_for_update()
            .filter(room=room, product=product)
            .first()
        )
        if item is None:
            raise Conflict(_("请先把商品加入直播间"), code="product_not_in_room")
        if pinned and item.is_pinned:
            return item
        RoomProduct.objects.for_org(room.org_id).filter(room=room, is_pinned=True).update(
            is_pinned=False
        )
        _close_open_clip(room, now)
        clip_id = None
        if pinned:
            item.is_pinned = True
            item.save(update_fields=["is_pinned", "updated_at"])
            if room.status == RoomStatus.LIVE:
                clip_id = (
                    ProductClip.objects.for_org(room.org_id)
                    .create(
                        org_id=room.org_id,
                        room=room,
                        product=product,
                        pinned_at=now,
                        start_s=_offset(room, now),
                    )
                    .pk
                )
        else:
            item.is_pinned = False
        send_room_event_on_commit(
            room_id=room.pk,
            type="product.pinned",
            data={"product": product_card(product, clip_id=clip_id) if pinned else None},
        )
    return item


def clips_close_for_room(*, room: Room) -> None:
    """Called when a room ends: the open span (if any) ends with the broadcast."""
    _close_open_clip(room, room.ended_at or timezone.now())
    RoomProduct.objects.for_org(room.org_id).filter(room=room, is_pinned=True).update(
        is_pinned=False
    )


def product_click(*, contact, product: Product, room: Room | None, clip_id: int | None) -> None:
    """A viewer opened a product's link: CRM event and clip attribution."""
    event_record(
        contact=contact,
        type="product.click",
        props={"product": product.pk, "name": product.name, "clip": clip_id},
        room_id=room.pk if room else None,
    )
    if clip_id:
        ProductClip.objects.for_org(contact.org_id).filter(pk=clip_id).update(
            clicks=F("clicks") + 1
        )
