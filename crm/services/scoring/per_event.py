# ruff: noqa: S608 - SQL text is built from compiled conditions (crm.conditions) and integer
# rule parameters; every user-supplied value travels as a query parameter.
"""The per-event path: one contact re-scored in Python within seconds of its event
(crm.tasks.contact_after_event_task), its row, consents and events read in one query, its
score written in one statement on PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from crm.conditions import ContactFacts, behaviour_leaves
from crm.models import Consent, Contact, Event, ScoreHistory
from crm.services.scoring.grades import grade_changed_emit
from crm.services.scoring.rules import CompiledRule, model_and_rules, score_compute


def _event_filter(rules: list[CompiledRule], now: datetime) -> tuple[list[str], datetime | None]:
    """(event types the rules aggregate, earliest time that can matter or None)."""
    leaves = [leaf for r in rules for leaf in behaviour_leaves(r.condition)]
    types = sorted({leaf["event"] for leaf in leaves})
    since = None
    if leaves and all(leaf.get("window_days") for leaf in leaves):
        # Only the widest window's events can matter.
        since = now - timedelta(days=max(leaf["window_days"] for leaf in leaves))
    return types, since


def _parse_at(value: str) -> datetime:
    at = datetime.fromisoformat(value)
    # SQLite keeps naive UTC text; PostgreSQL's JSON carries the offset.
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def contact_with_facts(
    *, org_id: int, contact_id: int, rules: list[CompiledRule], now: datetime
) -> tuple[Contact | None, ContactFacts]:
    """The contact row, its consents and the events the rules aggregate, in ONE query (the
    per-event hot path: each round trip costs more than the evaluation itself)."""
    types, since = _event_filter(rules, now)
    pg = connection.vendor == "postgresql"
    agg, row = ("json_agg", "json_build_array") if pg else ("json_group_array", "json_array")
    consents = (
        f"(SELECT {agg}({row}(k.purpose, k.granted)) FROM {Consent._meta.db_table} k "
        f"WHERE k.contact_id = c.id)"
    )
    events, params = "NULL", []
    if types:
        where = f"e.contact_id = c.id AND e.type IN ({', '.join(['%s'] * len(types))})"
        params = list(types)
        if since is not None:
            where += " AND e.occurred_at >= %s"
            params.append(since if pg else connection.ops.adapt_datetimefield_value(since))
        events = (
            f"(SELECT {agg}({row}(e.type, e.occurred_at, e.room_id, e.value)) "
            f"FROM {Event._meta.db_table} e WHERE {where})"
        )
    sql = (
        f"SELECT c.*, {consents} AS facts_consents, {events} AS facts_events "
        f"FROM {Contact._meta.db_table} c WHERE c.id = %s AND c.org_id = %s"
    )
    found = list(Contact.unscoped.raw(sql, [*params, contact_id, org_id]))
    facts = ContactFacts()
    if not found:
        return None, facts
    contact = found[0]
    loaded = [
        json.loads(x) if isinstance(x, str) else (x or [])
        for x in (contact.facts_consents, contact.facts_events)
    ]
    del contact.facts_consents, contact.facts_events
    facts.consents = {purpose: bool(granted) for purpose, granted in loaded[0]}
    facts.events = [
        (type_, _parse_at(at), room_id, value) for type_, at, room_id, value in loaded[1]
    ]
    return contact, facts


def facts_for(contact: Contact, rules: list[CompiledRule], now: datetime) -> ContactFacts:
    """The facts the per-contact path evaluates ``contact`` with (same loader)."""
    return contact_with_facts(org_id=contact.org_id, contact_id=contact.pk, rules=rules, now=now)[1]


def contact_rescore(
    *,
    contact: Contact | None = None,
    org_id: int | None = None,
    contact_id: int | None = None,
    reason: str = "event",
    now: datetime | None = None,
) -> bool:
    """Re-score one contact (an instance, or ``org_id`` + ``contact_id``) with the
    organisation's rules (Python path). Reads the row and its facts fresh in one query; writes only when the score, grade or
    breakdown changed (one statement on PostgreSQL); appends history; notifies grade
    listeners after commit. A given ``contact`` gets the new score. Returns whether anything
    changed."""
    target = contact
    if contact is not None:
        org_id, contact_id = contact.org_id, contact.pk
    now = now or timezone.now()
    model, rules = model_and_rules(org_id)
    contact, facts = contact_with_facts(org_id=org_id, contact_id=contact_id, rules=rules, now=now)
    if contact is None or contact.merged_into_id is not None or contact.erased_at is not None:
        return False
    score, grade, breakdown = score_compute(contact, rules=rules, model=model, now=now, facts=facts)
    if (
        score == contact.score
        and grade == contact.grade
        and breakdown == (contact.score_breakdown or {})
    ):
        return False
    old_score, old_grade = contact.score, contact.grade
    if connection.vendor == "postgresql":
        _write_score_pg(
            contact=contact,
            score=score,
            grade=grade,
            breakdown=breakdown,
            old_score=old_score,
            old_grade=old_grade,
            reason=reason,
            now=now,
        )
    else:
        with transaction.atomic():
            Contact.objects.for_org(contact.org_id).filter(pk=contact.pk).update(
                score=score, grade=grade, score_breakdown=breakdown, scored_at=now
            )
            ScoreHistory.objects.for_org(contact.org_id).create(
                org_id=contact.org_id,
                contact_id=contact.pk,
                score=score,
                grade=grade,
                old_score=old_score,
                old_grade=old_grade,
                reason=reason[:32],
            )
    for changed in (contact, target):
        if changed is not None:
            changed.score, changed.grade = score, grade
            changed.score_breakdown, changed.scored_at = breakdown, now
    if grade != old_grade:
        grade_changed_emit(contact, old_grade, grade)
    return True


def _write_score_pg(
    *, contact, score, grade, breakdown, old_score, old_grade, reason: str, now: datetime
) -> None:
    """The score update and its history row in ONE statement (one round trip)."""
    statement = f"""
        WITH u AS (
            UPDATE {Contact._meta.db_table}
            SET score = %s, grade = %s, score_breakdown = %s::jsonb, scored_at = %s
            WHERE id = %s RETURNING id
        )
        INSERT INTO {ScoreHistory._meta.db_table}
            (org_id, contact_id, score, grade, old_score, old_grade, reason,
             created_at, updated_at)
        SELECT %s, u.id, %s, %s, %s, %s, %s, %s, %s FROM u
    """
    params = [
        score,
        grade,
        json.dumps(breakdown),
        now,
        contact.pk,
        contact.org_id,
        score,
        grade,
        old_score,
        old_grade,
        reason[:32],
        now,
        now,
    ]
    with connection.cursor() as cursor:
        server_binding = connection.settings_dict.get("OPTIONS", {}).get("server_side_binding")
        if not connection.get_autocommit() or server_binding:
            # Inside the caller's transaction its commit decides durability; server-side
            # binding cannot send several statements at once.
            cursor.execute(statement, params)
            return
        # On its own (the per-event path): commit without waiting for the WAL flush. A score
        # is derived from the event log — a crash can lose at most the last few hundred ms of
        # score writes, which the next event or bulk re-score recomputes — and the flush wait
        # was the largest single cost of an event. Sent as one string: still one round trip.
        try:
            cursor.execute(
                f"BEGIN; SET LOCAL synchronous_commit TO OFF; {statement}; COMMIT", params
            )
        except Exception:
            cursor.execute("ROLLBACK")
            raise
