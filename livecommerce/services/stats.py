"""Room statistics — organic activity only (hand-set figures never enter these counts)."""

from __future__ import annotations

from django.db.models import Avg, Count, Sum
from django.utils import timezone

from crm.models import Contact, Event
from livecommerce import presence_bridge
from livecommerce.models import CouponClaim, OnlineSample, Room, RoomStatus


def room_stats(*, room: Room) -> dict:
    events = Event.objects.for_org(room.org_id).filter(room_id=room.pk)
    by_type = dict(events.values_list("type").annotate(n=Count("id")))
    if room.status == RoomStatus.LIVE:
        # While live, a viewer still watching counts with the time so far (as the lucky
        # draw's "watched N minutes" does), not only once they leave.
        so_far = presence_bridge.watch_seconds_so_far(room)
        watch = sum(so_far.values()) / len(so_far) if so_far else 0
    else:
        watch = (
            events.filter(type="room.leave")
            .values("contact_id")
            .annotate(total=Sum("value"))
            .aggregate(avg=Avg("total"))["avg"]
        )
    likes = events.filter(type="like").aggregate(total=Sum("value"))["total"]
    unique = events.filter(type="room.join").values("contact_id").distinct().count()
    new_leads = Contact.objects.for_org(room.org_id).filter(source_detail__room=room.pk).count()
    online = presence_bridge.online_count(room.pk) if room.status == RoomStatus.LIVE else 0
    peak = max(
        presence_bridge.peak_online(room.pk),
        OnlineSample.objects.for_org(room.org_id)
        .filter(room=room)
        .order_by("-online")
        .values_list("online", flat=True)
        .first()
        or 0,
        online,
    )
    samples = list(
        OnlineSample.objects.for_org(room.org_id)
        .filter(room=room)
        .order_by("-at")
        .values_list("at", "online")[:120]
    )
    return {
        "room": room.pk,
        "status": room.status,
        "online": online,
        "peak_online": peak,
        "unique_viewers": unique,
        "avg_watch_seconds": round(float(watch or 0), 1),
        "likes": int(likes or by_type.get("like", 0) or 0),
        "chats": by_type.get("chat", 0),
        "claims": CouponClaim.objects.for_org(room.org_id).filter(coupon__room=room).count(),
        "product_clicks": by_type.get("product.click", 0),
        "reservations": room.reservations.count(),
        "new_leads": new_leads,
        "online_series": [{"at": at.isoformat(), "online": n} for at, n in reversed(samples)],
    }


def online_sample_live_rooms() -> int:
    """Periodic: record the online count of every live room (the console's chart)."""
    now = timezone.now()
    rows = [
        OnlineSample(org_id=org_id, room_id=pk, at=now, online=presence_bridge.online_count(pk))
        for pk, org_id in Room.unscoped.filter(status=RoomStatus.LIVE).values_list("pk", "org_id")
    ]
    OnlineSample.unscoped.bulk_create(rows)
    return len(rows)
