from __future__ import annotations

from django.db.models import QuerySet

from core.models import Membership, Role
from livecommerce.models import Product, Room


def room_list_for_staff(*, membership: Membership) -> QuerySet[Room]:
    """Streamers see the rooms they host; admins and sales see the organisation's rooms."""
    rooms = (
        Room.objects.for_org(membership.org_id)
        .select_related("streamer")
        .order_by("-scheduled_start")
    )
    if membership.role == Role.STREAMER:
        rooms = rooms.filter(streamer__user_id=membership.user_id)
    return rooms


def product_list(*, org_id: int) -> QuerySet[Product]:
    return Product.objects.for_org(org_id).order_by("-id")
