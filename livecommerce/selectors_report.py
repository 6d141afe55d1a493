"""战报: the post-broadcast report of one room, read from recorded rows only.

Every figure comes from what the room recorded — online samples, CRM events carrying the
room's id, product clips, coupon claims, chat messages, invites and the contacts the room
brought in. Nothing hand-entered or simulated is mixed in: the demo seed's invented watch
history carries no room id, and demo contacts (``source_detail.demo``) are left out of the
new leads. The recall campaign's uplift comes from the campaigns app (above this one)
through the ``room_report_recall`` hook, computed there by its own campaign statistics.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.db.models import Count, Q
from django.utils import timezone

from core.hooks import Hook
from crm.models import Contact, Event
from livecommerce.models import (
    ChatMessage,
    Coupon,
    CouponClaim,
    OnlineSample,
    ProductClip,
    Room,
    RoomProduct,
)
from livecommerce.services.invites import invite_leaderboard

# fn(*, room) -> dict | None: the recall campaign sent from ``room`` (``source_room``) with
# its uplift against the holdout, or None when there is none. Implemented by the campaigns
# app (campaigns.room_report, CampaignsConfig.ready).
room_report_recall: Hook[Callable[..., dict | None]] = Hook(
    "livecommerce.room_report_recall", single=True
)

# How many local maxima of the online curve are called out as peaks.
PEAKS = 3


def room_report(*, room: Room, now: datetime | None = None) -> dict:
    """The whole 战报 of ``room`` (the caller has checked the reader may see it)."""
    now = now or timezone.now()
    end = room.ended_at or now
    clips = list(
        ProductClip.objects.for_org(room.org_id)
        .filter(room=room)
        .select_related("product")
        .order_by("pinned_at", "pk")
    )
    report = {
        "room": {
            "id": room.pk,
            "title": room.title,
            "status": room.status,
            "started_at": room.started_at,
            "ended_at": room.ended_at,
        },
        "online": _online(room, clips, end),
        "products": _product_funnel(room, clips, end),
        "coupons": _coupon_burn(room),
        "leads": _new_leads(room),
        "invites": invite_leaderboard(org_id=room.org_id, room_id=room.pk),
        "chat": _chat_volume(room),
    }
    recall = room_report_recall.get()(room=room) if room_report_recall else None
    if recall is not None:
        report["recall"] = recall
    return report


def _online(room: Room, clips: list[ProductClip], end: datetime) -> dict:
    """The recorded online samples, the highest local maxima, and the explained spans."""
    samples = list(
        OnlineSample.objects.for_org(room.org_id)
        .filter(room=room)
        .order_by("at", "pk")
        .values_list("at", "online")
    )
    maxima = [
        i
        for i, (_, n) in enumerate(samples)
        if n > 0
        and (i == 0 or n > samples[i - 1][1])
        and (i == len(samples) - 1 or n >= samples[i + 1][1])
    ]
    maxima.sort(key=lambda i: (-samples[i][1], i))
    return {
        "series": [{"at": at, "online": n} for at, n in samples],
        "peak": max((n for _, n in samples), default=0),
        "peaks": [{"at": samples[i][0], "online": samples[i][1]} for i in sorted(maxima[:PEAKS])],
        "explained": [
            {
                "clip": clip.pk,
                "product": clip.product_id,
                "name": clip.product.name,
                "start": clip.pinned_at,
                "end": clip.unpinned_at or end,
            }
            for clip in clips
        ],
    }


def _visits(room: Room, end: datetime) -> dict[int, list[tuple[datetime, datetime]]]:
    """Each contact's visits from the room's join/leave events. Joins and leaves pair by
    counting (two tabs are two joins), so a visit runs from the join that opened it to the
    leave that closed the last tab; a visit never closed runs to the room's end."""
    rows = (
        Event.objects.for_org(room.org_id)
        .filter(room_id=room.pk, type__in=("room.join", "room.leave"))
        .order_by("occurred_at", "pk")
        .values_list("contact_id", "type", "occurred_at")
    )
    depth: dict[int, int] = {}
    since: dict[int, datetime] = {}
    visits: dict[int, list[tuple[datetime, datetime]]] = {}
    for contact_id, kind, at in rows:
        level = depth.get(contact_id, 0)
        if kind == "room.join":
            if level == 0:
                since[contact_id] = at
            depth[contact_id] = level + 1
        elif level > 0:
            depth[contact_id] = level - 1
            if level == 1:
                visits.setdefault(contact_id, []).append((since.pop(contact_id), at))
    for contact_id, start in since.items():
        visits.setdefault(contact_id, []).append((start, max(start, end)))
    return visits


