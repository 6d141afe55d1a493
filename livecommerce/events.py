"""Real-time events: the only way services push to screens.

Services call ``send_room_event_on_commit`` (room screens) or
``core.staff_events.send_staff_event_on_commit`` (one staff user's notification socket, any
app; delivered by ``publish_staff`` here). The event is published after the transaction
commits (a rolled-back write pushes nothing) through the hub transport
(``livecommerce.realtime.transport``): Redis in production — so a Celery worker reaches every
ASGI process — or in-memory in the embedded default, where worker threads hand the event to
the event loop thread-safely. Each event type's payload is documented in docs/realtime.md.
"""

from __future__ import annotations

import json
import logging
import time

from django.db import transaction

log = logging.getLogger(__name__)

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
    from livecommerce.realtime.transport import get_transport

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
    transaction.on_commit(lambda: _publish(room_id, type, data, audience, contact_id))


def publish_staff(message: str) -> None:
    """Deliver one staff message (``core.staff_events``) through the hub's transport; the
    implementation of ``core.staff_events.staff_publisher`` (LivecommerceConfig.ready)."""
    from livecommerce.realtime.transport import get_transport

    get_transport().publish_staff(message)


def send_hub_control_on_commit(*, kind: str, org_id: int, data: dict) -> None:
    """Tell every ASGI process's hub about a change it acts on itself, after commit.

    ``kind="bans"``: ``data`` = ``{"add": [ban…], "lift": [restriction id…]}``
    (``livecommerce.realtime.bans``): handshakes refuse banned viewers from then on and open
    sockets of a newly banned viewer are closed. Travels on the process-wide channel the
    staff notifications use; never reaches a screen.
    """
    from livecommerce.realtime.transport import get_transport

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
