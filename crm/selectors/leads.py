"""Reads of leads: the lead pool with the workspace's filters, one lead's detail and
timeline, and the rows the lead APIs answer."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.db.models import F, QuerySet
from django.utils import timezone

from core import pii
from core.models import AuditLog, Membership
from crm.conditions import contacts_matching
from crm.models import (
    ConsentEvent,
    Contact,
    ContactIdentity,
    Event,
    IdentityKind,
    Note,
    ScoreHistory,
    ScoringRule,
    Segment,
)
from crm.selectors.consent import consent_states
from crm.selectors.segments import segment_contacts
from crm.selectors.tasks import task_row
from crm.services import privacy
from crm.services.leads import lead_profile_editable


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


def leads_by_ids(*, org_id: int, ids: list[int]) -> list[Contact]:
    """The live leads among ``ids`` (others' and unknown ids are left out)."""
    return list(live_contacts(org_id).filter(pk__in=ids))


def _age(contact: Contact) -> int | None:
    if contact.birth_year is None:
        return None
    return timezone.now().year - contact.birth_year


def lead_row(contact: Contact, phone: str) -> dict:
    """One lead as the lead APIs list it (crm.apis.leads.LeadListOutput), with ``phone`` as
    the caller may see it."""
    return {
        "id": contact.pk,
        "nickname": contact.nickname,
        "gender": contact.gender,
        "age": _age(contact),
        "province": contact.province,
        "city": contact.city,
        "attributes": contact.attributes or {},
        "income_level": contact.income_level,
        "tags": contact.tags or [],
        "phone": phone,
        "owner_id": contact.owner_id,
        "owner_name": contact.owner.username if contact.owner_id else None,
        "status": contact.status,
        "source": contact.source,
        "score": contact.score,
        "grade": contact.grade,
        "lifecycle": contact.lifecycle,
        "rfm": contact.rfm,
        "last_seen_at": contact.last_seen_at,
    }


def lead_rows_masked(contacts) -> list[dict]:
    """Rows of these leads with their phones masked (one query for the phones)."""
    contacts = list(contacts)
    phones = privacy.phones_of(c.pk for c in contacts)
    # A list always masks: revealing is a deliberate, audited act on one lead.
    return [lead_row(c, pii.mask_phone(phones[c.pk]) if c.pk in phones else "") for c in contacts]


def leads_preview(qs: QuerySet) -> dict:
    """How many leads ``qs`` holds and the top ten by score (masked rows)."""
    sample = list(qs.select_related("owner").order_by("-score", "-id")[:10])
    return {"count": qs.count(), "sample": lead_rows_masked(sample)}


def segment_preview(segment: Segment) -> dict:
    """The segment builder's preview of a saved segment (leads_preview)."""
    return leads_preview(segment_contacts(segment))


def condition_preview(*, org_id: int, condition: dict) -> dict:
    """The preview of an unsaved condition; raises ConditionError when it does not parse."""
    return leads_preview(contacts_matching(org_id, condition))


def lead_notes(contact: Contact, limit: int = 50) -> list[dict]:
    return [
        {
            "id": n.pk,
            "body": n.body,
            "author": n.author.username if n.author else "",
            "created_at": n.created_at,
        }
        for n in contact.notes.select_related("author")[:limit]
    ]


def lead_detail(*, contact: Contact, membership: Membership, ip: str | None) -> dict:
    """One lead's page: its row, score breakdown, timeline, consents, notes and tasks. The
    phone is shown as the member may see it; a full phone is audited (``pii.reveal``, by
    crm.services.privacy.phone_for_viewer), so this read writes that one audit row."""
    phone = privacy.phones_of([contact.pk]).get(contact.pk, "")
    shown = privacy.phone_for_viewer(contact=contact, phone=phone, membership=membership, ip=ip)
    row = lead_row(contact, shown)
    row.update(
        score_breakdown=score_breakdown_named(contact),
        timeline=lead_timeline(contact),
        consents=consent_states(contact),
        scored_at=contact.scored_at,
        order_count=contact.order_count,
        order_amount=contact.order_amount,
        phone_revealed=bool(phone) and membership.may_reveal_pii,
        profile_editable=lead_profile_editable(contact=contact, membership=membership),
        notes=lead_notes(contact),
        tasks=[task_row(t) for t in contact.tasks.select_related("assignee")[:50]],
    )
    return row
