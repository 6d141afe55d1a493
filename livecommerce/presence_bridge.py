"""Reads of the real-time hub's presence and chat, with event-log fallbacks.

The hub (``livecommerce.realtime.presence`` and ``livecommerce.selectors_chat``) is the
source of truth while it runs; until then (or in processes without it) the CRM event log
answers the same questions from ``room.join`` / ``chat`` / ``room.leave`` events.
"""

from __future__ import annotations

from django.db.models import Sum


def _presence():
    try:
        from livecommerce.realtime import presence
    except ImportError:
        return None
    return presence


def present_contact_ids(room_id: int) -> list[int]:
    """Viewers connected now (the hub's presence, all processes). When no socket is
    connected at all (a draw run from a process without the hub's view, or a room
    followed only through the API) the event log's joined-and-not-left viewers answer."""
    presence = _presence()
    if presence is not None:
        connected = set(presence.present_contact_ids(room_id))
        if connected:
            return sorted(connected)
    from crm.models import Event

    joined: dict[int, object] = {}
    left: dict[int, object] = {}
    rows = Event.unscoped.filter(room_id=room_id, type__in=("room.join", "room.leave"))
    for contact_id, kind, at in rows.values_list("contact_id", "type", "occurred_at"):
        target = joined if kind == "room.join" else left
        if contact_id not in target or target[contact_id] < at:
            target[contact_id] = at
    return sorted(c for c, at in joined.items() if c not in left or left[c] < at)


def online_count(room_id: int) -> int:
    presence = _presence()
    return int(presence.online_count(room_id)) if presence is not None else 0


def peak_online(room_id: int) -> int:
    presence = _presence()
    return int(presence.peak_online(room_id)) if presence is not None else 0


def contacts_who_commented(room_id: int, keyword: str) -> list[int]:
    try:
        from livecommerce.selectors_chat import contacts_who_commented as chat_selector
    except ImportError:
        chat_selector = None
    if chat_selector is not None:
        return list(chat_selector(room_id, keyword))
    from crm.models import Event

    return list(
        Event.unscoped.filter(room_id=room_id, type="chat", props__text__icontains=keyword)
        .values_list("contact_id", flat=True)
        .distinct()
    )


def contacts_watched_at_least(room, seconds: int) -> list[int]:
    from crm.models import Event

    rows = (
        Event.objects.for_org(room.org_id)
        .filter(room_id=room.pk, type="room.leave")
        .values("contact_id")
        .annotate(total=Sum("value"))
        .filter(total__gte=seconds)
    )
    return [row["contact_id"] for row in rows]
