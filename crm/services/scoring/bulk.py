# ruff: noqa: S608 - SQL text is built from compiled conditions (crm.conditions) and integer
# rule parameters; every user-supplied value travels as a query parameter.
"""The scoring engine: one rule semantics, two paths that must agree.

- ``contact_rescore`` evaluates the rules in Python for one contact (after each event,
  within seconds: crm.tasks.contact_after_event_task);
- ``contacts_rescore`` gives a batch of contacts (the real-time hub's recorded batches) the
  per-contact outcome — history reason per contact, every grade change announced — through
  the bulk path's SQL restricted to their ids;
- ``org_rescore`` re-scores a whole organisation set-based: per chunk of contact ids one
  ``UPDATE … FROM (SELECT …)`` whose SELECT joins ONE grouped pass over the chunk's events,
  writes only rows whose score, grade or breakdown changed and appends their history. Each
  chunk is its own short transaction, so no row lock lives longer than a chunk (< 1 s).

A rule gives ``points`` when its condition holds. With ``max_points`` a condition that is a
single ``count`` aggregate gives points per event (``points × count``), and any rule's
points are clipped to ±max_points. With ``half_life_days`` (a condition with exactly one
behaviour aggregate) the points decay with the whole days since the latest matching event:
``floor(p × 0.5^(days / half_life) + 0.5)``. The breakdown is ``{rule_id: points}`` of the
non-zero rules; the score is its sum; the grade comes from the model's thresholds. A person
who refused profiling has no score, no grade and no breakdown.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection, models, transaction
from django.utils import timezone

from core.errors import DomainError
from core.staff_events import send_staff_event_on_commit
from crm.conditions import (
    JOIN,
    ContactFacts,
    SqlContext,
    aggregates_sql,
    attribute_fields,
    behaviour_leaves,
    compile_sql,
    contacts_filter_sql,
    evaluate,
    leaf_key,
    validate_condition,
)
from crm.models import (
    Consent,
    ConsentPurpose,
    Contact,
    ScoreHistory,
    ScoringModel,
    ScoringRule,
)

log = logging.getLogger(__name__)

_grade_listeners: list[Callable] = []


def on_grade_changed(fn: Callable) -> Callable:
    """Register ``fn(contact, old_grade, new_grade)``, called after commit whenever the
    per-contact path (``contact_rescore``, ``contacts_rescore``) moves a lead to another
    grade, and — from background batches after each
    chunk commits — whenever a bulk re-score lifts a lead into a higher grade."""
    _grade_listeners.append(fn)
    return fn


class InvalidRule(DomainError):
    code = "invalid_rule"


@dataclass(frozen=True)
class CompiledRule:
    id: int
    name: str
    points: int
    condition: dict
    max_points: int | None
    half_life_days: float | None
    per_event: bool  # points × count of the single count aggregate

    @classmethod
    def of(cls, rule: ScoringRule) -> CompiledRule:
        validate_rule(
            condition=rule.condition,
            max_points=rule.max_points,
            half_life_days=rule.half_life_days,
        )
        cond = rule.condition
        per_event = rule.max_points is not None and "event" in cond and cond["agg"] == "count"
        return cls(
            id=rule.pk,
            name=rule.name,
            points=rule.points,
            condition=cond,
            max_points=rule.max_points,
            half_life_days=rule.half_life_days,
            per_event=per_event,
        )


def validate_rule(
    *, condition, max_points: int | None = None, half_life_days: float | None = None
) -> None:
    """ConditionError / InvalidRule (both 400) for a rule the engine cannot evaluate."""
    validate_condition(condition)
    circular = sorted(attribute_fields(condition) & {"score", "grade"})
    if circular:
        raise InvalidRule(
            f"a scoring rule cannot depend on '{circular[0]}' (it computes it)",
            fields={"condition": [f"'{circular[0]}' is what the rules compute"]},
        )
    if max_points is not None and max_points < 0:
        raise InvalidRule("max_points must be ≥ 0", fields={"max_points": ["≥ 0"]})
    if half_life_days is not None:
        if not (isinstance(half_life_days, int | float) and 0 < half_life_days <= 3650):
            raise InvalidRule(
                "half_life_days must be in (0, 3650]", fields={"half_life_days": ["(0, 3650]"]}
            )
        if len({leaf_key(leaf) for leaf in behaviour_leaves(condition)}) != 1:
            raise InvalidRule(
                "half_life_days needs a condition with exactly one event aggregate",
                fields={"half_life_days": ["needs exactly one event aggregate in the condition"]},
            )


# --- the model -----------------------------------------------------------------------------


def scoring_model_for(org_id: int) -> ScoringModel:
    model = ScoringModel.objects.for_org(org_id).first()
    if model is None:
        model, _ = ScoringModel.objects.for_org(org_id).get_or_create(org_id=org_id)
    return model


def active_rules(org_id: int) -> list[CompiledRule]:
    return [
        CompiledRule.of(rule)
        for rule in ScoringRule.objects.for_org(org_id).filter(is_active=True).order_by("id")
    ]


def thresholds(model: ScoringModel) -> list[tuple[int, str]]:
    return sorted(((int(g["min"]), str(g["grade"])) for g in model.grades), reverse=True)


def grade_for(score: int | None, model: ScoringModel) -> str:
    if score is None:
        return ""
    for minimum, grade in thresholds(model):
        if score >= minimum:
            return grade
    return model.fallback_grade


def decay_days(now: datetime, latest: datetime) -> int:
    """Whole days between two instants on whole seconds (the SQL path computes the same)."""
    return max(0, (math.floor(now.timestamp()) - math.floor(latest.timestamp())) // 86400)


def rule_points(rule: CompiledRule, contact: Contact, now: datetime, facts: ContactFacts) -> int:
    """The points one rule gives one contact (Python path)."""
    if not evaluate(rule.condition, contact, now, facts):
        return 0
    points = rule.points
    if rule.per_event:
        count, _ = facts.aggregate(rule.condition, now)
        points = rule.points * int(count)
    if rule.max_points is not None:
        points = max(-rule.max_points, min(rule.max_points, points))
    if rule.half_life_days:
        (leaf,) = {leaf_key(x): x for x in behaviour_leaves(rule.condition)}.values()
        _, latest = facts.aggregate(leaf, now)
        if latest is not None:
            factor = 0.5 ** (decay_days(now, latest) / float(rule.half_life_days))
            points = math.floor(points * factor + 0.5)
    return int(points)


def compute_score(
    contact: Contact,
    *,
    rules: list[CompiledRule],
    model: ScoringModel,
    now: datetime,
    facts: ContactFacts,
) -> tuple[int | None, str, dict]:
    if not facts.consent(ConsentPurpose.PROFILING):
        return None, "", {}
    breakdown = {}
    for rule in rules:
        points = rule_points(rule, contact, now, facts)
        if points:
            breakdown[str(rule.id)] = points
    score = sum(breakdown.values())
    return score, grade_for(score, model), breakdown


# --- per-contact path ----------------------------------------------------------------------


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
        from crm.models import Event

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


def _facts_for(contact: Contact, rules: list[CompiledRule], now: datetime) -> ContactFacts:
    """The facts the per-contact path evaluates ``contact`` with (same loader)."""
    return contact_with_facts(org_id=contact.org_id, contact_id=contact.pk, rules=rules, now=now)[1]


# Per-process memo of (model, compiled rules) per organisation for the per-event path. Rule
# and model saves clear it in this process (signals below); other processes pick a change up
# within RULES_TTL seconds — and a rule change is followed by a bulk re-score anyway.
RULES_TTL = 5.0
_rules_memo: dict[int, tuple[float, ScoringModel, list[CompiledRule]]] = {}


def model_and_rules(org_id: int) -> tuple[ScoringModel, list[CompiledRule]]:
    hit = _rules_memo.get(org_id)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1], hit[2]
    model, rules = scoring_model_for(org_id), active_rules(org_id)
    _rules_memo[org_id] = (time.monotonic() + RULES_TTL, model, rules)
    return model, rules


def forget_rules(org_id: int | None = None) -> None:
    if org_id is None:
        _rules_memo.clear()
    else:
        _rules_memo.pop(org_id, None)


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
    score, grade, breakdown = compute_score(contact, rules=rules, model=model, now=now, facts=facts)
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
        _emit_grade_changed(contact, old_grade, grade)
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


def _emit_grade_changed(contact: Contact, old_grade: str, new_grade: str) -> None:
    if contact.owner_id:
        send_staff_event_on_commit(
            org_id=contact.org_id,
            user_id=contact.owner_id,
            type="lead.grade_changed",
            data={"contact": contact.pk, "old_grade": old_grade, "grade": new_grade},
        )

    def fire() -> None:
        for fn in list(_grade_listeners):
            try:
                fn(contact, old_grade, new_grade)
            except Exception:
                log.exception("grade listener %r failed for contact %s", fn, contact.pk)

    transaction.on_commit(fire)


# --- bulk path -----------------------------------------------------------------------------


def _days_sql(latest: str, vendor: str) -> tuple[str, bool]:
    """(SQL for decay_days(now, latest) with one ``%s`` for now, uses-now-param)."""
    if vendor == "postgresql":
        return (
            f"GREATEST(0, (FLOOR(EXTRACT(EPOCH FROM %s::timestamptz)) "
            f"- FLOOR(EXTRACT(EPOCH FROM {latest})))::bigint / 86400)",
            True,
        )
    # SQLite: '%s' is strftime's epoch format, escaped from the parameter style.
    return (
        f"MAX(0, (CAST(strftime('%%s', %s) AS INTEGER) "
        f"- CAST(strftime('%%s', {latest}) AS INTEGER)) / 86400)",
        True,
    )


def rule_sql(rule: CompiledRule, ctx: SqlContext) -> tuple[str, list]:
    """``CASE WHEN cond THEN points … ELSE 0 END`` for one rule (JOIN mode columns a.b<n>)."""
    cond_sql, params = compile_sql(rule.condition, ctx)
    points_sql, pparams = str(int(rule.points)), []
    if rule.per_event:
        n = ctx.aggregate_index(rule.condition)
        points_sql = f"({int(rule.points)} * COALESCE({ctx.agg_alias}.b{n}, 0))"
    if rule.max_points is not None:
        m = int(rule.max_points)
        points_sql = (
            f"(CASE WHEN {points_sql} > {m} THEN {m} WHEN {points_sql} < {-m} THEN {-m} "
            f"ELSE {points_sql} END)"
        )
    if rule.half_life_days:
        (leaf,) = {leaf_key(x): x for x in behaviour_leaves(rule.condition)}.values()
        n = ctx.aggregate_index(leaf)
        ctx.latest.add(n)
        days, _ = _days_sql(f"{ctx.agg_alias}.l{n}", ctx.vendor)
        half = repr(float(rule.half_life_days))
        decayed = (
            f"FLOOR({points_sql} * POWER(CAST(0.5 AS DOUBLE PRECISION), "
            f"CAST({days} AS DOUBLE PRECISION) / CAST({half} AS DOUBLE PRECISION)) + 0.5)"
        )
        points_sql = f"COALESCE({decayed}, {points_sql})"
        pparams = [ctx.dt(ctx.now)]
    return f"(CASE WHEN {cond_sql} THEN CAST({points_sql} AS INTEGER) ELSE 0 END)", (
        params + pparams
    )


def scores_select_sql(
    *,
    org_id: int,
    rules: list[CompiledRule],
    now: datetime,
    contact_range: tuple[int, int] | None = None,
    contact_ids: list[int] | None = None,
) -> tuple[str, list]:
    """SELECT id, old score/grade/breakdown, refused, r0..rn for one chunk of contacts: those
    in ``contact_range`` [lo, hi) (a bulk run) or those of ``contact_ids`` (a batch), exactly
    one of them. The two differ only in the filter on the contacts and their events."""
    ctx = SqlContext(
        alias="c",
        now=now,
        org_id=org_id,
        behaviour=JOIN,
        contact_range=contact_range,
        contact_ids=contact_ids,
    )
    cols, params = [], []
    for i, rule in enumerate(rules):
        sql, p = rule_sql(rule, ctx)
        cols.append(f"{sql} AS r{i}")
        params += p
    join, jparams = "", []
    if ctx.aggregates:
        leaves: dict[int, dict] = {}
        for rule in rules:
            for leaf in behaviour_leaves(rule.condition):
                leaves.setdefault(ctx.aggregates[leaf_key(leaf)], leaf)
        agg, jparams = aggregates_sql(ctx, leaves)
        join = f"LEFT JOIN ({agg}) a ON a.contact_id = c.id"
    consent = Consent._meta.db_table
    refused = (
        f"EXISTS (SELECT 1 FROM {consent} k WHERE k.contact_id = c.id "
        f"AND k.purpose = %s AND NOT k.granted)"
    )
    table = Contact._meta.db_table
    select_cols = ", ".join(
        ["c.id", "c.score AS old_score", "c.grade AS old_grade", "c.score_breakdown AS old_bd"]
        + [f"{refused} AS refused"]
        + cols
    )
    only, oparams = ctx.contacts_filter("c.id")
    sql = (
        f"SELECT {select_cols} FROM {table} c {join} "
        f"WHERE c.org_id = %s{only} "
        f"AND c.merged_into_id IS NULL AND c.erased_at IS NULL"
    )
    return sql, [ConsentPurpose.PROFILING.value, *params, *jparams, org_id, *oparams]


def _grade_case(model: ScoringModel, total: str) -> str:
    parts = [f"WHEN {total} >= {int(m)} THEN %s" for m, _g in thresholds(model)]
    if not parts:
        return "%s"
    return f"(CASE {' '.join(parts)} ELSE %s END)"


def _grade_params(model: ScoringModel) -> list:
    return [g for _m, g in thresholds(model)] + [model.fallback_grade]


def chunk_update_sql(
    *,
    org_id: int,
    model: ScoringModel,
    rules,
    now: datetime,
    contact_range: tuple[int, int] | None = None,
    reason: str = "",
    reasons: dict[int, str] | None = None,
    every_grade_change: bool = False,
) -> tuple[str, list]:
    """PostgreSQL: one statement re-scoring the contacts of ``contact_range`` [lo, hi) with
    history reason ``reason`` (a bulk run), or exactly the keys of ``reasons`` (id → history
    reason: a batch), and appending their history. Returns crossings from a grade, or with
    ``every_grade_change`` every change of grade (first gradings included, as the
    per-contact path announces them)."""
    ids = list(reasons) if reasons is not None else None
    select, params = scores_select_sql(
        org_id=org_id, rules=rules, now=now, contact_range=contact_range, contact_ids=ids
    )
    only, oparams = contacts_filter_sql("u.id", contact_range=contact_range, contact_ids=ids)
    n = len(rules)
    total = " + ".join(f"s.r{i}" for i in range(n)) or "0"
    pairs = ", ".join(f"'{r.id}', NULLIF(s.r{i}, 0)" for i, r in enumerate(rules))
    bd = f"jsonb_strip_nulls(jsonb_build_object({pairs}))" if rules else "'{}'::jsonb"
    table = Contact._meta.db_table
    history = ScoreHistory._meta.db_table
    crossing = "" if every_grade_change else " AND old_grade <> ''"
    reason_sql, reason_params, reason_join, join_params = "%s", [reason[:32]], "", []
    if reasons is not None:
        reason_sql, reason_params = "x.reason", []
        reason_join = "JOIN unnest(%s::bigint[], %s::text[]) AS x(id, reason) ON x.id = upd.id"
        join_params = [ids, [reasons[i][:32] for i in ids]]
    sql = f"""
        WITH s AS MATERIALIZED ({select}),
        t AS MATERIALIZED (
            SELECT s.id, s.old_score, s.old_grade, s.old_bd,
                   CASE WHEN s.refused THEN NULL ELSE ({total}) END AS total,
                   CASE WHEN s.refused THEN '{{}}'::jsonb ELSE {bd} END AS bd,
                   s.refused
            FROM s
        ),
        g AS MATERIALIZED (
            SELECT t.*, CASE WHEN t.refused THEN '' ELSE {_grade_case(model, "t.total")} END
                   AS grade
            FROM t
        ),
        upd AS (
            UPDATE {table} AS u
            SET score = g.total, grade = g.grade, score_breakdown = g.bd, scored_at = %s
            FROM g
            WHERE u.id = g.id AND {only}
              AND (u.score IS DISTINCT FROM g.total OR u.grade <> g.grade
                                   OR u.score_breakdown IS DISTINCT FROM g.bd)
            RETURNING u.id, g.total, g.grade, g.old_score, g.old_grade
        ),
        hist AS (
            INSERT INTO {history}
                (org_id, contact_id, score, grade, old_score, old_grade, reason, created_at,
                 updated_at)
            SELECT %s, upd.id, upd.total, upd.grade, upd.old_score, upd.old_grade, {reason_sql},
                   %s, %s
            FROM upd {reason_join}
        )
        SELECT n.total, g.id, g.old_grade, g.grade
        FROM (SELECT count(*) AS total FROM upd) n
        LEFT JOIN (
            -- Only crossings from a grade unless asked: first gradings are not announced by
            -- bulk runs (see _enqueue_upgrades), so an org's first scoring ships no rows back.
            SELECT id, old_grade, grade FROM upd WHERE grade <> old_grade{crossing}
        ) g ON TRUE
    """
    return sql, [
        *params,
        *_grade_params(model),
        now,
        *oparams,
        org_id,
        *reason_params,
        now,
        now,
        *join_params,
    ]


GradeChange = tuple[int, str, str]  # (contact id, old grade, new grade)


def _chunk_pg(**kwargs) -> tuple[int, list[GradeChange]]:
    """(rows changed, grade changes) of one chunk, in its own transaction."""
    sql, params = chunk_update_sql(**kwargs)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return rows[0][0], [(cid, old, new) for _n, cid, old, new in rows if cid is not None]


def _chunk_portable(
    *,
    org_id: int,
    model: ScoringModel,
    rules,
    now: datetime,
    contact_range: tuple[int, int] | None = None,
    reason: str = "",
    reasons: dict[int, str] | None = None,
    every_grade_change: bool = False,
) -> tuple[int, list[GradeChange]]:
    """Same SELECT, the write done row-set-wise from Python (SQLite: no UPDATE … FROM with
    JSON building). Same arguments as ``chunk_update_sql``."""
    ids = list(reasons) if reasons is not None else None
    select, params = scores_select_sql(
        org_id=org_id, rules=rules, now=now, contact_range=contact_range, contact_ids=ids
    )
    changed, history = [], []
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(select, params)
            rows = cursor.fetchall()
        for row in rows:
            cid, old_score, old_grade, old_bd, refused = row[:5]
            points = row[5:]
            if refused:
                score, grade, bd = None, "", {}
            else:
                bd = {str(r.id): int(p) for r, p in zip(rules, points, strict=True) if p}
                score = sum(bd.values())
                grade = grade_for(score, model)
            old_bd = Contact._meta.get_field("score_breakdown").from_db_value(
                old_bd, None, connection
            )
            if score == old_score and grade == old_grade and bd == (old_bd or {}):
                continue
            changed.append(Contact(pk=cid, score=score, grade=grade, score_breakdown=bd))
            history.append(
                ScoreHistory(
                    org_id=org_id,
                    contact_id=cid,
                    score=score,
                    grade=grade,
                    old_score=old_score,
                    old_grade=old_grade,
                    reason=(reasons[cid] if reasons is not None else reason)[:32],
                )
            )
        if changed:
            # One prepared UPDATE run over all rows (executemany): Django's bulk_update builds
            # a CASE per field per row, and resolving those expressions cost seconds of CPU
            # for a few thousand rows (a join storm's batch).
            meta = Contact._meta
            fields = [meta.get_field(f) for f in ("score", "grade", "score_breakdown")]
            sets = ", ".join(f"{connection.ops.quote_name(f.column)} = %s" for f in fields)
            at = meta.get_field("scored_at").get_db_prep_save(now, connection)
            with connection.cursor() as cursor:
                cursor.executemany(
                    f"UPDATE {meta.db_table} SET {sets}, scored_at = %s WHERE id = %s",
                    [
                        [f.get_db_prep_save(getattr(c, f.attname), connection) for f in fields]
                        + [at, c.pk]
                        for c in changed
                    ],
                )
        if history:
            # The same for the history rows (bulk_create: ~110 rows per statement on SQLite).
            hmeta = ScoreHistory._meta
            names = ("org_id", "contact_id", "score", "grade", "old_score", "old_grade", "reason")
            stamp = hmeta.get_field("created_at").get_db_prep_save(timezone.now(), connection)
            columns = ", ".join([*names, "created_at", "updated_at"])
            with connection.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO {hmeta.db_table} ({columns}) "
                    f"VALUES ({', '.join(['%s'] * (len(names) + 2))})",
                    [[getattr(h, n) for n in names] + [stamp, stamp] for h in history],
                )
    grades = [
        (h.contact_id, h.old_grade, h.grade)
        for h in history
        if h.grade != h.old_grade and (h.old_grade or every_grade_change)
    ]
    return len(changed), grades


def grade_rank(model: ScoringModel) -> dict[str, int]:
    """Grade → rank (higher is better): the fallback grade 0, thresholds upwards; no grade
    (profiling refused) ranks below everything (-1 via ``.get(grade, -1)``)."""
    ranks = {model.fallback_grade: 0}
    for i, (_minimum, grade) in enumerate(sorted(thresholds(model))):
        ranks[grade] = i + 1
    return ranks


# Grade changes of a bulk re-score reach the listeners in background batches of this size: a
# rule edit that lifts 100,000 leads must not run 100,000 callbacks inside the re-score.
GRADE_BATCH = 500


def _enqueue_upgrades(*, org_id: int, model: ScoringModel, changes: list[GradeChange]) -> int:
    """Hand the chunk's crossings into a higher grade to the grade listeners (after commit,
    in batches, as background tasks). Returns how many."""
    from core.tasks import enqueue
    from crm.tasks import grade_changes_notify_task

    ranks = grade_rank(model)
    # A lead without a grade (never scored, profiling refused) is being graded, not crossing
    # a threshold: an organisation's first bulk scoring announces nothing, and the per-event
    # path announces grades as people act.
    ups = [
        [cid, old, new]
        for cid, old, new in changes
        if old and ranks.get(new, -1) > ranks.get(old, -1)
    ]
    for i in range(0, len(ups), GRADE_BATCH):
        enqueue(grade_changes_notify_task, org_id, ups[i : i + GRADE_BATCH])
    return len(ups)


def grade_changes_notify(*, org_id: int, changes: list[list]) -> int:
    """Call the grade listeners (hot-lead routing, journeys, the owner's real-time hint) for a
    batch of ``[contact_id, old_grade, new_grade]`` from a bulk re-score. A lead that moved
    again since (another event, merged, erased) is skipped: its own change speaks for it.
    Returns how many were notified."""
    wanted = {int(cid): (old, new) for cid, old, new in changes}
    contacts = Contact.objects.for_org(org_id).filter(
        pk__in=wanted, merged_into__isnull=True, erased_at__isnull=True
    )
    notified = 0
    for contact in contacts:
        old, new = wanted[contact.pk]
        if contact.grade == new:
            _emit_grade_changed(contact, old, new)
            notified += 1
    return notified


@dataclass
class RescoreResult:
    contacts: int
    changed: int
    chunks: int
    seconds: float
    max_chunk_seconds: float
    upgraded: int = 0  # leads that crossed into a higher grade (listeners notified)

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def org_rescore(
    *,
    org_id: int,
    now: datetime | None = None,
    chunk_size: int = 3_000,
    reason: str = "bulk",
    progress: Callable[[int, int], None] | None = None,
    workers: int = 1,
) -> RescoreResult:
    """Re-score every live contact of an organisation set-based, chunk by chunk (each chunk
    its own transaction: locks are held for one chunk only). ``progress(done, total)`` is
    called after each chunk. ``workers`` > 1 runs chunks on that many connections at once
    (PostgreSQL only)."""
    started = time.perf_counter()
    now = now or timezone.now()
    forget_rules(org_id)
    model = scoring_model_for(org_id)
    rules = active_rules(org_id)
    qs = Contact.objects.for_org(org_id)
    bounds = qs.order_by("id").values_list("id", flat=True)
    first = bounds.first()
    last = qs.order_by("-id").values_list("id", flat=True).first()
    total = qs.count()
    changed = chunks = upgraded = 0
    slowest = 0.0
    if first is not None:
        pg = connection.vendor == "postgresql"
        chunk = _chunk_pg if pg else _chunk_portable
        ranges = [(lo, lo + chunk_size) for lo in range(first, last + 1, chunk_size)]

        def one(bounds: tuple[int, int]) -> tuple[int, float, int]:
            t0 = time.perf_counter()
            n, grades = chunk(
                org_id=org_id,
                model=model,
                rules=rules,
                now=now,
                contact_range=bounds,
                reason=reason,
            )
            seconds = time.perf_counter() - t0
            # The chunk has committed: its upgrades go to the listeners now.
            return n, seconds, _enqueue_upgrades(org_id=org_id, model=model, changes=grades)

        if workers > 1 and pg:
            from concurrent.futures import ThreadPoolExecutor

            from django.db import close_old_connections

            def threaded(bounds):
                try:
                    return one(bounds)
                finally:
                    close_old_connections()
                    connection.close()

            with ThreadPoolExecutor(max_workers=workers) as pool:
                results = pool.map(threaded, ranges)
                for (n, seconds, ups), (_lo, hi) in zip(results, ranges, strict=True):
                    changed += n
                    upgraded += ups
                    slowest = max(slowest, seconds)
                    chunks += 1
                    if progress:
                        progress(min(total, hi - first), total)
        else:
            for bounds in ranges:
                n, seconds, ups = one(bounds)
                changed += n
                upgraded += ups
                slowest = max(slowest, seconds)
                chunks += 1
                if progress:
                    progress(min(total, bounds[1] - first), total)
    return RescoreResult(
        contacts=total,
        changed=changed,
        chunks=chunks,
        seconds=time.perf_counter() - started,
        max_chunk_seconds=slowest,
        upgraded=upgraded,
    )


# A batch's contacts are re-scored set-based, BATCH_IDS ids per statement however scattered
# their ids are (returning viewers are): the statement names its ids, so its pass over the
# events reads theirs only.
BATCH_IDS = 2_000


def _ids_per_statement(*, org_id: int, rules: list[CompiledRule], now: datetime) -> int:
    if connection.vendor == "postgresql":
        return BATCH_IDS  # the ids travel as one array parameter
    # SQLite binds every id, in each place the statement filters by contact, next to the rules'
    # own parameters: stay under the connection's limit.
    from crm.services.events import max_query_params

    def bound(ids: list[int]) -> int:
        return len(scores_select_sql(org_id=org_id, rules=rules, now=now, contact_ids=ids)[1])

    fixed = bound([])
    per_id = bound([0]) - fixed
    return max(1, min(BATCH_IDS, (max_query_params() - fixed) // per_id))


def contacts_rescore(*, org_id: int, reasons: dict[int, str], now: datetime | None = None) -> int:
    """Re-score the given contacts of one organisation (id → history reason) with the same
    outcome as ``contact_rescore(org_id=, contact_id=, reason=)`` for each, set-based: one
    statement per chunk of ``BATCH_IDS`` ids however scattered they are (PostgreSQL; SQLite:
    one read and the bulk writes, chunks kept under its bind-parameter limit), each chunk its
    own transaction. Unknown, foreign, merged and erased ids are left alone. Every grade
    change — first gradings and downgrades included, as the per-contact path announces them —
    goes to the grade listeners once the chunks have committed, in the order of ``reasons``.
    Returns how many contacts changed."""
    if not reasons:
        return 0
    now = now or timezone.now()
    model, rules = model_and_rules(org_id)
    chunk = _chunk_pg if connection.vendor == "postgresql" else _chunk_portable
    changed = 0
    grades: list[GradeChange] = []
    ids = sorted(reasons)
    per_statement = _ids_per_statement(org_id=org_id, rules=rules, now=now)
    for start in range(0, len(ids), per_statement):
        n, chunk_grades = chunk(
            org_id=org_id,
            model=model,
            rules=rules,
            now=now,
            reasons={cid: reasons[cid] for cid in ids[start : start + per_statement]},
            every_grade_change=True,
        )
        changed += n
        grades += chunk_grades
    if grades:
        order = {cid: i for i, cid in enumerate(reasons)}
        grades.sort(key=lambda change: order[change[0]])
        for start in range(0, len(grades), BATCH_IDS):
            part = grades[start : start + BATCH_IDS]
            contacts = Contact.objects.for_org(org_id).in_bulk([cid for cid, _o, _n in part])
            for cid, old, new in part:
                if cid in contacts:
                    _emit_grade_changed(contacts[cid], old, new)
    return changed


def _forget_on_change(sender, instance, **kwargs) -> None:
    forget_rules(instance.org_id)


for _model in (ScoringRule, ScoringModel):
    models.signals.post_save.connect(_forget_on_change, sender=_model)
    models.signals.post_delete.connect(_forget_on_change, sender=_model)


def _forget_new_org(sender, instance, created, **kwargs) -> None:
    # A rolled-back test (or a restored database) may reuse an organisation id.
    if created:
        forget_rules(instance.pk)


models.signals.post_save.connect(_forget_new_org, sender="core.Organization")
