# ruff: noqa: S608 - SQL text is built from compiled conditions (crm.conditions) and integer
# rule parameters; every user-supplied value travels as a query parameter.
"""The bulk path's PostgreSQL writer: one ``UPDATE … FROM (SELECT …)`` per chunk that writes
only the rows whose score, grade or breakdown changed, appends their history and returns the
grade changes."""

from __future__ import annotations

from datetime import datetime

from django.db import connection, transaction

from crm.conditions import contacts_filter_sql
from crm.models import Contact, ScoreHistory, ScoringModel
from crm.services.scoring.rules import thresholds
from crm.services.scoring.sql import scores_select_sql


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


def chunk_pg(**kwargs) -> tuple[int, list[GradeChange]]:
    """(rows changed, grade changes) of one chunk, in its own transaction."""
    sql, params = chunk_update_sql(**kwargs)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return rows[0][0], [(cid, old, new) for _n, cid, old, new in rows if cid is not None]
