"""Event ingestion: the one way anything lands in the behaviour log.

Two entry points, one set of rules (``_event_fields``): ``event_record`` appends one event
(the request paths), ``events_record_batch`` appends many in a few set-based statements (the
real-time hub's CRM writer: a join storm is 10,000 events in one batch). The kinds and their
props' schemas live in ``crm.events`` (``EVENT_TYPES`` and ``VALUE_PROPS`` are re-exported
here for their readers).
"""

from __future__ import annotations

import itertools
import json
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from core.event_schemas import check_payload, checks_enabled
from crm.events import EVENT_PROPS, EVENT_TYPES, VALUE_PROPS  # noqa: F401 - re-exported
from crm.models import Contact, Event, EventKey

log = logging.getLogger(__name__)

_listeners: list[Callable] = []
# Per-event listener → the function the batch path calls once with all of a batch's new
# events instead (``on_events_recorded``).
_batch_listeners: dict[Callable, Callable] = {}


def on_event_recorded(fn):
    """Register ``fn(event)`` to run after an event commits (scoring, journeys)."""
    _listeners.append(fn)
    return fn


def on_events_recorded(*, instead_of: Callable) -> Callable:
    """Register ``fn(events)`` as the batch form of the per-event listener ``instead_of``:
    after ``events_record_batch`` commits, ``fn`` gets every new event of the batch (in batch
    order) once, and ``instead_of`` is not called for them. ``fn`` must leave the same
    outcome as calling ``instead_of`` for each event after the whole batch committed.
    Listeners without a batch form are called once per new event, as for ``event_record``."""

    def register(fn: Callable) -> Callable:
        _batch_listeners[instead_of] = fn
        return fn

    return register


def _event_fields(
    *,
    org_id: int,
    contact_id: int,
    type: str,
    props: dict | None,
    occurred_at: datetime | None,
    room_id: int | None,
    key: str | None,
    external: bool = False,
) -> dict:
    """The row of one event (both paths: ``value`` from VALUE_PROPS, time defaults to now).

    With ``settings.EVENT_SCHEMA_CHECKS`` on, the props must match ``crm.events.EVENT_PROPS``
    (``external``: an outside system's event, kept as sent)."""
    props = props or {}
    if not external and checks_enabled():
        check_payload(EVENT_PROPS, type, props, what="CRM event")
    value_prop = VALUE_PROPS.get(type)
    value = props.get(value_prop) if value_prop else None
    try:
        value = float(value) if value is not None else None
    except (TypeError, ValueError):
        value = None
    return {
        "org_id": org_id,
        "contact_id": contact_id,
        "type": type,
        "props": props,
        "occurred_at": occurred_at or timezone.now(),
        "room_id": room_id,
        "value": value,
        "key": key,
    }


def event_record(
    *,
    contact: Contact,
    type: str,
    props: dict | None = None,
    occurred_at: datetime | None = None,
    room_id: int | None = None,
    key: str | None = None,
    external: bool = False,
) -> Event | None:
    """Append one event for a contact. Returns None when ``key`` was already recorded
    (a replayed delivery is processed once). ``external``: the event was posted by an outside
    system (the ingest API), whose props are not this code's schema to check."""
    fields = _event_fields(
        org_id=contact.org_id,
        contact_id=contact.pk,
        type=type,
        props=props,
        occurred_at=occurred_at,
        room_id=room_id,
        key=key,
        external=external,
    )
    del fields["contact_id"]
    fields["contact"] = contact
    if key is None:
        # Nothing can collide: no savepoint (two fewer round trips on the hot path).
        event = Event.objects.for_org(contact.org_id).create(**fields)
    else:
        # The key claims its EventKey row and the event is written in one statement on
        # PostgreSQL (no savepoint: a replayed key inserts nothing instead of failing).
        now = timezone.now()
        event = Event(**fields, created_at=now, updated_at=now)
        # SQLite takes two statements (the key, then the event): one transaction.
        with transaction.atomic(savepoint=False):
            if not _insert_new([event]):
                return None
    for listener in _listeners:
        transaction.on_commit(lambda listener=listener: listener(event))
    return event


@dataclass(frozen=True)
class EventIn:
    """One event to record in a batch (what ``event_record`` takes, by ids)."""

    org_id: int
    contact_id: int
    type: str
    props: dict | None = None
    occurred_at: datetime | None = None
    room_id: int | None = None
    key: str | None = None


# Rows per INSERT (fewer when the backend's parameter limit is lower).
BATCH_ROWS = 1_000
_COLUMNS = (
    "org_id",
    "contact_id",
    "type",
    "occurred_at",
    "room_id",
    "value",
    "props",
    "key",
    "created_at",
    "updated_at",
)


