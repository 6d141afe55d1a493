"""The event log's monthly partitions and its retention (PostgreSQL; SQLite keeps one table).

On PostgreSQL ``crm_event`` is range-partitioned by ``occurred_at``: one partition per month
(``crm_event_y2026m12`` holds [2026-12-01, 2027-01-01) UTC) and a DEFAULT partition
(``crm_event_default``) that catches anything no month holds (a far-future timestamp, an
import older than the oldest month), so no insert ever fails for want of a partition.

- ``event_partitions_ensure`` creates the current month and ``EVENT_PARTITIONS_AHEAD`` months
  ahead when missing (Celery beat hourly, and after every ``migrate``), and with ``since``
  every month from then (migration 0009 from the oldest event; ``manage.py event_partitions
  --since`` before a back-dated import). A month whose rows already sit in the default
  partition is carved out of it: the rows move to the new month in the same transaction.
  Past months are never created by the beat: retention drops expired empty months, and the
  beat recreating them would only churn.
- ``event_retention_apply`` applies ``CrmSettings.event_retention_days`` per organisation:
  a whole month no organisation still needs is dropped (no row of it belongs to an
  organisation that keeps events that long), otherwise each organisation's rows older than
  its retention are deleted (the monthly partitions prune the scan). Idempotency keys
  (``EventKey``) of deleted events go with them.

Month boundaries are UTC: partitions are storage, not reports (reports bucket in
Asia/Shanghai on their own).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import OperationalError, connection, transaction
from django.utils import timezone

from crm.models import CrmSettings, Event, EventKey

log = logging.getLogger(__name__)

TABLE = "crm_event"
DEFAULT_PARTITION = f"{TABLE}_default"
# Months created ahead of now: inserts for next month never wait for the beat, and a beat
# that stops for weeks still leaves no month missing.
EVENT_PARTITIONS_AHEAD = 3


def month_start(at: datetime) -> datetime:
    at = at.astimezone(UTC)
    return datetime(at.year, at.month, 1, tzinfo=UTC)


def month_add(month: datetime, months: int) -> datetime:
    index = month.year * 12 + month.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def partition_name(month: datetime) -> str:
    return f"{TABLE}_y{month.year:04d}m{month.month:02d}"


def is_partitioned() -> bool:
    """Whether this database holds the partitioned event table (PostgreSQL after 0009)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [TABLE])
        row = cursor.fetchone()
    return bool(row) and row[0] == "p"


@dataclass(frozen=True)
class Partition:
    name: str
    month: datetime | None  # None: the default partition


