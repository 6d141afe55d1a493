from __future__ import annotations

from django.db.models import Q, QuerySet
from django.utils import timezone

from core.models import Membership, Role
from crm.models import Contact, ContactIdentity, IdentityKind
from livecommerce import media
from livecommerce.models import (
    ChatRestriction,
    Coupon,
    Follow,
    Product,
    ProductClip,
    Replay,
    Reservation,
    RestrictionKind,
    Room,
    RoomProduct,
)
from livecommerce.services.coupons import coupon_card, coupon_remaining
from livecommerce.services.products import product_card


def room_list_for_staff(*, membership: Membership) -> QuerySet[Room]:
    """Streamers see the rooms they host; admins and sales see the organisation's rooms."""
    rooms = (
        Room.objects.for_org(membership.org_id)
        .select_related("streamer")
        .order_by("-scheduled_start")
    )
    if membership.role == Role.STREAMER:
        rooms = rooms.filter(streamer__user_id=membership.user_id)
    return rooms


def product_list(*, org_id: int) -> QuerySet[Product]:
    return Product.objects.for_org(org_id).order_by("-id")


def room_state_products(room: Room) -> list[dict]:
    """State part: the room's product cards in order, the pinned one flagged."""

    items = list(
        RoomProduct.objects.for_org(room.org_id).filter(room=room).select_related("product")
    )
    open_clip = None
    if any(item.is_pinned for item in items):
        open_clip = (
            ProductClip.objects.for_org(room.org_id)
            .filter(room=room, unpinned_at=None)
            .values_list("pk", flat=True)
            .first()
        )
    cards = []
    for item in items:
        card = product_card(item.product, clip_id=open_clip if item.is_pinned else None)
        card["pinned"] = item.is_pinned
        cards.append(card)
    return cards


def room_state_coupons(room: Room) -> list[dict]:
    """State part: released coupons with their remaining stock."""

    coupons = Coupon.objects.for_org(room.org_id).filter(room=room, released_at__isnull=False)
    return [coupon_card(c, remaining=coupon_remaining(c)) for c in coupons]


def room_public_state(*, room: Room, request=None) -> dict:
    """What any viewer may see of a room: card, products (pinned first flag), released
    coupons, replay. The viewer page's initial state and the hub's state parts use it
    (``request``: the play URL on the address the viewer is on)."""

    products = room_state_products(room)
    pinned = next((card for card in products if card["pinned"]), None)
    coupons = room_state_coupons(room)
    return {
        "room": room_card(room=room),
        "play_url": media.play_url(room, request=request),
        "products": products,
        "pinned": pinned,
        "coupons": coupons,
    }


def room_card(*, room: Room) -> dict:
    return {
        "id": room.pk,
        "title": room.title,
        "description": room.description,
        "status": room.status,
        "scheduled_start": room.scheduled_start.isoformat(),
        "started_at": room.started_at.isoformat() if room.started_at else None,
        "ended_at": room.ended_at.isoformat() if room.ended_at else None,
        "cover": room.cover.url if room.cover else "",
        "streamer": {
            "id": room.streamer_id,
            "name": room.streamer.name,
            "followers": room.streamer.followers_count,
        },
    }


def replay_for_room(*, room: Room) -> dict | None:
    replay = Replay.objects.for_org(room.org_id).filter(room=room).first()
    if replay is None:
        return None
    clips = (
        ProductClip.objects.for_org(room.org_id)
        .filter(room=room, end_s__isnull=False)
        .select_related("product")
    )
    return {
        "url": replay.url,
        "duration_s": replay.duration_s,
        "clips": [
            {
                "id": clip.pk,
                "product": product_card(clip.product),
                "start_s": clip.start_s,
                "end_s": clip.end_s,
                "views": clip.views,
                "clicks": clip.clicks,
                "claims": clip.claims,
                "orders": clip.orders,
            }
            for clip in clips
        ],
    }


def viewer_room_me(*, room: Room, contact_id: int, device: str = "") -> dict:
    """This viewer's side of a room, so a reload shows what they did and what applies to
    them: following the streamer, their reservation, a mute or ban on their chat, whether a
    phone is bound. Shadow-bans are never included (the viewer must not learn of them)."""

    contact = Contact.objects.for_org(room.org_id).filter(pk=contact_id).only("nickname").first()
    reservation = (
        Reservation.objects.for_org(room.org_id).filter(room=room, contact_id=contact_id).first()
    )
    target = Q(contact_id=contact_id) | (Q(device=device) if device else Q(pk__in=[]))
    now = timezone.now()
    restrictions = list(
        ChatRestriction.objects.for_org(room.org_id)
        .filter(target, Q(room=room) | Q(room=None), revoked_at=None)
        .filter(Q(until=None) | Q(until__gt=now))
        .filter(kind__in=(RestrictionKind.MUTE, RestrictionKind.BAN))
        .values("kind", "until")
    )
    mutes = [r for r in restrictions if r["kind"] == RestrictionKind.MUTE]
    muted_until = None
    if mutes and all(r["until"] for r in mutes):
        muted_until = max(r["until"] for r in mutes).isoformat()
    return {
        "contact_id": contact_id,
        "nickname": contact.nickname if contact else "",
        "following": Follow.objects.for_org(room.org_id)
        .filter(streamer_id=room.streamer_id, contact_id=contact_id)
        .exists(),
        "reservation": (
            {
                "remind_at": reservation.remind_at.isoformat(),
                "reminded": bool(reservation.reminded_at),
            }
            if reservation
            else None
        ),
        "chat": {
            "banned": any(r["kind"] == RestrictionKind.BAN for r in restrictions),
            "muted": bool(mutes),
            "muted_until": muted_until,
        },
        "phone_bound": ContactIdentity.objects.for_org(room.org_id)
        .filter(contact_id=contact_id, kind=IdentityKind.PHONE)
        .exists(),
    }


def room_ids_live(org_id: int) -> list[int]:
    """Ids of the organisation's rooms that are live now (crm.rooms.live_room_ids)."""
    return list(Room.objects.for_org(org_id).filter(status="live").values_list("id", flat=True))


def room_titles_in_org(org_id: int, room_ids: list[int]) -> dict[int, str]:
    """Titles of those of ``room_ids`` that are rooms of the organisation (crm.rooms.room_titles)."""
    return dict(Room.objects.for_org(org_id).filter(pk__in=room_ids).values_list("id", "title"))


def room_exists_in_org(org_id: int, room_id: int) -> bool:
    """Whether ``room_id`` is a room of the organisation (crm.rooms.room_exists)."""
    return Room.objects.for_org(org_id).filter(pk=room_id).exists()
