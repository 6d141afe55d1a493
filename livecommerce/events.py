"""Real-time room events: the only way services push to screens.

Services call ``send_room_event_on_commit``; the event is published after the transaction
commits (a rolled-back write pushes nothing). Each event type's payload is documented in
docs/realtime.md. The room hub (livecommerce.realtime) delivers them.
"""

from __future__ import annotations

from django.db import transaction

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

_publishers: list = []


def register_publisher(fn) -> None:
    """The hub registers ``fn(room_id, event_dict)``; tests may register a recorder."""
    _publishers.append(fn)


def send_room_event_on_commit(
    *, room_id: int, type: str, data: dict, audience: str = "all"
) -> None:
    """Publish ``{"type": type, **data}`` to room ``room_id`` after commit.

    ``audience`` is "all" or "host" (host-only data never reaches viewers).
    """
    event = {"type": type, **data, "_audience": audience}

    def publish() -> None:
        for fn in _publishers:
            fn(room_id, event)

    transaction.on_commit(publish)