def event_partitions() -> list[Partition]:
    """The event table's partitions, oldest month first, the default partition last."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(%s)",
            [TABLE],
        )
        names = [name for (name,) in cursor.fetchall()]
    months = []
    for name in names:
        if name == DEFAULT_PARTITION:
            continue
        stamp = name.removeprefix(f"{TABLE}_y")
        months.append(Partition(name, datetime(int(stamp[:4]), int(stamp[5:7]), 1, tzinfo=UTC)))
    months.sort(key=lambda p: p.month)
    if DEFAULT_PARTITION in names:
        months.append(Partition(DEFAULT_PARTITION, None))
    return months


def event_partitions_ensure(
    *,
    now: datetime | None = None,
    ahead: int = EVENT_PARTITIONS_AHEAD,
    since: datetime | None = None,
) -> list[str]:
    """Create the default partition and every missing month from ``now``'s (or ``since``'s,
    if earlier) to ``ahead`` months after now. Returns the names created. A no-op where the
    table is not partitioned (SQLite)."""
    if not is_partitioned():
        return []
    now = now or timezone.now()
    first = month_start(now)
    if since is not None:
        first = min(first, month_start(since))
    last = month_add(month_start(now), ahead)
    existing = {p.name for p in event_partitions()}
    created = []
    if DEFAULT_PARTITION not in existing:
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {DEFAULT_PARTITION} PARTITION OF {TABLE} DEFAULT"
            )
        created.append(DEFAULT_PARTITION)
    month = first
    while month <= last:
        name = partition_name(month)
        if name not in existing and _partition_create(name, month, month_add(month, 1)):
            created.append(name)
        month = month_add(month, 1)
    if created:
        log.info("event partitions created: %s", ", ".join(created))
    return created


# Catalogue changes (a month created, attached or detached) need the parent table's ACCESS
# EXCLUSIVE lock: every read and write of the event log queues behind a waiting request, so
# it waits at most this long and the month is tried again on the next run.
LOCK_WAIT = "500ms"


@contextmanager
def _parent_locked(cursor):
    """Hold the parent table exclusively for a catalogue change (parent first: the order
    inserts lock in, so no deadlock), waiting at most ``LOCK_WAIT``."""
    cursor.execute("SELECT current_setting('lock_timeout')")
    before = cursor.fetchone()[0]
    cursor.execute("SELECT set_config('lock_timeout', %s, true)", [LOCK_WAIT])
    cursor.execute(f"LOCK TABLE ONLY {TABLE} IN ACCESS EXCLUSIVE MODE")
    cursor.execute("SELECT set_config('lock_timeout', %s, true)", [before])
    yield


def _partition_create(name: str, lo: datetime, hi: datetime) -> bool:
    # Identifiers are generated from dates above (never user input); bounds travel as literals
    # because DDL takes no parameters.
    bounds = f"FROM ('{lo.isoformat()}') TO ('{hi.isoformat()}')"
    try:
        with transaction.atomic(), connection.cursor() as cursor, _parent_locked(cursor):
            cursor.execute(
                f"SELECT 1 FROM {DEFAULT_PARTITION} "  # noqa: S608
                "WHERE occurred_at >= %s AND occurred_at < %s LIMIT 1",
                [lo, hi],
            )
            if cursor.fetchone() is None:
                cursor.execute(f"CREATE TABLE {name} PARTITION OF {TABLE} FOR VALUES {bounds}")
                return True
            # The month's rows already sit in the default partition (back-dated events, or
            # the month was missing): PostgreSQL refuses a partition whose rows the default
            # holds, so they move into a plain table first, attached then as the month.
            cursor.execute(f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS)")
            cursor.execute(
                f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} "  # noqa: S608
                "WHERE occurred_at >= %s AND occurred_at < %s RETURNING *) "
                f"INSERT INTO {name} SELECT * FROM moved",
                [lo, hi],
            )
            cursor.execute(f"ALTER TABLE {TABLE} ATTACH PARTITION {name} FOR VALUES {bounds}")
            return True
    except OperationalError:
        log.warning("event partition %s not created: the event table stayed busy", name)
        return False


@dataclass
class RetentionResult:
    dropped: list[str] = field(default_factory=list)
    deleted: dict[int, int] = field(default_factory=dict)  # org id → event rows deleted

    def as_dict(self) -> dict:
        return {"dropped": self.dropped, "deleted": self.deleted}


def event_retention_apply(*, now: datetime | None = None) -> RetentionResult:
    """Apply every organisation's ``event_retention_days``.

    A month partition is dropped when all of it is older than the cutoff of every
    organisation that has a row in it (an organisation without a retention keeps everything,
    so one of its rows keeps the month); otherwise each organisation's rows older than its own
    cutoff are deleted, month by month. The default partition is never dropped (only its
    expired rows are deleted). Erasure is unaffected: it reaches every partition by
    contact."""
    now = now or timezone.now()
    cutoffs = {
        org_id: now - timedelta(days=days)
        for org_id, days in CrmSettings.unscoped.filter(
            event_retention_days__isnull=False
        ).values_list("org_id", "event_retention_days")
    }
    result = RetentionResult()
    if not cutoffs:
        return result
    if is_partitioned():
        result.dropped = _drop_expired_months(cutoffs)
    for org_id, cutoff in sorted(cutoffs.items()):
        with transaction.atomic():
            deleted, _ = Event.objects.for_org(org_id).filter(occurred_at__lt=cutoff).delete()
            EventKey.objects.for_org(org_id).filter(occurred_at__lt=cutoff).delete()
        if deleted:
            result.deleted[org_id] = deleted
    return result


def _drop_expired_months(cutoffs: dict[int, datetime]) -> list[str]:
    dropped = []
    latest_cutoff = max(cutoffs.values())
    for partition in event_partitions():
        if partition.month is None or month_add(partition.month, 1) > latest_cutoff:
            continue
        end = month_add(partition.month, 1)
        # Organisations with a retention that still need part of this month; those without
        # one (not in ``cutoffs``) need all of it.
        keep = [org_id for org_id, cutoff in cutoffs.items() if cutoff < end]
        # A first look unlocked (an index-only scan of a whole month): most months are kept.
        if _holds_needed_rows(partition.name, cutoffs, keep):
            continue
        with transaction.atomic(), connection.cursor() as cursor:
            # Writes to this month wait while it is looked at again; reads go on. Only this
            # partition is locked (never the parent after it): no deadlock with inserts.
            cursor.execute(f"LOCK TABLE {partition.name} IN SHARE ROW EXCLUSIVE MODE")
            if _holds_needed_rows(partition.name, cutoffs, keep):
                continue
            # TRUNCATE refuses a table with deferred foreign-key checks pending (rows written
            # earlier in the caller's transaction): run them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"TRUNCATE {partition.name}")
        # The empty month leaves the catalogue in a moment of its own (the parent's lock),
        # unless a keeping organisation's back-dated row arrived meanwhile.
        try:
            with transaction.atomic(), connection.cursor() as cursor, _parent_locked(cursor):
                cursor.execute(f"SELECT 1 FROM {partition.name} LIMIT 1")  # noqa: S608
                if cursor.fetchone() is not None:
                    continue
                cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {partition.name}")
                cursor.execute(f"DROP TABLE {partition.name}")
        except OperationalError:
            log.warning("event partition %s emptied, detached next run", partition.name)
            continue
        dropped.append(partition.name)
    if dropped:
        log.info("event partitions dropped by retention: %s", ", ".join(dropped))
    return dropped


def _holds_needed_rows(name: str, cutoffs: dict[int, datetime], keep: list[int]) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {name} "  # noqa: S608
            "WHERE NOT (org_id = ANY(%s)) OR org_id = ANY(%s) LIMIT 1",
            [list(cutoffs), keep],
        )
        return cursor.fetchone() is not None


def event_partitions_after_migrate(*, using: str = "default", **_kwargs) -> None:
    """post_migrate receiver: a fresh or migrated database has its months from the start."""
    if connection.alias == using and is_partitioned():
        event_partitions_ensure()
