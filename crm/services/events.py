"""Event ingestion: the one way anything lands in the behaviour log."""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from crm.models import Contact, Event

# Types the log accepts (spec §2 crm); other types are a 400 at the API.
EVENT_TYPES = (
    "room.reserve",
    "room.join",
    "room.leave",
    "chat",
    "like",
    "follow",
    "product.click",
    "coupon.claim",
    "coupon.redeem",
    "order",
    "share",
    "invite.accepted",
    "replay.watch",
    "oa.subscribe",
    "oa.unsubscribe",
    "message.delivered",
    "message.clicked",
    "form.submit",
)

# The property whose number an aggregate rule sums, per type.
VALUE_PROPS = {
    "room.leave": "watch_seconds",
    "order": "amount",
    "replay.watch": "watch_seconds",
    "like": "count",
}

_listeners: list = []


def on_event_recorded(fn):
    """Register ``fn(event)`` to run after an event commits (scoring, journeys)."""
    _listeners.append(fn)
    return fn


def event_record(
    *,
    contact: Contact,
    type: str,
    props: dict | None = None,
    occurred_at: datetime | None = None,
    room_id: int | None = None,
    key: str | None = None,
) -> Event | None:
    """Append one event for a contact. Returns None when ``key`` was already recorded
    (a replayed delivery is processed once)."""
    props = props or {}
    value_prop = VALUE_PROPS.get(type)
    value = props.get(value_prop) if value_prop else None
    try:
        value = float(value) if value is not None else None
    except (TypeError, ValueError):
        value = None
    fields = {
        "org_id": contact.org_id,
        "contact": contact,
        "type": type,
        "props": props,
        "occurred_at": occurred_at or timezone.now(),
        "room_id": room_id,
        "value": value,
        "key": key,
    }
    if key is None:
        # Nothing can collide: no savepoint (two fewer round trips on the hot path).
        event = Event.objects.for_org(contact.org_id).create(**fields)
    else:
        try:
            with transaction.atomic():
                event = Event.objects.for_org(contact.org_id).create(**fields)
        except IntegrityError:
            return None
    for listener in _listeners:
        transaction.on_commit(lambda listener=listener: listener(event))
    return event
