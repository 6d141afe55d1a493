"""Replays (the recording attached when the media server finishes) and their clips."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import F

from crm.services.events import event_record
from livecommerce.models import ProductClip, Replay, Room


def replay_attach(*, room: Room, url: str, source: str, duration_s: int = 0) -> Replay:
    """Attach (or replace) the room's recording. Idempotent for the same URL."""
    try:
        with transaction.atomic():
            replay, created = Replay.objects.for_org(room.org_id).get_or_create(
                room=room,
                defaults={
                    "org_id": room.org_id,
                    "url": url,
                    "source": source,
                    "duration_s": duration_s,
                },
            )
    except IntegrityError:
        replay, created = Replay.objects.for_org(room.org_id).get(room=room), False
    if not created and (replay.url != url or replay.duration_s != duration_s):
        replay.url, replay.source, replay.duration_s = url, source, duration_s
        replay.save(update_fields=["url", "source", "duration_s", "updated_at"])
    return replay


def replay_watch(*, room: Room, contact, clip: ProductClip | None = None) -> None:
    """A viewer opened the replay (or one clip of it): counters and a CRM event."""
    Replay.objects.for_org(room.org_id).filter(room=room).update(views=F("views") + 1)
    if clip is not None:
        ProductClip.objects.for_org(room.org_id).filter(pk=clip.pk).update(views=F("views") + 1)
    if contact is not None:
        event_record(
            contact=contact,
            type="replay.watch",
            props={"room": room.pk, "clip": clip.pk if clip else None},
            room_id=room.pk,
        )
