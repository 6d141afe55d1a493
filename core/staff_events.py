"""Real-time hints to staff screens (each staff user's ``/ws/staff/`` sockets), for every app.

A service of any app tells one staff user about a change (a new notification, a lead turning
hot) with ``send_staff_event_on_commit``. The row it wrote is the truth; the event is a hint
a closed screen simply misses (the workspace fetches state when it opens). Delivery belongs
to the real-time hub (``livecommerce.realtime``), which registers its transport as
``staff_publisher`` in ``LivecommerceConfig.ready``; core only shapes the message, so an app
below the hub (crm) publishes without importing it.

Every staff event type's payload is a ``TypedDict`` below, listed in ``STAFF_EVENT_SCHEMAS``;
``send_staff_event_on_commit`` checks the payload when ``settings.EVENT_SCHEMA_CHECKS`` is on
(test settings). The socket receives ``{"type": type, **payload}`` (docs/realtime.md).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, TypedDict

from django.db import transaction

from core.event_schemas import check_payload, checks_enabled
from core.hooks import Hook

log = logging.getLogger(__name__)

# fn(message) publishes one serialised staff message to every ASGI process.
staff_publisher: Hook[Callable[[str], None]] = Hook("core.staff_publisher", single=True)


class NotificationEvent(TypedDict):
    """``crm.notification``: a new ``crm.Notification`` row for this user
    (``crm.services.leads.user_notify``); ``data`` is the row's own ``data``, per ``kind``."""

    id: int
    kind: str
    title: str
    data: dict[str, Any]


class LeadGradeChangedEvent(TypedDict):
    """``lead.grade_changed``: a lead the user owns moved to another grade
    (``crm.services.scoring.grades.grade_changed_emit``)."""

    contact: int
    old_grade: str
    grade: str


STAFF_EVENT_SCHEMAS: dict[str, Any] = {
    "crm.notification": NotificationEvent,
    "lead.grade_changed": LeadGradeChangedEvent,
}


def send_staff_event_on_commit(*, org_id: int, user_id: int, type: str, data: dict) -> None:
    """Notify one staff user (every open ``/ws/staff/`` socket of theirs) after commit."""
    if checks_enabled():
        check_payload(STAFF_EVENT_SCHEMAS, type, data, what="staff event")
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
