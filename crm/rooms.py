"""What crm needs to know about live rooms. Rooms live in an app above crm (livecommerce,
docs/architecture.md), which answers through these hooks (LivecommerceConfig.ready)."""

from __future__ import annotations

from collections.abc import Callable

from core.hooks import Hook

# fn(org_id) -> ids of the organisation's rooms that are live now.
live_room_ids: Hook[Callable[[int], list[int]]] = Hook("crm.live_room_ids", single=True)
# fn(org_id, room_id) -> whether the room exists in that organisation.
room_exists: Hook[Callable[[int, int], bool]] = Hook("crm.room_exists", single=True)
# fn(org_id, room_ids) -> {room_id: title} for those of the rooms in that organisation (the
# lead funnel names its per-room rows with it).
room_titles: Hook[Callable[[int, list[int]], dict[int, str]]] = Hook("crm.room_titles", single=True)
