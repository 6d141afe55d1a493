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

from core import pii
from core.errors import Conflict, DomainError
from crm.models import ContactIdentity
from crm.services.events import event_record
from crm.services.identity import identity_normalise
from livecommerce.models import Follow, Reservation, Room, RoomStatus, StreamerProfile

log = logging.getLogger(__name__)

_due_handlers: list = []
# Answers whether a reservation's reminder can be delivered (registered by campaigns, which
# owns the reminder journey and the send policy; livecommerce may not import campaigns).
_status_providers: list = []
REMIND_CHANNELS = ("sms", "mp_subscribe", "wechat_oa")


def on_reservation_due(fn):
    """Register ``fn(reservation)``; called once per reservation when its reminder is due."""
    _due_handlers.append(fn)
    return fn


def on_reminder_status(fn):
    """Register ``fn(reservation) -> dict``: the reminder's honest status (see
    ``reservation_reminder_status``). The last registration wins."""
    _status_providers.append(fn)
    return fn


def reservation_reminder_status(*, reservation: Reservation) -> dict:
    """``{"deliverable", "channel", "to", "reason", "message"}``: whether a reminder will
    actually reach the viewer, as the campaigns app's reminder journey and send policy see it.
    Without that app nothing reminds anyone, and the answer says so."""
    if not _status_providers:
        return {
            "deliverable": False,
            "channel": None,
            "to": None,
            "reason": "no_reminder_journey",
            "message": _("已预约，但目前无法发送开播提醒"),
        }
    return _status_providers[-1](reservation)


def reservation_remind_set(
    *, reservation: Reservation, channel: str, phone: str = "", sms_consent: bool = False
) -> Reservation:
    """Record how the viewer wants to be reminded. SMS needs a phone the viewer has verified
    (bound through the page's phone step, so nobody books texts to someone else's number) and
    their consent to this reminder. Raises DomainError naming the field."""

    if channel not in REMIND_CHANNELS:
        raise DomainError(_("未知的提醒方式"), fields={"remind": [_("未知的提醒方式")]})
    fields = ["remind_channel", "updated_at"]
    if channel == "sms":
        if not sms_consent:
            message = _("请同意接收开播提醒短信")
            raise DomainError(message, fields={"sms_consent": [message]})
        phones = ContactIdentity.objects.for_org(reservation.org_id).filter(
            contact_id=reservation.contact_id, kind="phone"
        )
        if phone:
            try:
                value = identity_normalise("phone", phone)
            except DomainError:
                message = _("请输入有效的手机号")
                raise DomainError(message, fields={"phone": [message]}) from None
            phones = phones.filter(value_hash=pii.lookup_hash("phone", value))
        if not phones.exists():
            message = _("请先验证手机号")
            raise DomainError(message, code="phone_not_verified", fields={"phone": [message]})
        reservation.remind_consent_at = timezone.now()
        fields.append("remind_consent_at")
    reservation.remind_channel = channel
    reservation.save(update_fields=fields)
    return reservation


def room_reserve(*, room: Room, contact) -> tuple[Reservation, bool]:
    """Reserve a scheduled room (idempotent). Returns (reservation, created)."""

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
