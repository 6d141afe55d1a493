"""Reads of the real-time hub's presence and chat, with event-log fallbacks.

The hub (``livecommerce.realtime.presence``) is the source of truth while sockets are
connected; when none is (a draw run from a process without the hub's view, a room followed
only through the API) the CRM event log answers the same questions from ``room.join`` /
``room.leave`` events. Chat keywords are read from the chat messages
(``livecommerce.selectors_chat``).
"""

from __future__ import annotations

from django.utils import timezone

from crm.models import Event
from livecommerce.realtime import presence
from livecommerce.selectors_chat import contacts_who_commented as chat_selector


def present_contact_ids(room_id: int) -> list[int]:
    """Viewers connected now (the hub's presence, all processes). When no socket is
    connected at all (a draw run from a process without the hub's view, or a room
    followed only through the API) the event log's joined-and-not-left viewers answer."""
    connected = set(presence.present_contact_ids(room_id))
    if connected:
        return sorted(connected)
    return sorted(_open_visit_starts(room_id))


def _open_visit_starts(room_id: int) -> dict[int, float]:
    """From the event log: contact id → when (epoch s) their still-open visit began.

    Joins and leaves are paired by counting (two tabs are two joins, closing one is one
    leave), so a viewer is in the room while their joins outnumber their leaves."""
    rows = (
        Event.unscoped.filter(room_id=room_id, type__in=("room.join", "room.leave"))
        .order_by("occurred_at", "pk")
        .values_list("contact_id", "type", "occurred_at")
    )
    depth: dict[int, int] = {}
    since: dict[int, float] = {}
    for contact_id, kind, at in rows:
        if kind == "room.join":
            if depth.get(contact_id, 0) == 0:
                since[contact_id] = at.timestamp()
            depth[contact_id] = depth.get(contact_id, 0) + 1
        else:
            depth[contact_id] = max(0, depth.get(contact_id, 0) - 1)
            if depth[contact_id] == 0:
                since.pop(contact_id, None)
    return since


def online_count(room_id: int) -> int:
    return int(presence.online_count(room_id))


def peak_online(room_id: int) -> int:
    return int(presence.peak_online(room_id))


def contacts_who_commented(room_id: int, keyword: str) -> list[int]:
    return list(chat_selector(room_id, keyword))


def watch_seconds_so_far(room, *, now=None) -> dict[int, float]:
    """Seconds each contact has spent in ``room`` up to ``now``, the current visit included.

    Finished visits come from ``room.leave`` events (``value`` = seconds watched, ending at
    the event); a viewer still connected (``present_contact_ids``) adds the time since the
    join that opened their current visit. Visits overlapping in time (two tabs) count once:
    the result is the length of the union of the intervals.
    """
    now = now or timezone.now()
    present = set(present_contact_ids(room.pk))
    intervals: dict[int, list[tuple[float, float]]] = {}
    finished = (
        Event.objects.for_org(room.org_id)
        .filter(room_id=room.pk, type="room.leave", value__gt=0)
        .values_list("contact_id", "occurred_at", "value")
    )
    for contact_id, at, value in finished:
        intervals.setdefault(contact_id, []).append((at.timestamp() - float(value), at.timestamp()))
    now_s = now.timestamp()
    for contact_id, since in _open_visit_starts(room.pk).items():
        if contact_id in present and since < now_s:
            intervals.setdefault(contact_id, []).append((since, now_s))
    totals: dict[int, float] = {}
    for contact_id, spans in intervals.items():
        total, end = 0.0, float("-inf")
        for lo, hi in sorted(spans):
            lo = max(lo, end)
            if hi > lo:
                total += hi - lo
                end = hi
        totals[contact_id] = total
    return totals


def contacts_watched_at_least(room, seconds: int, *, now=None) -> list[int]:
    """Contacts whose time in the room so far (current visit included) is ≥ ``seconds``."""
    totals = watch_seconds_so_far(room, now=now)
    return sorted(c for c, total in totals.items() if total >= seconds)