def _product_funnel(room: Room, clips: list[ProductClip], end: datetime) -> list[dict]:
    """Per product, in people: exposed (in the room while it was explained) → clicked its
    link in the room → claimed a coupon while it was explained → redeemed that coupon.
    ``clicks`` is the number of clicks, a person clicking twice counts twice there."""
    spans: dict[int, list[tuple[datetime, datetime]]] = {}
    for clip in clips:
        spans.setdefault(clip.product_id, []).append((clip.pinned_at, clip.unpinned_at or end))
    visits = _visits(room, end)
    items = list(
        RoomProduct.objects.for_org(room.org_id)
        .filter(room=room)
        .select_related("product")
        .order_by("position", "pk")
    )
    products = {item.product_id: item.product.name for item in items}
    for clip in clips:
        products.setdefault(clip.product_id, clip.product.name)
    # One read each for clicks and claims, counted per product here (constant queries
    # however many products the room carried).
    clicks: dict[int, list[int]] = {}
    for contact_id, props in (
        Event.objects.for_org(room.org_id)
        .filter(room_id=room.pk, type="product.click")
        .values_list("contact_id", "props")
    ):
        product_id = (props or {}).get("product")
        if product_id in products:
            clicks.setdefault(product_id, []).append(contact_id)
    claimed: dict[int, set[int]] = {}
    redeemed: dict[int, set[int]] = {}
    for contact_id, product_id, redeemed_at in (
        CouponClaim.objects.for_org(room.org_id)
        .filter(coupon__room=room, clip__isnull=False)
        .values_list("contact_id", "clip__product_id", "redeemed_at")
    ):
        claimed.setdefault(product_id, set()).add(contact_id)
        if redeemed_at is not None:
            redeemed.setdefault(product_id, set()).add(contact_id)
    out = []
    for product_id, name in products.items():
        exposed = sum(
            1
            for contact_visits in visits.values()
            if any(
                v_start < s_end and s_start < v_end
                for v_start, v_end in contact_visits
                for s_start, s_end in spans.get(product_id, [])
            )
        )
        out.append(
            {
                "product": product_id,
                "name": name,
                "explained": len(spans.get(product_id, [])),
                "exposed": exposed,
                "clicks": len(clicks.get(product_id, [])),
                "clicked": len(set(clicks.get(product_id, []))),
                "claimed": len(claimed.get(product_id, ())),
                "redeemed": len(redeemed.get(product_id, ())),
            }
        )
    return out


def _coupon_burn(room: Room) -> list[dict]:
    """Per coupon batch: stock, claims and redemptions counted from the claim rows."""
    coupons = (
        Coupon.objects.for_org(room.org_id)
        .filter(room=room)
        .annotate(
            n_claims=Count("claims"),
            n_redeemed=Count("claims", filter=Q(claims__redeemed_at__isnull=False)),
        )
        .order_by("pk")
    )
    return [
        {
            "coupon": c.pk,
            "name": c.name,
            "kind": c.kind,
            "stock": c.stock,
            "claimed": c.n_claims,
            "redeemed": c.n_redeemed,
            "claim_rate": round(c.n_claims / c.stock, 4) if c.stock else None,
            "redeem_rate": round(c.n_redeemed / c.n_claims, 4) if c.n_claims else None,
        }
        for c in coupons
    ]


def _new_leads(room: Room) -> dict:
    """Contacts the room brought in, by their current grade ("" = not graded yet)."""
    rows = (
        Contact.objects.for_org(room.org_id)
        .filter(source_detail__room=room.pk)
        .exclude(source_detail__has_key="demo")
        .values("grade")
        .annotate(n=Count("pk"))
        .order_by("grade")
    )
    by_grade = [{"grade": r["grade"], "count": r["n"]} for r in rows]
    return {"total": sum(r["count"] for r in by_grade), "by_grade": by_grade}


def _chat_volume(room: Room) -> dict:
    """Messages sent in the room per minute (every message, moderated ones included: the
    volume is how much the audience talked, not what stayed visible)."""
    stamps = (
        ChatMessage.objects.for_org(room.org_id)
        .filter(room=room)
        .order_by("created_at")
        .values_list("created_at", flat=True)
    )
    per_minute: dict[datetime, int] = {}
    for at in stamps:
        minute = at.replace(second=0, microsecond=0)
        per_minute[minute] = per_minute.get(minute, 0) + 1
    return {
        "total": sum(per_minute.values()),
        "series": [{"at": at, "count": n} for at, n in per_minute.items()],
    }
