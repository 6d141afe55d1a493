"""Who is in a room right now, across every ASGI process.

Each process reports its local viewers once a second (``HubRegistry._presence``); these
readers sum the fresh reports. In production they read Redis (so a Celery worker or any
ASGI process sees the whole room); in the embedded default, the process's own memory.
Figures are at most ~1 s stale.
"""

from __future__ import annotations

from livecommerce.realtime.transport import get_transport


def online_count(room_id: int) -> int:
    """Distinct viewers connected to the room now (staff excluded)."""
    return get_transport().online_count(room_id)


def peak_online(room_id: int) -> int:
    """The highest ``online_count`` seen for the room (kept for a day after the last event)."""
    return get_transport().peak_online(room_id)


def present_contact_ids(room_id: int) -> set[int]:
    """Contact ids of the viewers connected now (lucky-draw eligibility "all present")."""
    return get_transport().present_contact_ids(room_id)
