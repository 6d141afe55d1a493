"""Room lifecycle: scheduled → live → ended."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from PIL import Image, UnidentifiedImageError

from core.errors import Conflict, DomainError, Forbidden
from core.models import Membership, Role
from livecommerce import events
from livecommerce.models import Room, RoomStatus, StreamerProfile
from livecommerce.services.products import clips_close_for_room
from livecommerce.services.reservations import reservations_reschedule
from livecommerce.services.room_access import ensure_can_manage_room


def _streamer_for(membership: Membership, streamer: StreamerProfile | None) -> StreamerProfile:
    if membership.role == Role.STREAMER:
        own = (
            StreamerProfile.objects.for_org(membership.org_id)
            .filter(user_id=membership.user_id)
            .first()
        )
        if own is None:
            raise DomainError(_("请先创建主播主页"), code="no_streamer_profile")
        if streamer is not None and streamer.pk != own.pk:
            raise Forbidden(_("只能为自己创建直播间"))
        return own
    if membership.role != Role.ADMIN:
        raise Forbidden(_("只有主播或管理员可以创建直播间"))
    if streamer is None:
        raise DomainError(_("请选择主播"), fields={"streamer": [_("请选择主播")]})
    return streamer


# The console's date picker has minute precision and browsers' clocks drift: "now" typed a
# moment ago must still be accepted, a start in the past must not.
SCHEDULE_TOLERANCE = timedelta(minutes=2)


def ensure_start_not_past(scheduled_start: datetime) -> None:
    """Raises DomainError (field ``scheduled_start``, HTTP 400) for a start in the past."""
    if scheduled_start < timezone.now() - SCHEDULE_TOLERANCE:
        message = _("开播时间不能早于当前时间")
        raise DomainError(message, code="start_in_past", fields={"scheduled_start": [message]})


def room_create(
    *,
    membership: Membership,
    title: str,
    scheduled_start: datetime,
    description: str = "",
    streamer: StreamerProfile | None = None,
) -> Room:
    """Schedule a room for the calling streamer (or, for admins, the given streamer).

    Raises DomainError (400, field ``scheduled_start``) for a start in the past."""
    host = _streamer_for(membership, streamer)
    ensure_start_not_past(scheduled_start)
    return Room.objects.for_org(membership.org_id).create(
        org_id=membership.org_id,
        streamer=host,
        title=title,
        description=description,
        scheduled_start=scheduled_start,
    )


def room_update(*, membership: Membership, room: Room, **changes) -> Room:
    ensure_can_manage_room(membership=membership, room=room)
    if "scheduled_start" in changes and room.status != RoomStatus.SCHEDULED:
        raise Conflict(_("直播已开始，不能修改开播时间"), code="room_not_scheduled")
    if "scheduled_start" in changes:
        ensure_start_not_past(changes["scheduled_start"])
    for field, value in changes.items():
        setattr(room, field, value)
    room.save(update_fields=[*changes, "updated_at"])
    if "scheduled_start" in changes:
        reservations_reschedule(room=room)
    return room


def _emit_status(room: Room) -> None:
    events.send_room_event_on_commit(
        room_id=room.pk, type="room.status", data={"status": room.status}
    )


def room_go_live(*, room: Room, at: datetime | None = None) -> Room:
    """Mark a room live (by hand or from the media server). Idempotent for a live room."""
    with transaction.atomic():
        room = Room.unscoped.select_for_update().get(pk=room.pk)
        if room.status == RoomStatus.LIVE:
            return room
        if room.status == RoomStatus.ENDED:
            raise Conflict(_("直播已结束"), code="room_ended")
        room.status = RoomStatus.LIVE
        room.started_at = at or timezone.now()
        room.save(update_fields=["status", "started_at", "updated_at"])
        _emit_status(room)
    return room


def room_end(*, room: Room, at: datetime | None = None) -> Room:
    """End a room. Idempotent for an ended room; a scheduled room can be cancelled too."""
    with transaction.atomic():
        room = Room.unscoped.select_for_update().get(pk=room.pk)
        if room.status == RoomStatus.ENDED:
            return room
        room.status = RoomStatus.ENDED
        room.ended_at = at or timezone.now()
        room.save(update_fields=["status", "ended_at", "updated_at"])

        clips_close_for_room(room=room)
        _emit_status(room)
    return room


COVER_MAX = (1280, 720)


def room_cover_set(*, membership: Membership, room: Room, upload) -> Room:
    """Validate an uploaded cover with Pillow (a real image, not just a name), shrink it to
    1280×720 at most and store it as JPEG."""

    ensure_can_manage_room(membership=membership, room=room)
    if upload.size > 8 * 1024 * 1024:
        raise DomainError(_("图片不能超过 8MB"), fields={"cover": [_("图片不能超过 8MB")]})
    try:
        with Image.open(upload) as probe:
            probe.verify()
        upload.seek(0)
        with Image.open(upload) as img:
            if img.width * img.height > 40_000_000:
                raise DomainError(_("图片尺寸过大"), fields={"cover": [_("图片尺寸过大")]})
            img = img.convert("RGB")
            img.thumbnail(COVER_MAX)
            out = io.BytesIO()
            img.save(out, format="JPEG", quality=85)
    except (UnidentifiedImageError, OSError, SyntaxError):
        raise DomainError(_("请上传图片文件"), fields={"cover": [_("请上传图片文件")]}) from None
    room.cover.save(f"room-{room.pk}.jpg", ContentFile(out.getvalue()), save=False)
    room.save(update_fields=["cover", "updated_at"])
    return room
