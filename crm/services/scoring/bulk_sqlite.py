# ruff: noqa: S608 - SQL text is built from compiled conditions (crm.conditions) and integer
# rule parameters; every user-supplied value travels as a query parameter.
"""The bulk path's SQLite twin of ``bulk_pg``: the same SELECT, the write done row-set-wise from
Python (SQLite has no ``UPDATE … FROM`` with JSON building). Same arguments and answers."""

from __future__ import annotations

from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from crm.models import Contact, ScoreHistory, ScoringModel
from crm.services.scoring.bulk_pg import GradeChange
from crm.services.scoring.rules import grade_for
from crm.services.scoring.sql import scores_select_sql


def chunk_portable(
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
