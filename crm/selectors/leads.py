"""Reads for the crm app: consent state, segments, the lead pool."""

from __future__ import annotations

from collections.abc import Callable
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.db.models.functions import Floor, TruncWeek

from core import pii
from core.models import AuditLog
from crm import rooms
from crm.conditions import contact_matches, contacts_matching
from crm.models import (
    CONSENT_DEFAULTS,
    Consent,
    ConsentEvent,
    ConsentPurpose,
    Contact,
    ContactIdentity,
    Event,
    IdentityKind,
    LeadStatus,
    Note,
    ScoreHistory,
    ScoringRule,
    Segment,
)
from crm.services.leads import top_grade
from crm.services.scoring import grade_for, scoring_model_for


def consent_granted(contact: Contact, purpose: str) -> bool:
    """Current consent for one purpose (profiling defaults to granted until refused)."""
    granted = (
        Consent.objects.for_org(contact.org_id)
        .filter(contact_id=contact.pk, purpose=purpose)
        .values_list("granted", flat=True)
        .first()
    )
    return CONSENT_DEFAULTS.get(purpose, False) if granted is None else granted


def consent_states(contact: Contact) -> dict[str, dict]:
    """Every purpose with its state, source and time (for the lead detail)."""
    rows = {
        c.purpose: c for c in Consent.objects.for_org(contact.org_id).filter(contact_id=contact.pk)
    }
    out = {}
    for purpose in ConsentPurpose.values:
        row = rows.get(purpose)
        out[purpose] = {
            "granted": row.granted if row else CONSENT_DEFAULTS.get(purpose, False),
            "source": row.source if row else "default" if purpose in CONSENT_DEFAULTS else "",
            "updated_at": row.updated_at if row else None,
        }
    return out


def segment_contacts(segment: Segment) -> QuerySet:
    """The segment's members, compiled to SQL (live: evaluated now)."""
    return contacts_matching(segment.org_id, segment.condition)


def segment_contains(segment: Segment, contact: Contact) -> bool:
    """Whether one contact is in the segment (same semantics as segment_contacts)."""
    if contact.org_id != segment.org_id:
        return False
    return contact_matches(contact, segment.condition)


def live_contacts(org_id: int) -> QuerySet:
    """The lead pool: contacts not merged away and not erased."""
    return Contact.objects.for_org(org_id).filter(merged_into__isnull=True, erased_at__isnull=True)


ORDERINGS = {
    "-score": ["-score", "-id"],
    "score": ["score", "id"],
    "-last_seen_at": ["-last_seen_at", "-id"],
    "-created_at": ["-created_at", "-id"],
    "created_at": ["created_at", "id"],
}


def lead_list(*, org_id: int, filters: dict) -> QuerySet:
    """Lead pool with the workspace's filters. ``filters`` is validated input: grade, owner
    (user id, "me" resolved by the caller, or "none" for the pool), status, segment (a
    Segment of this org), room, tag, identity (any phone/openid/unionid value), q (nickname),
    ordering."""

    qs = live_contacts(org_id).select_related("owner")
    if filters.get("grade"):
        qs = qs.filter(grade=filters["grade"])
    owner = filters.get("owner")
    if owner == "none":
        qs = qs.filter(owner__isnull=True)
    elif owner:
        qs = qs.filter(owner_id=owner)
    if filters.get("status"):
        qs = qs.filter(status=filters["status"])
    if filters.get("segment") is not None:
        qs = qs.filter(pk__in=segment_contacts(filters["segment"]).values("pk"))
    if filters.get("room"):
        qs = qs.filter(
            pk__in=Event.objects.for_org(org_id)
            .filter(room_id=filters["room"])
            .values("contact_id")
        )
    if filters.get("tag"):
        qs = qs.filter(
            pk__in=contacts_matching(
                org_id, {"field": "tags", "op": "contains", "value": filters["tag"]}
            ).values("pk")
        )
    if filters.get("identity"):
        raw = filters["identity"].strip()
        hashes = [pii.lookup_hash(kind, raw) for kind in IdentityKind.values]
        qs = qs.filter(
            pk__in=ContactIdentity.objects.for_org(org_id)
            .filter(value_hash__in=hashes)
            .values("contact_id")
        )
    if filters.get("q"):
        qs = qs.filter(nickname__icontains=filters["q"])
    ordering = ORDERINGS.get(filters.get("ordering") or "-score", ORDERINGS["-score"])
    if ordering[0] == "-score":
        return qs.order_by(F("score").desc(nulls_last=True), "-id")
    return qs.order_by(*ordering)


# Other apps add their entries to a lead's timeline (campaigns: the messages sent to the
# lead), registered at start-up so crm never imports them (apps depend one way).
_timeline_sources: list[Callable[[Contact, int], list[dict]]] = []


def timeline_source(fn: Callable[[Contact, int], list[dict]]):
    """Register ``fn(contact, limit) -> [{"kind", "type", "at", ...}]`` for lead_timeline."""
    _timeline_sources.append(fn)
    return fn


