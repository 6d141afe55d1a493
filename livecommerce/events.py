"""Real-time events: the only way services push to screens.

Services call ``send_room_event_on_commit`` (room screens) or
``core.staff_events.send_staff_event_on_commit`` (one staff user's notification socket, any
app; delivered by ``publish_staff`` here). The event is published after the transaction
commits (a rolled-back write pushes nothing) through the hub transport
(``livecommerce.realtime.transport``): Redis in production — so a Celery worker reaches every
ASGI process — or in-memory in the embedded default, where worker threads hand the event to
the event loop thread-safely.

Each room event type's payload is a ``TypedDict`` below, listed in ``ROOM_EVENT_SCHEMAS``
(docs/realtime.md describes them for client authors); ``send_room_event_on_commit`` checks
the payload against it when ``settings.EVENT_SCHEMA_CHECKS`` is on (test settings). A client
receives ``{"seq": …, "type": type, **payload}``: the schemas type that dict, they never
change it. Control frames the hub builds itself (``hello``, ``notice``, ``pong``, ``batch``)
are typed here too, for readers; the hub's tick does not check them.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Literal, TypedDict

from django.db import transaction

from core.event_schemas import check_payload, checks_enabled
from livecommerce.realtime.transport import get_transport

log = logging.getLogger(__name__)


# -- room events (services publish them; ``like`` and ``online`` come from the hub) -----------
class ChatEvent(TypedDict):
    """``chat``: one message (``livecommerce.services.chat.chat_event_body``)."""

    id: int
    text: str
    nickname: str
    contact_id: int | None  # null for staff
    host: bool
    status: Literal["visible", "shadow", "pending"]
    at: str  # ISO 8601


class LikeEvent(TypedDict):
    """``like``: the room's total (``count``) after this tick's ``delta`` (transport)."""

    count: int
    delta: int


class OnlineEvent(TypedDict):
    """``online``: distinct viewers in the room now, across processes (presence)."""

    count: int


class ProductCard(TypedDict):
    """What viewers see of a product (``livecommerce.services.products.product_card``)."""

    id: int
    name: str
    price: str  # decimal as text
    original_price: str | None
    image: str  # URL, or "" without an image
    link_url: str
    mp_path: str
    clip: int | None  # the explanation clip being recorded


class ProductPinnedEvent(TypedDict):
    """``product.pinned``: the product the host explains now (null: none)."""

    product: ProductCard | None


class CouponCard(TypedDict):
    """What viewers see of a coupon (``livecommerce.services.coupons.stock.coupon_card``)."""

    id: int
    name: str
    kind: str
    amount: str
    threshold: str
    stock: int
    remaining: int
    per_viewer_limit: int
    valid_until: str  # ISO 8601
    released: bool


class CouponReleasedEvent(TypedDict):
    """``coupon.released``: a coupon pops up for every viewer."""

    coupon: CouponCard


class CouponStockEvent(TypedDict):
    """``coupon.stock``: units left of a coupon after claims."""

    coupon: int
    remaining: int


class DrawWinnerCard(TypedDict):
    contact_id: int
    nickname: str


class DrawResultEvent(TypedDict):
    """``draw.result``: a lucky draw ran."""

    draw: int
    prize: str
    winners: list[DrawWinnerCard]


class RoomStatusEvent(TypedDict):
    """``room.status``: the room went live or ended."""

    status: Literal["scheduled", "live", "ended"]


class AnnouncementEvent(TypedDict):
    """``announcement``: the pinned announcement (empty text: cleared)."""

    text: str


class ModerationDeleteEvent(TypedDict):
    """``moderation`` delete: a message leaves every screen."""

    action: Literal["delete"]
    message_id: int


class ModerationRestrictEvent(TypedDict):
    """``moderation`` mute/unmute/unban (the viewer concerned + staff) and shadow/unshadow
    (staff only)."""

    action: Literal["mute", "unmute", "unban", "shadow", "unshadow"]
    contact_id: int | None
    until: str | None  # ISO 8601; null: open-ended


class ModerationBanEvent(TypedDict):
    """``moderation`` ban: like a restriction, plus what the hubs match sockets on."""

    action: Literal["ban"]
    contact_id: int | None
    until: str | None
    device: str
    ip: str | None


class ModerationSettingsEvent(TypedDict):
    """``moderation`` settings: the room's chat settings changed."""

    action: Literal["settings"]
    slow_mode_seconds: int
    premoderation: bool


ModerationEvent = (
    ModerationDeleteEvent | ModerationRestrictEvent | ModerationBanEvent | ModerationSettingsEvent
)

# Every room event type a client can receive in a room (docs/realtime.md's table).
ROOM_EVENT_SCHEMAS: dict[str, Any] = {
    "chat": ChatEvent,
    "like": LikeEvent,
    "online": OnlineEvent,
    "product.pinned": ProductPinnedEvent,
    "coupon.released": CouponReleasedEvent,
    "coupon.stock": CouponStockEvent,
    "draw.result": DrawResultEvent,
    "room.status": RoomStatusEvent,
    "announcement": AnnouncementEvent,
    "moderation": ModerationEvent,
}


