"""What media callbacks do, whichever server sent them (nginx-rtmp or Tencent Cloud live).

Every entry point is idempotent: a replayed callback finds the room already live / ended /
with its replay and changes nothing.
"""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from livecommerce.models import MediaCallback, Room, RoomStatus
from livecommerce.services.replays import replay_attach
from livecommerce.services.rooms import room_end, room_go_live

log = logging.getLogger(__name__)


class Rejected(Exception):
    """The media server must refuse this publish (any non-2xx answer does)."""


def first_time(provider: str, key: str) -> bool:
    """Record a callback's identity; False when it was processed before."""
    try:
        with transaction.atomic():
            MediaCallback.objects.create(provider=provider, key=key[:200])
    except IntegrityError:
        return False
    return True


def room_for_stream(stream_key: str) -> Room | None:
    return Room.unscoped.select_related("streamer").filter(stream_key=stream_key).first()


def stream_started(*, stream_key: str) -> Room:
    room = room_for_stream(stream_key)
    if room is None:
        raise Rejected("unknown stream key")
    if room.status == RoomStatus.ENDED:
        raise Rejected("room ended")
    return room_go_live(room=room)


def stream_stopped(*, stream_key: str) -> Room | None:
    room = room_for_stream(stream_key)
    if room is None or room.status != RoomStatus.LIVE:
        return room
    return room_end(room=room, at=timezone.now())


def recording_ready(*, stream_key: str, url: str, source: str, duration_s: int = 0):
    room = room_for_stream(stream_key)
    if room is None:
        return None
    return replay_attach(room=room, url=url, source=source, duration_s=duration_s)
