"""Reads for the campaigns app that other apps show (registered at start-up)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce

from campaigns.models import (
    BanditAllocation,
    BanditGoal,
    Campaign,
    Delivery,
    DeliveryStatus,
    SmsReply,
)
from crm.models import Event

# What the campaign results count as a conversion, and which deliveries reached a person.
CONVERSION_EVENTS = ("order", "coupon.claim")
REACHED = (DeliveryStatus.SENT, DeliveryStatus.DELIVERED)


def lead_messages(contact, limit: int) -> list[dict]:
    """The messages sent to one lead, with the text they read, for the lead's timeline
    (``crm.selectors.timeline_source``): one query, newest first."""
    rows = (
        Delivery.objects.for_org(contact.org_id)
        .filter(contact_id=contact.pk, sent_at__isnull=False)
        .exclude(rendered="")
        .select_related("campaign")
        .only("pk", "channel", "status", "sent_at", "rendered", "campaign__name")
        .order_by("-sent_at")[:limit]
    )
    return [
        {
            "kind": "message",
            "type": "message.sent",
            "at": row.sent_at,
            "delivery": row.pk,
            "channel": row.channel,
            "status": row.status,
            "campaign": row.campaign.name if row.campaign_id else "",
            "rendered": row.rendered,
        }
        for row in rows
    ]


def bandit_allocations(*, campaign: Campaign, limit: int = 200) -> list[dict]:
    """An adaptive campaign's allocation history (``campaigns.services.bandit``), oldest
    first: the newest ``limit`` snapshots, each with every copy's successes, trials, share
    and rows assigned."""
    rows = list(
        BanditAllocation.objects.for_org(campaign.org_id)
        .filter(campaign=campaign)
        .order_by("-created_at", "-id")[:limit]
    )
    return [
        {"id": a.pk, "at": a.created_at, "goal": a.goal, "batch_size": a.batch_size, "arms": a.arms}
        for a in reversed(rows)
    ]


def credited_ids(*, campaign: Campaign, event_types=CONVERSION_EVENTS):
    """The ids of the campaign's reached deliveries an event of ``event_types`` is credited
    to (last touch, see ``conversions_credited``), as a subquery."""
    window = timedelta(days=settings.CAMPAIGNS_CONVERSION_DAYS)
    rows = Delivery.objects.for_org(campaign.org_id).filter(campaign=campaign, status__in=REACHED)
    org_rows = Delivery.objects.for_org(campaign.org_id).filter(contact_id=OuterRef("contact_id"))
    when = OuterRef("occurred_at")
    last_click = (
        org_rows.filter(clicked_at__lte=when, clicked_at__gte=when - window)
        .order_by("-clicked_at", "-id")
        .values("id")[:1]
    )
    last_touch = (
        org_rows.filter(status__in=REACHED, sent_at__lte=when, sent_at__gte=when - window)
        .order_by("-sent_at", "-id")
        .values("id")[:1]
    )
    return (
        Event.objects.for_org(campaign.org_id)
        .filter(
            type__in=event_types,
            occurred_at__gte=campaign.launched_at,
            contact_id__in=rows.values("contact_id"),
        )
        .annotate(credit=Coalesce(Subquery(last_click), Subquery(last_touch)))
        .values("credit")
    )


# What each bandit goal counts as a success of a reached delivery: the campaign's own click
# record, or an event credited to the delivery by the same last-touch rule as the results.
GOAL_EVENTS = {
    BanditGoal.CLAIM: ("coupon.claim",),
    BanditGoal.REDEMPTION: ("coupon.redeem",),
}


def goal_counts_by_variant(*, campaign: Campaign, goal: str) -> dict[int, tuple[int, int]]:
    """``{variant_id: (successes, trials)}`` of the campaign's reached deliveries, in ONE
    grouped query. Trials are deliveries reached (sent or delivered); a success is a click
    (``Delivery.clicked_at``), a claim or redemption credited to the delivery
    (``credited_ids``, the rule behind ``conversions_credited``), or an SMS reply from the
    delivery's number after it was sent (opt-outs excluded: they are not interest)."""
    rows = Delivery.objects.for_org(campaign.org_id).filter(
        campaign=campaign, status__in=REACHED, variant_id__isnull=False
    )
    if goal == BanditGoal.CLICK:
        success = Q(clicked_at__isnull=False)
    elif goal in GOAL_EVENTS:
        if not campaign.launched_at:
            return {}
        success = Q(pk__in=credited_ids(campaign=campaign, event_types=GOAL_EVENTS[goal]))
    elif goal == BanditGoal.REPLY:
        replied = SmsReply.objects.for_org(campaign.org_id).filter(
            phone_hash=OuterRef("to_hash"), created_at__gte=OuterRef("sent_at"), is_optout=False
        )
        rows = rows.annotate(replied=Exists(replied))
        success = Q(replied=True)
    else:
        raise ValueError(f"unknown bandit goal {goal!r}")
    grouped = rows.values("variant_id").annotate(
        successes=Count("pk", filter=success), trials=Count("pk")
    )
    return {r["variant_id"]: (r["successes"], r["trials"]) for r in grouped.order_by()}
