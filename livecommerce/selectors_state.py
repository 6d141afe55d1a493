"""The room state a screen starts from (``GET /api/v1/rooms/{id}/state``).

Events are hints, state is truth: a client applies only events whose ``seq`` is newer
than ``state["seq"]``. The seq is read BEFORE anything else, so everything the state shows
is at least as new as that seq (an event both in the state and replayed is harmless: each
event carries the full value it sets).

Other features add their parts with ``register_state_part``::

    from livecommerce.selectors_state import register_state_part
    register_state_part("coupons", lambda room: [...])   # fn(room) -> JSON-able value

Parts are computed for every viewer's state, so keep them to one or two queries.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db.models import Q

from livecommerce.models import ChatMessage, ChatStatus, Room, RoomChatSettings, RoomProduct
from livecommerce.realtime import presence
from livecommerce.realtime.transport import get_transport
from livecommerce.services.chat import chat_event_body

RECENT_CHAT = 50

_parts: dict[str, Callable[[Room], object]] = {}


def register_state_part(name: str, fn: Callable[[Room], object]) -> None:
    """Add ``state[name] = fn(room)`` to every room state (idempotent per name)."""
    _parts[name] = fn


def _pinned_product(room: Room) -> dict | None:
    pinned = (
        RoomProduct.objects.for_org(room.org_id)
        .filter(room=room, is_pinned=True)
        .select_related("product")
        .first()
    )
    if pinned is None:
        return None
    product = pinned.product
    return {
        "id": product.pk,
        "name": product.name,
        "price": str(product.price),
        "original_price": str(product.original_price) if product.original_price else None,
        "image": product.image.url if product.image else "",
        "link_url": product.link_url,
        "mp_path": product.mp_path,
    }


def recent_chat(
    room: Room, *, for_contact: int | None = None, for_staff: bool = False, limit: int = RECENT_CHAT
) -> list[dict]:

    messages = ChatMessage.objects.for_org(room.org_id).filter(room=room)
    if for_staff:
        messages = messages.exclude(status=ChatStatus.DELETED)
    else:
        visible = {"status": ChatStatus.VISIBLE}
        if for_contact is not None:
            messages = messages.filter(
                Q(**visible)
                | Q(status__in=(ChatStatus.SHADOW, ChatStatus.PENDING), contact_id=for_contact)
            )
        else:
            messages = messages.filter(**visible)
    latest = list(messages.order_by("-id")[:limit])
    return [chat_event_body(m) for m in reversed(latest)]


def room_state(room: Room, *, for_contact: int | None = None, for_staff: bool = False) -> dict:
    """The current state of a room for one screen (viewer ``for_contact`` or staff)."""
    transport = get_transport()
    seq = transport.current_seq(room.pk)  # first: see the module docstring
    chat_settings = RoomChatSettings.objects.for_org(room.org_id).filter(room=room).first()
    state = {
        "seq": seq,
        "room": room.pk,
        "status": room.status,
        "title": room.title,
        "online": presence.online_count(room.pk),
        "peak_online": presence.peak_online(room.pk),
        "likes": transport.likes(room.pk),
        "pinned_product": _pinned_product(room),
        "announcement": chat_settings.announcement if chat_settings else "",
        "chat": recent_chat(room, for_contact=for_contact, for_staff=for_staff),
        "chat_settings": {
            "slow_mode_seconds": chat_settings.slow_mode_seconds if chat_settings else 0,
            "premoderation": chat_settings.premoderation if chat_settings else False,
        },
    }
    for name, fn in _parts.items():
        state[name] = fn(room)
    return state
