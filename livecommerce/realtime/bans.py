"""Bans as the hub sees them: checked at every viewer handshake without a database query.

Each ASGI process keeps the active bans of an organisation in memory (``OrgBans``),
loaded with one query the first time one of its rooms is joined in this process, then kept
current by the moderation service's ``bans`` control messages (published after commit on
the process-wide channel: Redis pub/sub in production, the in-memory transport in the
embedded default). A ban that lands while the viewer is connected also closes their
sockets (4403) in every hub of the organisation this process serves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.db.models import Q
from django.utils import timezone

from livecommerce.models import ChatRestriction, RestrictionKind


@dataclass(frozen=True)
class Ban:
    id: int
    room_id: int | None  # None: every room of the organisation
    contact_id: int | None
    device: str
    ip: str
    until: float | None  # epoch seconds; None: until lifted

    def as_message(self) -> dict:
        return {
            "id": self.id,
            "room": self.room_id,
            "contact": self.contact_id,
            "device": self.device,
            "ip": self.ip,
            "until": self.until,
        }

    @classmethod
    def from_message(cls, data: dict) -> Ban:
        return cls(
            id=int(data["id"]),
            room_id=int(data["room"]) if data.get("room") is not None else None,
            contact_id=int(data["contact"]) if data.get("contact") is not None else None,
            device=str(data.get("device") or ""),
            ip=str(data.get("ip") or ""),
            until=float(data["until"]) if data.get("until") is not None else None,
        )

    def applies(self, *, room_id: int, now: float) -> bool:
        return (self.room_id is None or self.room_id == room_id) and (
            self.until is None or now < self.until
        )

    def targets(self, *, contact_id: int | None, device: str, ip: str) -> bool:
        return (
            (self.contact_id is not None and self.contact_id == contact_id)
            or (bool(self.device) and self.device == device)
            or (bool(self.ip) and self.ip == ip)
        )


class OrgBans:
    """One organisation's active bans, indexed by contact, device and IP."""

    def __init__(self):
        self.by_id: dict[int, Ban] = {}
        self.lifted: set[int] = set()  # lifted before the initial load finished
        self._index: dict[tuple[str, object], set[int]] = {}

    def add(self, ban: Ban) -> None:
        if ban.id in self.lifted:
            return
        self.by_id[ban.id] = ban
        for key in self._keys(ban):
            self._index.setdefault(key, set()).add(ban.id)

    def lift(self, ban_id: int) -> None:
        self.lifted.add(ban_id)
        ban = self.by_id.pop(ban_id, None)
        if ban is None:
            return
        for key in self._keys(ban):
            ids = self._index.get(key)
            if ids is not None:
                ids.discard(ban_id)
                if not ids:
                    del self._index[key]

    @staticmethod
    def _keys(ban: Ban) -> list[tuple[str, object]]:
        keys: list[tuple[str, object]] = []
        if ban.contact_id is not None:
            keys.append(("c", ban.contact_id))
        if ban.device:
            keys.append(("d", ban.device))
        if ban.ip:
            keys.append(("i", ban.ip))
        return keys

    def banned(self, *, room_id: int, contact_id: int | None, device: str, ip: str) -> bool:
        """Is a viewer with this contact, device or IP banned from ``room_id`` now?"""
        if not self._index:
            return False
        ids: set[int] = set()
        for key in (("c", contact_id), ("d", device), ("i", ip)):
            if key[1]:
                ids |= self._index.get(key, set())
        now = time.time()
        return any(self.by_id[i].applies(room_id=room_id, now=now) for i in ids)


def load_org_bans(org_id: int) -> list[Ban]:
    """The organisation's active bans (one query; runs on the hub's thread pool)."""

    rows = (
        ChatRestriction.objects.for_org(org_id)
        .filter(kind=RestrictionKind.BAN, revoked_at=None)
        .filter(Q(until=None) | Q(until__gt=timezone.now()))
        .values_list("id", "room_id", "contact_id", "device", "ip", "until")
    )
    return [
        Ban(
            id=pk,
            room_id=room_id,
            contact_id=contact_id,
            device=device or "",
            ip=ip or "",
            until=until.timestamp() if until else None,
        )
        for pk, room_id, contact_id, device, ip, until in rows
    ]


def ban_from_restriction(restriction) -> Ban:
    return Ban(
        id=restriction.pk,
        room_id=restriction.room_id,
        contact_id=restriction.contact_id,
        device=restriction.device or "",
        ip=str(restriction.ip or ""),
        until=restriction.until.timestamp() if restriction.until else None,
    )
