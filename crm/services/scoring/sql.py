# ruff: noqa: S608 - SQL text is built from compiled conditions (crm.conditions) and integer
# rule parameters; every user-supplied value travels as a query parameter.
"""The rule language in SQL, shared by both bulk writers (``bulk_pg``, ``bulk_sqlite``): one
``SELECT`` giving each contact of a chunk its points per rule, the same numbers as
``rules.rule_points``."""

from __future__ import annotations

from datetime import datetime

from crm.conditions import (
    JOIN,
    SqlContext,
    aggregates_sql,
    behaviour_leaves,
    compile_sql,
    leaf_key,
)
from crm.models import Consent, ConsentPurpose, Contact
from crm.services.scoring.rules import CompiledRule


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