def lead_timeline(contact: Contact, limit: int = 100) -> list[dict]:
    """Events, notes, consent decisions, score changes, changes of owner and status and what
    other apps registered (``timeline_source``: the messages sent), newest first."""

    items = []
    for e in (
        Event.objects.for_org(contact.org_id)
        .filter(contact_id=contact.pk)
        .order_by("-occurred_at")[:limit]
    ):
        items.append(
            {
                "kind": "event",
                "type": e.type,
                "at": e.occurred_at,
                "room": e.room_id,
                "value": e.value,
                "props": e.props,
            }
        )
    for n in (
        Note.objects.for_org(contact.org_id)
        .filter(contact_id=contact.pk)
        .select_related("author")[:limit]
    ):
        items.append(
            {
                "kind": "note",
                "type": "note",
                "at": n.created_at,
                "body": n.body,
                "author": n.author.username if n.author else "",
            }
        )
    for c in ConsentEvent.objects.for_org(contact.org_id).filter(contact_id=contact.pk)[:limit]:
        items.append(
            {
                "kind": "consent",
                "type": f"consent.{c.action}",
                "at": c.at,
                "purpose": c.purpose,
                "source": c.source,
            }
        )
    for h in (
        ScoreHistory.objects.for_org(contact.org_id)
        .filter(contact_id=contact.pk)
        .order_by("-created_at")[:limit]
    ):
        items.append(
            {
                "kind": "score",
                "type": "score",
                "at": h.created_at,
                "score": h.score,
                "grade": h.grade,
                "old_score": h.old_score,
                "reason": h.reason,
            }
        )
    items += _owner_changes(contact, limit)
    items += _profile_changes(contact, limit)
    items += _status_changes(contact, limit)
    for source in _timeline_sources:
        items += source(contact, limit)
    items.sort(key=lambda x: x["at"], reverse=True)
    return items[:limit]


def _owner_changes(contact: Contact, limit: int) -> list[dict]:
    """Changes of owner from the audit log (crm.services.leads.lead_owner_audit)."""

    rows = list(
        AuditLog.objects.for_org(contact.org_id)
        .filter(action="lead.owner_change", target_type="contact", target_id=str(contact.pk))
        .select_related("actor")
        .order_by("-created_at")[:limit]
    )
    user_ids = {r.detail.get(k) for r in rows for k in ("from", "to")} - {None}
    names = dict(get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "username"))
    return [
        {
            "kind": "owner",
            "type": "owner",
            "at": r.created_at,
            "from": names.get(r.detail.get("from"), ""),
            "to": names.get(r.detail.get("to"), ""),
            "reason": r.detail.get("reason", ""),
            "actor": r.actor.username if r.actor else "",
        }
        for r in rows
    ]


def _status_changes(contact: Contact, limit: int) -> list[dict]:
    """Changes of lead status from the audit log (crm.services.leads.lead_update)."""

    rows = (
        AuditLog.objects.for_org(contact.org_id)
        .filter(action="lead.status_change", target_type="contact", target_id=str(contact.pk))
        .select_related("actor")
        .order_by("-created_at")[:limit]
    )
    return [
        {
            "kind": "status",
            "type": "status",
            "at": r.created_at,
            "from": r.detail.get("from", ""),
            "to": r.detail.get("to", ""),
            "actor": r.actor.username if r.actor else "",
        }
        for r in rows
    ]


def _profile_changes(contact: Contact, limit: int) -> list[dict]:
    """Profile edits (crm.services.leads.lead_profile_update): which fields, by whom. The
    re-score they caused is the score item with reason "profile" beside it."""
    rows = (
        AuditLog.objects.for_org(contact.org_id)
        .filter(action="lead.profile_change", target_type="contact", target_id=str(contact.pk))
        .select_related("actor")
        .order_by("-created_at")[:limit]
    )
    return [
        {
            "kind": "profile",
            "type": "profile",
            "at": r.created_at,
            "fields": r.detail.get("fields", []),
            "actor": r.actor.username if r.actor else "",
        }
        for r in rows
    ]


def score_breakdown_named(contact: Contact) -> list[dict]:
    """The stored breakdown with rule names: [{"rule", "name", "points"}], biggest first."""

    breakdown = contact.score_breakdown or {}
    if not isinstance(breakdown, dict) or not breakdown:
        return []
    names = dict(
        ScoringRule.objects.for_org(contact.org_id)
        .filter(pk__in=[int(k) for k in breakdown])
        .values_list("pk", "name")
    )
    rows = [
        {"rule": int(k), "name": names.get(int(k), f"#{k}"), "points": v}
        for k, v in breakdown.items()
    ]
    return sorted(rows, key=lambda r: -abs(r["points"]))


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


def scoring_rule_preview(*, rule, condition: dict, points: int, is_active: bool = True) -> dict:
    """What saving ``rule`` with this condition, points and on/off would do once re-scored:
    how many scored leads match, and how many would change grade (up, down). Each lead's
    stored score is taken with this rule's stored points replaced by the edited rule's (a
    preview: caps and decay of the rule aside, the re-score decides). ``condition`` must be
    valid (crm.services.scoring.validate_rule)."""

    model = scoring_model_for(rule.org_id)
    scored = live_contacts(rule.org_id).filter(score__isnull=False)
    matching = set(
        contacts_matching(rule.org_id, condition)
        .filter(score__isnull=False)
        .values_list("pk", flat=True)
    )
    key = str(rule.pk)
    up = down = 0
    rows = scored.values_list("pk", "score", "grade", "score_breakdown")
    for pk, score, grade, breakdown in rows.iterator(chunk_size=2000):
        old = breakdown.get(key, 0) if isinstance(breakdown, dict) else 0
        new = points if is_active and pk in matching else 0
        if new == old:
            continue
        if grade_for(score - old + new, model) != grade:
            if new > old:
                up += 1
            else:
                down += 1
    return {"matching": len(matching), "moved": up + down, "moved_up": up, "moved_down": down}


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
