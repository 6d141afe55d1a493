"""Workspace figures: the score distribution and the lead lifecycle funnel."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.db.models import Count, Exists, F, OuterRef, Q
from django.db.models.functions import Floor, TruncWeek

from crm import rooms
from crm.models import Event, LeadStatus, ScoreHistory
from crm.selectors.leads import live_contacts
from crm.services.leads import top_grade


def score_distribution(org_id: int, bucket: int = 10) -> dict:
    """Histogram of scores (buckets of ``bucket`` points) and counts per grade."""

    qs = live_contacts(org_id)
    buckets = (
        qs.filter(score__isnull=False)
        .annotate(b=Floor(F("score") * 1.0 / bucket))
        .values("b")
        .annotate(n=Count("id"))
        .order_by("b")
    )
    grades = qs.values("grade").annotate(n=Count("id")).order_by("grade")
    return {
        "bucket": bucket,
        "histogram": [{"from": int(r["b"]) * bucket, "count": r["n"]} for r in buckets],
        "grades": {r["grade"] or "-": r["n"] for r in grades},
        "unscored": qs.filter(score__isnull=True).count(),
    }


# The lead lifecycle funnel (docs/crm.md "漏斗"): what counts as each stage, from recorded data.
FUNNEL_INTERACTIONS = ("chat", "like", "follow", "share", "product.click", "coupon.claim")
FUNNEL_PURCHASES = ("order", "coupon.redeem")
FUNNEL_BY = ("week", "room")


def _rate(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def lead_funnel(*, org_id: int, by: str, limit: int = 12) -> dict:
    """Viewer → engaged → hot → customer per cohort, newest ``limit`` cohorts first.

    A cohort is a room (``by="room"``) or a week starting Monday in Asia/Shanghai
    (``by="week"``) of ``room.join`` events. Within it, each live contact counts once per stage
    it reached, and only if it reached every stage before (so each conversion is at most 100 %):
    viewer = joined; engaged = an interaction (FUNNEL_INTERACTIONS) in a room it joined there;
    hot = has the organisation's top grade now, or reached it (ScoreHistory) at or after such a
    join; customer = an order or coupon redemption at or after such a join, or status won.
    One aggregate query, whatever the number of contacts."""

    if by not in FUNNEL_BY:
        raise ValueError(by)
    hot = top_grade(org_id)
    events = Event.objects.for_org(org_id)
    joins = (
        events.filter(
            type="room.join",
            room_id__isnull=False,
            contact__merged_into__isnull=True,
            contact__erased_at__isnull=True,
        )
        .annotate(
            cohort=TruncWeek("occurred_at", tzinfo=ZoneInfo("Asia/Shanghai"))
            if by == "week"
            else F("room_id")
        )
        .alias(
            engaged_there=Exists(
                events.filter(
                    contact_id=OuterRef("contact_id"),
                    room_id=OuterRef("room_id"),
                    type__in=FUNNEL_INTERACTIONS,
                )
            ),
            hot_since=Exists(
                ScoreHistory.objects.for_org(org_id).filter(
                    contact_id=OuterRef("contact_id"),
                    grade=hot,
                    created_at__gte=OuterRef("occurred_at"),
                )
            )
            if hot
            else Exists(ScoreHistory.objects.none()),
            bought_since=Exists(
                events.filter(
                    contact_id=OuterRef("contact_id"),
                    type__in=FUNNEL_PURCHASES,
                    occurred_at__gte=OuterRef("occurred_at"),
                )
            ),
        )
    )
    engaged = Q(engaged_there=True)
    hot_q = engaged & (Q(hot_since=True) | Q(contact__grade=hot)) if hot else Q(pk__in=[])
    customer = hot_q & (Q(bought_since=True) | Q(contact__status=LeadStatus.WON))
    rows = (
        joins.values("cohort")
        .annotate(
            viewers=Count("contact_id", distinct=True),
            engaged=Count("contact_id", distinct=True, filter=engaged),
            hot=Count("contact_id", distinct=True, filter=hot_q),
            customers=Count("contact_id", distinct=True, filter=customer),
        )
        .order_by("-cohort")[:limit]
    )
    rows = list(rows)
    titles: dict[int, str] = {}
    if by == "room" and rows and rooms.room_titles:
        titles = rooms.room_titles.get()(org_id, [r["cohort"] for r in rows])
    out = []
    for r in rows:
        key = r["cohort"]
        out.append(
            {
                "cohort": key.date().isoformat() if by == "week" else str(key),
                "title": titles.get(key) if by == "room" else None,
                "viewers": r["viewers"],
                "engaged": r["engaged"],
                "hot": r["hot"],
                "customers": r["customers"],
                "engaged_rate": _rate(r["engaged"], r["viewers"]),
                "hot_rate": _rate(r["hot"], r["engaged"]),
                "customer_rate": _rate(r["customers"], r["hot"]),
                "overall_rate": _rate(r["customers"], r["viewers"]),
            }
        )
    return {"by": by, "hot_grade": hot, "rows": out}
