"""The bulk path: an organisation re-scored set-based chunk by chunk (``org_rescore``), and a
batch of contacts given the per-contact outcome through the same SQL (``contacts_rescore``).
Each chunk is its own short transaction, written by ``bulk_pg`` on PostgreSQL and by
``bulk_sqlite`` elsewhere."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from django.db import close_old_connections, connection
from django.utils import timezone

from core.tasks import enqueue
from crm.models import Contact, ScoringModel
from crm.services import events
from crm.services.scoring.bulk_pg import GradeChange, chunk_pg
from crm.services.scoring.bulk_sqlite import chunk_portable
from crm.services.scoring.grades import grade_changed_emit
from crm.services.scoring.rules import (
    CompiledRule,
    active_rules,
    forget_rules,
    grade_rank,
    model_and_rules,
    scoring_model_for,
)
from crm.services.scoring.sql import scores_select_sql

# Grade changes of a bulk re-score reach the listeners in background batches of this size: a
# rule edit that lifts 100,000 leads must not run 100,000 callbacks inside the re-score.
GRADE_BATCH = 500


def _enqueue_upgrades(*, org_id: int, model: ScoringModel, changes: list[GradeChange]) -> int:
    """Hand the chunk's crossings into a higher grade to the grade listeners (after commit,
    in batches, as background tasks). Returns how many."""
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
        enqueue("crm.grade_changes_notify", org_id, ups[i : i + GRADE_BATCH])
    return len(ups)


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
        chunk = chunk_pg if pg else chunk_portable
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
    def bound(ids: list[int]) -> int:
        return len(scores_select_sql(org_id=org_id, rules=rules, now=now, contact_ids=ids)[1])

    fixed = bound([])
    per_id = bound([0]) - fixed
    return max(1, min(BATCH_IDS, (events.max_query_params() - fixed) // per_id))


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
    chunk = chunk_pg if connection.vendor == "postgresql" else chunk_portable
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
                    grade_changed_emit(contacts[cid], old, new)
    return changed
