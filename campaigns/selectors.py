"""Reads for the campaigns app that other apps show (registered at start-up)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from campaigns.models import (
    BanditAllocation,
    BanditGoal,
    Campaign,
    Delivery,
    DeliveryStatus,
    SmsReply,
)
from campaigns.services import send_time
from campaigns.services.policy import allowed_hours, policy_for
from crm.models import Event
from crm.selectors import live_contacts, segment_contacts

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
    rows = Delivery.objects.for_org(campaign.org_id).filter(campaign=campaign, status__in=REACHED)
    return rows_credited_ids(
        org_id=campaign.org_id, rows=rows, since=campaign.launched_at, event_types=event_types
    )


def rows_credited_ids(*, org_id: int, rows, since, event_types=CONVERSION_EVENTS):
    """``credited_ids`` for any set of reached delivery ``rows`` (a campaign's, a journey
    step's): the ids of those an event of ``event_types`` since ``since`` is credited to by
    last touch (the person's last click on any message within the window, else the last
    message they received), as a subquery."""
    window = timedelta(days=settings.CAMPAIGNS_CONVERSION_DAYS)
    org_rows = Delivery.objects.for_org(org_id).filter(contact_id=OuterRef("contact_id"))
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
        Event.objects.for_org(org_id)
        .filter(
            type__in=event_types,
            occurred_at__gte=since,
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
    grouped query (``goal_counts``)."""
    if goal in GOAL_EVENTS and not campaign.launched_at:
        return {}
    rows = Delivery.objects.for_org(campaign.org_id).filter(
        campaign=campaign, status__in=REACHED, variant_id__isnull=False
    )
    return goal_counts(
        org_id=campaign.org_id, rows=rows, goal=goal, since=campaign.launched_at, by="variant_id"
    )


def goal_counts(*, org_id: int, rows, goal: str, since, by: str) -> dict:
    """``{rows' <by>: (successes, trials)}`` of reached delivery ``rows`` in ONE grouped
    query — the one rule behind a bandit's arms, for campaigns (by variant) and journey
    steps (by template). Trials are deliveries reached (sent or delivered); a success is a
    click (``Delivery.clicked_at``), a claim or redemption since ``since`` credited to the
    delivery (``rows_credited_ids``, the rule behind ``conversions_credited``), or an SMS
    reply from the delivery's number after it was sent (opt-outs excluded: they are not
    interest)."""
    rows = rows.filter(status__in=REACHED)
    if goal == BanditGoal.CLICK:
        success = Q(clicked_at__isnull=False)
    elif goal in GOAL_EVENTS:
        credited = rows_credited_ids(
            org_id=org_id, rows=rows, since=since, event_types=GOAL_EVENTS[goal]
        )
        success = Q(pk__in=credited)
    elif goal == BanditGoal.REPLY:
        replied = SmsReply.objects.for_org(org_id).filter(
            phone_hash=OuterRef("to_hash"), created_at__gte=OuterRef("sent_at"), is_optout=False
        )
        rows = rows.annotate(replied=Exists(replied))
        success = Q(replied=True)
    else:
        raise ValueError(f"unknown bandit goal {goal!r}")
    grouped = rows.values(by).annotate(successes=Count("pk", filter=success), trials=Count("pk"))
    return {r[by]: (r["successes"], r["trials"]) for r in grouped.order_by()}


def send_time_preview(*, org, segment, channel: str, fallback_hour: int) -> dict:
    """智能节奏's preview for the builder (as Braze's Intelligent Timing shows it): how many
    of the audience (``segment``, or every live contact) fall in each Beijing hour once moved
    into the hours ``channel`` may send in, how many have history at all, and how many have
    enough (``send_time.MIN_HISTORY`` events) to be timed mostly by their own habits. One
    grouped query over the same ``WITH`` clause planning uses."""

    audience = segment_contacts(segment) if segment is not None else live_contacts(org.pk)
    audience_sql, audience_params = audience.order_by().values("id").query.sql_with_params()
    with_sql, with_params = send_time.best_hour_ctes(
        org_id=org.pk, audience=audience, now=timezone.now()
    )
    sql = (
        f"{with_sql}SELECT bh.hour, COUNT(*), "  # noqa: S608 - constant SQL, values bound
        f"SUM(CASE WHEN bh.total >= %s THEN 1 ELSE 0 END) "
        f"FROM ({audience_sql}) a LEFT JOIN bt_best bh ON bh.contact_id = a.id GROUP BY bh.hour"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*with_params, send_time.MIN_HISTORY, *audience_params])
        grouped = cursor.fetchall()
    start, end = allowed_hours(policy_for(org.pk), channel)
    fallback = send_time.nearest_allowed_hour(fallback_hour, start, end)
    counts = [0] * 24
    total = with_history = enough = 0
    for hour, n, n_enough in grouped:
        total += n
        if hour is None:
            counts[fallback] += n
            continue
        with_history += n
        enough += n_enough or 0
        counts[send_time.nearest_allowed_hour(int(hour), start, end)] += n
    return {
        "total": total,
        "with_history": with_history,
        "enough_history": enough,
        "enough_share": round(enough / total, 4) if total else 0.0,
        "min_history": send_time.MIN_HISTORY,
        "fallback_hour": fallback,
        "allowed": [start, end],
        "untimed_pct": send_time.UNTIMED_PCT,
        "hours": [{"hour": h, "count": counts[h]} for h in range(24)],
    }
