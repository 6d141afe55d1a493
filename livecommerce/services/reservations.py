"""Reservations (预约) and follows; the reminder sweep hands due reservations to handlers.

The campaigns journey registers ``on_reservation_due(fn)``; the periodic sweep calls every
handler once per reservation (the row is claimed with ``reminded_at`` before the handlers
run, so two sweeps never both take it).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import Conflict
from livecommerce.models import Follow, Reservation, Room, RoomStatus, StreamerProfile

log = logging.getLogger(__name__)

_due_handlers: list = []


def on_reservation_due(fn):
    """Register ``fn(reservation)``; called once per reservation when its reminder is due."""
    _due_handlers.append(fn)
    return fn


def room_reserve(*, room: Room, contact) -> tuple[Reservation, bool]:
    """Reserve a scheduled room (idempotent). Returns (reservation, created)."""
    from crm.services.events import event_record

    if room.status != RoomStatus.SCHEDULED:
        raise Conflict(_("只能预约未开播的直播"), code="room_not_scheduled")
    remind_at = room.scheduled_start - timedelta(minutes=settings.RESERVATION_REMIND_MINUTES)
    remind_at = max(remind_at, timezone.now())
    try:
        with transaction.atomic():
            reservation = Reservation.objects.for_org(room.org_id).create(
                org_id=room.org_id, room=room, contact=contact, remind_at=remind_at
            )
            event_record(
                contact=contact,
                type="room.reserve",
                props={"room": room.pk, "title": room.title},
                room_id=room.pk,
                key=f"room.reserve:{room.pk}:{contact.pk}",
            )
    except IntegrityError:
        return Reservation.objects.for_org(room.org_id).get(room=room, contact=contact), False
    return reservation, True


def reservations_reschedule(*, room: Room) -> None:
    """The room's start moved: pending reminders move with it."""
    remind_at = room.scheduled_start - timedelta(minutes=settings.RESERVATION_REMIND_MINUTES)
    Reservation.objects.for_org(room.org_id).filter(room=room, reminded_at=None).update(
        remind_at=max(remind_at, timezone.now())
    )


def reservations_sweep(*, limit: int = 500) -> int:
    """Hand every due reservation to the registered handlers, exactly once each."""
    now = timezone.now()
    due_ids = list(
        Reservation.unscoped.filter(reminded_at=None, remind_at__lte=now).values_list(
            "pk", flat=True
        )[:limit]
    )
    handled = 0
    for pk in due_ids:
        # Claim the row first: a concurrent sweep's UPDATE matches nothing.
        if not Reservation.unscoped.filter(pk=pk, reminded_at=None).update(reminded_at=now):
            continue
        reservation = Reservation.unscoped.select_related("room", "contact").get(pk=pk)
        if reservation.room.status == RoomStatus.ENDED:
            continue
        for handler in _due_handlers:
            try:
                handler(reservation)
            except Exception:  # noqa: BLE001 - one broken handler must not stop the sweep
                log.exception("reservation handler failed for %s", pk)
        handled += 1
    return handled


def streamer_follow(*, streamer: StreamerProfile, contact, follow: bool = True) -> bool:
    """Follow (or unfollow) a streamer. Returns whether the viewer now follows."""
    from crm.services.events import event_record

    with transaction.atomic():
        if follow:
            try:
                with transaction.atomic():
                    Follow.objects.for_org(streamer.org_id).create(
                        org_id=streamer.org_id, streamer=streamer, contact=contact
                    )
            except IntegrityError:
                return True
            StreamerProfile.unscoped.filter(pk=streamer.pk).update(
                followers_count=F("followers_count") + 1
            )
            event_record(contact=contact, type="follow", props={"streamer": streamer.pk})
            return True
        deleted, _ = (
            Follow.objects.for_org(streamer.org_id)
            .filter(streamer=streamer, contact=contact)
            .delete()
        )
        if deleted:
            StreamerProfile.unscoped.filter(pk=streamer.pk, followers_count__gt=0).update(
                followers_count=F("followers_count") - 1
            )
        return False