def events_record_batch(*, events: list[EventIn]) -> list[Event]:
    """Append a batch of events for any contacts of any organisations, as if each had gone
    through ``event_record`` in one transaction, and return the new events (batch order).

    - An event for a contact that does not exist, belongs to another organisation, was
      merged away or erased is skipped (the hub may hold a session across a merge or an
      erasure; recording behaviour for a tombstone or an erased person would be wrong).
    - An event whose ``key`` is already in the log, or repeats an earlier key of the batch,
      is skipped: a replayed delivery is processed once.
    - One set-based statement per batch on PostgreSQL (the keys ``INSERT … ON CONFLICT
      (org_id, key) DO NOTHING`` into ``EventKey``, then the events whose key was new; the
      rows as one array per column), two per ``BATCH_ROWS`` events elsewhere (a concurrent
      writer's key wins, never an error), plus one read of the contacts' ids and
      organisations per batch, all in one transaction.
    - After commit every ``on_event_recorded`` listener sees every new event: through its
      ``on_events_recorded`` batch form if it has one (scoring: one re-score per distinct
      contact, set-based; journeys: one read of the contacts they trigger for), else once
      per event (``event.contact`` then loads when read).
    """
    if not events:
        return []
    # Ids and organisations only: a listener that needs more reads it for the events it acts
    # on (journeys: the few columns their trigger conditions use, only for events a journey
    # listens to), where reading every column of every contact cost the coupon reconciler
    # ~15 % of its time (issue 20). One query whatever the batch (no ``in_bulk`` chunks).
    org_of = dict(
        Contact.unscoped.filter(
            pk__in={e.contact_id for e in events},
            merged_into__isnull=True,
            erased_at__isnull=True,
        ).values_list("pk", "org_id")
    )
    now = timezone.now()
    rows: list[Event] = []
    seen: set[tuple[int, str]] = set()
    for e in events:
        if org_of.get(e.contact_id) != e.org_id:
            continue
        if e.key is not None:
            if (e.org_id, e.key) in seen:
                continue
            seen.add((e.org_id, e.key))
        event = Event(
            **_event_fields(
                org_id=e.org_id,
                contact_id=e.contact_id,
                type=e.type,
                props=e.props,
                occurred_at=e.occurred_at,
                room_id=e.room_id,
                key=e.key,
            ),
            created_at=now,
            updated_at=now,
        )
        rows.append(event)
    recorded: list[Event] = []
    if connection.vendor == "postgresql":
        # Arrays, not placeholders per row (``_INSERT_KEYED_PG``): one statement per batch.
        per_statement = max(1, len(rows))
    else:
        per_statement = max(1, min(BATCH_ROWS, max_query_params() // len(_COLUMNS)))
    with transaction.atomic():
        for start in range(0, len(rows), per_statement):
            recorded += _insert_new(rows[start : start + per_statement])
    if recorded:
        for listener in _listeners:
            batch = _batch_listeners.get(listener)
            if batch is not None:
                transaction.on_commit(lambda batch=batch: batch(recorded))
            else:
                transaction.on_commit(lambda listener=listener: _each(listener, recorded))
    return recorded


def max_query_params() -> int:
    """Bind parameters one statement may carry on this connection."""
    if connection.vendor == "sqlite":
        # Django assumes SQLite's old 999; the linked library says what it really allows.
        connection.ensure_connection()
        return connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    return connection.features.max_query_params or 65_535  # PostgreSQL's wire protocol


def _insert_new(rows: list[Event]) -> list[Event]:
    """Insert one chunk; returns the rows that were new (their ``pk`` set), in order. Ids
    follow the batch order, as recording one by one would give them: runs of keyed and of
    key-less rows are inserted in turn (the hub's events all have keys: one statement)."""
    runs = [list(run) for _keyed, run in itertools.groupby(rows, key=lambda r: r.key is not None)]
    for run in runs:
        if run[0].key is None:
            # Nothing can collide; bulk_create sets the primary keys (RETURNING, both backends).
            Event.unscoped.bulk_create(run)
        else:
            _insert_keyed(run)
    new = [row for row in rows if row.pk is not None]
    for row in new:
        row._state.adding, row._state.db = False, connection.alias
    return new


# One statement for a whole chunk on PostgreSQL: the rows travel as one array per column
# (parameters stay eight whatever the chunk's size — building and quoting a VALUES list of
# 10,000 placeholders cost more than the INSERT itself: issue 20's reconciler profile).
# The keys go into crm_eventkey first (its unique (org_id, key) is the idempotency guarantee:
# the partitioned event table cannot hold it, see crm.models.EventKey) and only the events
# whose key was new are inserted. A concurrent writer's key wins, never an error.
# WITH ORDINALITY + ORDER BY: ids follow the batch order, as recording one by one would.
_INSERT_KEYED_PG = """
WITH r AS (
    SELECT * FROM unnest(%(orgs)s::bigint[], %(contacts)s::bigint[], %(types)s::text[],
                         %(ats)s::timestamptz[], %(rooms)s::bigint[], %(values)s::float8[],
                         %(props)s::text[], %(keys)s::text[])
         WITH ORDINALITY AS r(org_id, contact_id, type, occurred_at, room_id, value, props, key, n)
), k AS (
    INSERT INTO {keys} (org_id, key, occurred_at)
    SELECT r.org_id, r.key, r.occurred_at FROM r ORDER BY r.n
    ON CONFLICT (org_id, key) DO NOTHING
    RETURNING org_id, key
)
INSERT INTO {table} (org_id, contact_id, type, occurred_at, room_id, value, props, key,
                     created_at, updated_at)
SELECT r.org_id, r.contact_id, r.type, r.occurred_at, r.room_id, r.value, r.props::jsonb,
       r.key, %(now)s, %(now)s
FROM r JOIN k ON k.org_id = r.org_id AND k.key = r.key
ORDER BY r.n
RETURNING id, org_id, key
"""


def _insert_keyed_pg(keyed: list[Event]) -> None:
    props_field = Event._meta.get_field("props")
    params = {
        "now": keyed[0].created_at,
        "orgs": [row.org_id for row in keyed],
        "contacts": [row.contact_id for row in keyed],
        "types": [row.type for row in keyed],
        "ats": [row.occurred_at for row in keyed],
        "rooms": [row.room_id for row in keyed],
        "values": [row.value for row in keyed],
        # The JSON field's own encoder (the same text the VALUES path sends).
        "props": [json.dumps(row.props, cls=props_field.encoder) for row in keyed],
        "keys": [row.key for row in keyed],
    }
    sql = _INSERT_KEYED_PG.format(
        table=connection.ops.quote_name(Event._meta.db_table),
        keys=connection.ops.quote_name(EventKey._meta.db_table),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = {(org_id, key): pk for pk, org_id, key in cursor.fetchall()}
    for row in keyed:
        row.pk = ids.get((row.org_id, row.key))


def _insert_keyed(keyed: list[Event]) -> None:
    if keyed and connection.vendor == "postgresql":
        _insert_keyed_pg(keyed)
    elif keyed:
        # The keys first, then the events whose key was new (as the PostgreSQL statement).
        fields = [EventKey._meta.get_field(name) for name in ("org_id", "key", "occurred_at")]
        columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
        one = "(" + ", ".join(["%s"] * len(fields)) + ")"
        params = [
            f.get_db_prep_save(getattr(row, f.attname), connection) for row in keyed for f in fields
        ]
        table = connection.ops.quote_name(EventKey._meta.db_table)
        # Identifiers from model meta and placeholders only; values travel as parameters.
        key = connection.ops.quote_name("key")
        values = ", ".join([one] * len(keyed))
        sql = (
            f"INSERT INTO {table} ({columns}) VALUES {values} "  # noqa: S608
            f"ON CONFLICT (org_id, {key}) DO NOTHING RETURNING org_id, {key}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            won = set(cursor.fetchall())
        new = [row for row in keyed if (row.org_id, row.key) in won]
        if new:
            _insert_rows_returning_ids(new)


def _insert_rows_returning_ids(rows: list[Event]) -> None:
    # One statement for the chunk (bulk_create would cut it at Django's assumed 999
    # parameters: 99 rows a statement).
    fields = [Event._meta.get_field(name) for name in _COLUMNS]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    one = "(" + ", ".join(["%s"] * len(fields)) + ")"
    params = [
        f.get_db_prep_save(getattr(row, f.attname), connection) for row in rows for f in fields
    ]
    table = connection.ops.quote_name(Event._meta.db_table)
    key = connection.ops.quote_name("key")
    # Identifiers from model meta and placeholders only; values travel as parameters.
    sql = (
        f"INSERT INTO {table} ({columns}) VALUES {', '.join([one] * len(rows))} "  # noqa: S608
        f"RETURNING id, org_id, {key}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        # RETURNING's row order is not guaranteed: match by the (org, key) unique pair.
        ids = {(org_id, key): pk for pk, org_id, key in cursor.fetchall()}
    for row in rows:
        row.pk = ids.get((row.org_id, row.key))


def _each(listener: Callable, events: list[Event]) -> None:
    for event in events:
        try:
            listener(event)
        except Exception:
            # One event's failing listener must not cost the rest of the batch theirs.
            log.exception("event listener %r failed for event %s", listener, event.pk)
