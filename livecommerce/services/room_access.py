"""Who may manage a room: the one check every room-scoped service runs first (rooms,
products, coupons, draws, moderation), kept below them all so none imports another for it."""

from __future__ import annotations

from django.utils.translation import gettext as _

from core.errors import Forbidden
from core.models import Membership, Role
from livecommerce.models import Room


def ensure_can_manage_room(*, membership: Membership, room: Room) -> None:
    """Admins manage every room of their organisation; a streamer only the rooms they host."""
    if room.org_id != membership.org_id:
        raise Forbidden(_("无权操作该直播间"))
    if membership.role == Role.ADMIN:
        return
    if membership.role == Role.STREAMER and room.streamer.user_id == membership.user_id:
        return
    raise Forbidden(_("只能管理自己的直播间"))
