"""Behaviour events for the CRM, recorded off the hot path in batches.

Joins, leaves, chats and likes arrive at socket speed (a join storm is 1,000+/s); the CRM
needs them but the connect path must never wait for the database. Records go into an
in-process buffer; every ``REALTIME_CRM_FLUSH_SECONDS`` a daemon thread takes the batch and
writes it through ``crm.services.events.events_record_batch``: one contact query and one
``INSERT … ON CONFLICT DO NOTHING RETURNING`` per 1,000 events (replayed keys, unknown,
foreign, merged and erased contacts skipped), then — after commit — ONE background re-score
task per organisation and 2,000 distinct contacts (set-based, the bulk path's SQL restricted
to their ids) instead of a task per event, and journeys see every new event as before. A
join storm of 10,000 viewers is ~10 inserts and ~10 re-score statements, not 10,000 of each.
Likes are summed per viewer and room per batch.

Where the batch is written (``REALTIME_CRM_WRITER``):

- ``process`` (default outside tests): a child Python process
  (``python -m livecommerce.realtime.crm_writer``) started with the hub, fed one JSON
  line per batch on its stdin. Measured cause of the multi-second event-loop stalls in
  bench/fanout.py: the ORM work of a writer *thread* holds the GIL (a third of all
  GIL-held samples at 2,000 viewers, ``py-spy record --gil``), and every socket write of the
  event loop releases the GIL for its syscall and then waits up to the 5 ms switch
  interval to get it back — thousands of writes per tick turn into seconds of lag at a
  few percent of CPU. A child process has its own GIL; the parent only encodes a line.
  The child exits when the pipe closes (its parent is gone). If the child cannot be
  started or dies, the batch is written in-process as before (never lost silently).
- ``thread``: write in the daemon thread itself (the test tier, where the database is the
  test's own).
"""

from __future__ import annotations

import collections
import json
import logging
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

log = logging.getLogger(__name__)


class CrmBuffer:
    def __init__(self):
        self._lock = threading.Lock()
        self._events: list[tuple[int, int, str, dict, int | None, str, datetime]] = []
        self._likes: collections.Counter[tuple[int, int, int]] = collections.Counter()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._flush_lock = threading.Lock()
        self._child: subprocess.Popen | None = None
        self._likes_taken = time.monotonic()

    def record(
        self,
        *,
        org_id: int,
        contact_id: int,
        type: str,
        props: dict | None = None,
        room_id: int | None = None,
        key: str,
    ) -> None:
        with self._lock:
            self._events.append(
                (org_id, contact_id, type, props or {}, room_id, key, timezone.now())
            )
        self._ensure_thread()

    def add_likes(self, *, org_id: int, contact_id: int, room_id: int, count: int) -> None:
        with self._lock:
            self._likes[(org_id, contact_id, room_id)] += count
        self._ensure_thread()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(
                        target=self._loop, name="qm-hub-crm", daemon=True
                    )
                    self._thread.start()

    def _loop(self) -> None:
        while True:
            self._wake.wait(settings.REALTIME_CRM_FLUSH_SECONDS)
            self._wake.clear()
            try:
                if settings.REALTIME_CRM_WRITER == "process":
                    self._hand_to_child()
                else:
                    self.flush()
            except Exception:  # noqa: BLE001 - keep the thread alive; next batch retries
                log.exception("CRM event batch failed")
            try:
                close_old_connections()
            except Exception:  # noqa: BLE001 - a closing connection must not end the thread
                log.exception("closing the CRM writer's connection failed")

    def _take(self, *, all_likes: bool = True) -> list[tuple]:
        """Everything buffered so far (likes summed into one event per viewer and room).

        Likes are taken only every ``REALTIME_CRM_LIKE_SECONDS`` unless ``all_likes``: at
        2,000 likes/s over 10,000 viewers a 2 s batch held one ``like`` event for a third
        of the room, and recording them was most of the writer's CPU on a 2-core box.
        """
        with self._lock:
            events, self._events = self._events, []
            now_mono = time.monotonic()
            if all_likes or now_mono - self._likes_taken >= settings.REALTIME_CRM_LIKE_SECONDS:
                likes, self._likes = self._likes, collections.Counter()
                self._likes_taken = now_mono
            else:
                likes = collections.Counter()
        now = timezone.now()
        for (org_id, contact_id, room_id), count in likes.items():
            events.append(
                (
                    org_id,
                    contact_id,
                    "like",
                    {"count": count},
                    room_id,
                    f"like:{room_id}:{contact_id}:{now.timestamp():.3f}",
                    now,
                )
            )
        return events

    def flush(self) -> int:
        """Write everything buffered so far in this process. Returns the events written."""
        with self._flush_lock:
            return write_events(self._take())

    def _hand_to_child(self, *, all_likes: bool = False) -> None:
        with self._flush_lock:
            events = self._take(all_likes=all_likes)
            if not events:
                return
            line = line_from_events(events)
            try:
                child = self._child_process()
                child.stdin.write(line)  # blocks in this thread (GIL released), never the loop
                child.stdin.flush()
                return
            except (OSError, ValueError):
                log.warning("CRM writer process unavailable; writing this batch in-process")
                self._child = None
            write_events(events)

    def _child_process(self) -> subprocess.Popen:
        child = self._child
        if child is None or child.poll() is not None:
            base = str(settings.BASE_DIR)
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(p for p in (base, env.get("PYTHONPATH")) if p)
            child = self._child = subprocess.Popen(  # noqa: S603 - our own module
                [sys.executable, "-m", "livecommerce.realtime.crm_writer"],
                stdin=subprocess.PIPE,
                cwd=base,
                env=env,
            )
        return child

    def start_writer(self) -> None:
        """Start the writer child now (hub start-up) rather than at the first batch: its
        interpreter and Django set-up (~1 s of CPU) then never land in a join storm."""
        if settings.REALTIME_CRM_WRITER == "process":
            with self._flush_lock:
                try:
                    self._child_process()
                except OSError:
                    log.warning("CRM writer process could not start; batches go in-process")

    def shutdown(self) -> None:
        """Hand the last batch to the child, close its pipe (it writes and exits), wait."""
        if self._child is not None:
            try:
                self._hand_to_child(all_likes=True)
            except Exception:  # noqa: BLE001
                log.exception("last CRM event batch failed")
        child, self._child = self._child, None
        if child is None:
            return
        try:
            child.stdin.close()
            child.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            child.kill()


def line_from_events(events: list[tuple]) -> bytes:
    """One batch as a JSON line for the writer process."""
    rows = [[*e[:6], e[6].timestamp()] for e in events]
    return (json.dumps(rows, ensure_ascii=False) + "\n").encode()


def events_from_line(line: str | bytes) -> list[tuple]:
    """Decode one batch line written by ``CrmBuffer._hand_to_child``."""
    return [(*e[:6], datetime.fromtimestamp(e[6], tz=UTC)) for e in json.loads(line)]


def write_events(events: list[tuple]) -> int:
    """Record a batch through ``events_record_batch``. Returns the number of events written."""
    from crm.services.events import EventIn, events_record_batch

    if not events:
        return 0
    return len(
        events_record_batch(
            events=[
                EventIn(
                    org_id=org_id,
                    contact_id=contact_id,
                    type=type_,
                    props=props,
                    occurred_at=at,
                    room_id=room_id,
                    key=key,
                )
                for org_id, contact_id, type_, props, room_id, key, at in events
            ]
        )
    )


buffer = CrmBuffer()
