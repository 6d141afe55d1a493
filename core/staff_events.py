"""Real-time hints to staff screens (each staff user's ``/ws/staff/`` sockets), for every app.

A service of any app tells one staff user about a change (a new notification, a lead turning
hot) with ``send_staff_event_on_commit``. The row it wrote is the truth; the event is a hint
a closed screen simply misses (the workspace fetches state when it opens). Delivery belongs
to the real-time hub (``livecommerce.realtime``), which registers its transport as
``staff_publisher`` in ``LivecommerceConfig.ready``; core only shapes the message, so an app
below the hub (crm) publishes without importing it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from django.db import transaction

from core.hooks import Hook

log = logging.getLogger(__name__)

# fn(message) publishes one serialised staff message to every ASGI process.
staff_publisher: Hook[Callable[[str], None]] = Hook("core.staff_publisher", single=True)


def send_staff_event_on_commit(*, org_id: int, user_id: int, type: str, data: dict) -> None:
    """Notify one staff user (every open ``/ws/staff/`` socket of theirs) after commit."""
    message = json.dumps(
        {"o": org_id, "u": user_id, "e": {"type": type, **data}},
        ensure_ascii=False,
        separators=(",", ":"),
    )

    def publish() -> None:
        try:
            staff_publisher.get()(message)
        except Exception:  # noqa: BLE001
            log.exception("staff event %s for user %s not delivered", type, user_id)

    transaction.on_commit(publish)