# -- control frames (the hub writes them to one socket; no seq) -------------------------------
class HelloFrame(TypedDict):
    """First frame on a room socket (``RoomHub.attach``)."""

    type: Literal["hello"]
    seq: int  # the last seq this process saw
    room: int
    role: Literal["viewer", "host"]
    tick_ms: int


class StaffHelloFrame(TypedDict):
    """First frame on a ``/ws/staff/`` socket."""

    type: Literal["hello"]
    role: Literal["staff"]


class NoticeFrame(TypedDict):
    """A notice to one socket; some codes add fields (docs/realtime.md, "Notice codes")."""

    type: Literal["notice"]
    code: str


class PongFrame(TypedDict):
    type: Literal["pong"]


class BatchFrame(TypedDict):
    """Several events of one tick, in seq order."""

    type: Literal["batch"]
    events: list[dict[str, Any]]


# -- hub control (process to process, never a screen) ------------------------------------------
class BanMessage(TypedDict):
    """One ban as the hubs hold it (``livecommerce.realtime.bans.Ban.as_message``)."""

    id: int
    room: int | None  # null: every room of the organisation
    contact: int | None
    device: str
    ip: str
    until: float | None  # epoch seconds


class BansAddControl(TypedDict):
    """``bans`` after a ban: the bans to add."""

    add: list[BanMessage]


class BansLiftControl(TypedDict):
    """``bans`` after an unban: the restriction ids lifted."""

    add: list[BanMessage]
    lift: list[int]


HUB_CONTROL_SCHEMAS: dict[str, Any] = {"bans": BansAddControl | BansLiftControl}

# Events that ride the priority lane: never dropped or sampled.
PRIORITY_TYPES = frozenset(
    {
        "product.pinned",
        "coupon.released",
        "coupon.stock",
        "draw.result",
        "room.status",
        "moderation",
        "announcement",
    }
)

AUDIENCES = frozenset({"all", "host", "self"})

_publishers: list = []


def register_publisher(fn) -> None:
    """Register an extra ``fn(room_id, event_dict)`` called after the hub publish (tests)."""
    _publishers.append(fn)


def _publish(room_id: int, type: str, data: dict, audience: str, contact_id: int | None) -> None:
    for attempt in range(3):
        try:
            get_transport().publish(
                room_id, type=type, audience=audience, contact_id=contact_id, body=data
            )
            break
        except Exception:  # noqa: BLE001 - the stored write stands; screens resync later
            if attempt == 2:
                log.exception("room %s: could not publish %s", room_id, type)
            else:
                time.sleep(0.2 * (attempt + 1))
    event = {"type": type, **data, "_audience": audience}
    for fn in _publishers:
        fn(room_id, event)


def send_room_event_on_commit(
    *,
    room_id: int,
    type: str,
    data: dict,
    audience: str = "all",
    contact_id: int | None = None,
) -> None:
    """Publish ``{"seq", "type": type, **data}`` to room ``room_id`` after commit.

    ``audience``: "all" (everyone in the room), "host" (staff sockets only: host-only data
    never reaches viewers) or "self" (the viewer ``contact_id`` and staff — shadow-banned
    chat).
    """
    if audience not in AUDIENCES:
        raise ValueError(f"unknown audience {audience!r}")
    if checks_enabled():
        check_room_event(type, data)
    transaction.on_commit(lambda: _publish(room_id, type, data, audience, contact_id))


def check_room_event(type: str, data: dict) -> None:
    """Raise ``core.event_schemas.EventSchemaError`` unless ``data`` is a ``type`` payload."""
    check_payload(ROOM_EVENT_SCHEMAS, type, data, what="room event")


def publish_staff(message: str) -> None:
    """Deliver one staff message (``core.staff_events``) through the hub's transport; the
    implementation of ``core.staff_events.staff_publisher`` (LivecommerceConfig.ready)."""

    get_transport().publish_staff(message)


def send_hub_control_on_commit(*, kind: str, org_id: int, data: dict) -> None:
    """Tell every ASGI process's hub about a change it acts on itself, after commit.

    ``kind="bans"``: ``data`` = ``{"add": [ban…], "lift": [restriction id…]}``
    (``livecommerce.realtime.bans``): handshakes refuse banned viewers from then on and open
    sockets of a newly banned viewer are closed. Travels on the process-wide channel the
    staff notifications use; never reaches a screen.
    """

    if checks_enabled():
        check_payload(HUB_CONTROL_SCHEMAS, kind, data, what="hub control")
    message = json.dumps({"ctl": kind, "o": org_id, **data}, separators=(",", ":"))

    def publish() -> None:
        for attempt in range(3):
            try:
                get_transport().publish_staff(message)
                return
            except Exception:  # noqa: BLE001 - the stored ban stands; chat_post enforces it
                if attempt == 2:
                    log.exception("hub control %s for org %s not delivered", kind, org_id)
                else:
                    time.sleep(0.2 * (attempt + 1))

    transaction.on_commit(publish)
