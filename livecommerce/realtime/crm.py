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
  The child exits when the pipe closes (its parent is gone). Each line carries a sequence
  number the child acknowledges on its stdout once the batch is committed; the parent keeps
  every unacknowledged line (up to ``REALTIME_CRM_UNACKED_BYTES``) and, when the child has
  died, hands them all to the next child first — a batch the child had read but not
  committed is recorded after all, and one it had committed is skipped (events are keyed:
  ``ON CONFLICT DO NOTHING``). If no child can be started, the batches are written
  in-process (never lost silently); beyond the cap the oldest are dropped with an error log.
  Staff events the child raises (a lead turning hot) come back on the same stdout as
  ``S <message>`` lines when the transport is in-memory (``make run``), and this process
  publishes them to its staff sockets; with Redis the child publishes them itself.
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

from core.staff_events import staff_publisher
from crm.services.events import EventIn, events_record_batch

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
        # Lines handed to a writer child and not yet acknowledged: seq → framed line.
        self._unacked: collections.OrderedDict[int, bytes] = collections.OrderedDict()
        self._unacked_bytes = 0
        self._acks_lock = threading.Lock()
        self._seq = 0

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
            framed = None
            if events:
                with self._acks_lock:
                    self._seq += 1
                    framed = b"%d " % self._seq + line_from_events(events)
                    self._unacked[self._seq] = framed
                    self._unacked_bytes += len(framed)
                    self._cap_unacked()
            child = self._child
            try:
                if child is None or child.poll() is not None:
                    if framed is None and not self._unacked:
                        return
                    # A new child first gets every batch the last one never acknowledged
                    # (this one included).
                    try:
                        self._start_child()
                    except OSError:
                        log.warning("CRM writer process cannot start; writing in-process")
                        self._child = None
                        self._drain_in_process()
                elif framed is not None:
                    child.stdin.write(framed)  # blocks this thread (GIL released), never the loop
                    child.stdin.flush()
            except (OSError, ValueError):
                # It died under us: the next round starts another one and replays.
                log.warning(
                    "CRM writer process lost; %d batch(es) kept for the next one",
                    len(self._unacked),
                )
                self._child = None

    def _cap_unacked(self) -> None:
        """Bound the memory held for a child that stopped acknowledging (lock held)."""
        dropped = 0
        while self._unacked and self._unacked_bytes > settings.REALTIME_CRM_UNACKED_BYTES:
            _seq, line = self._unacked.popitem(last=False)
            self._unacked_bytes -= len(line)
            dropped += 1
        if dropped:
            log.error("CRM writer: %d unacknowledged batch(es) dropped over the cap", dropped)

    def _ack(self, seq: int) -> None:
        with self._acks_lock:
            line = self._unacked.pop(seq, None)
            if line is not None:
                self._unacked_bytes -= len(line)

    def _read_acks(self, child: subprocess.Popen) -> None:
        for raw in child.stdout:
            if raw.startswith(b"S "):
                # A staff event raised in the child (in-memory transport: see crm_writer).
                self._relay_staff(raw[2:].rstrip(b"\n").decode())
                continue
            try:
                self._ack(int(raw))
            except ValueError:
                continue

    @staticmethod
    def _relay_staff(message: str) -> None:
        try:
            staff_publisher.get()(message)
        except Exception:  # noqa: BLE001 - a hint lost; the acks must keep being read
            log.exception("staff event from the CRM writer not delivered")

    def _start_child(self) -> subprocess.Popen:
        base = str(settings.BASE_DIR)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (base, env.get("PYTHONPATH")) if p)
        child = self._child = subprocess.Popen(  # noqa: S603 - our own module
            [sys.executable, "-m", "livecommerce.realtime.crm_writer"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=base,
            env=env,
        )
        threading.Thread(
            target=self._read_acks, args=(child,), name="qm-hub-crm-acks", daemon=True
        ).start()
        with self._acks_lock:
            pending = list(self._unacked.values())
        if pending:
            log.warning(
                "CRM writer restarted: handing it %d unacknowledged batch(es)", len(pending)
            )
        for line in pending:
            child.stdin.write(line)
        child.stdin.flush()
        return child

    def _child_process(self) -> subprocess.Popen:
        child = self._child
        if child is None or child.poll() is not None:
            child = self._start_child()
        return child

    def _drain_in_process(self) -> None:
        with self._acks_lock:
            pending, self._unacked, self._unacked_bytes = (
                list(self._unacked.values()),
                collections.OrderedDict(),
                0,
            )
        for framed in pending:
            try:
                write_events(events_from_line(framed.split(b" ", 1)[1]))
            except Exception:  # noqa: BLE001
                log.exception("CRM event batch failed")

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
            child.wait()
        # Whatever the child never acknowledged (it died, or was killed above).
        self._drain_in_process()


def line_from_events(events: list[tuple]) -> bytes:
    """One batch as a JSON line for the writer process."""
    rows = [[*e[:6], e[6].timestamp()] for e in events]
    return (json.dumps(rows, ensure_ascii=False) + "\n").encode()


def events_from_line(line: str | bytes) -> list[tuple]:
    """Decode one batch line written by ``CrmBuffer._hand_to_child``."""
    return [(*e[:6], datetime.fromtimestamp(e[6], tz=UTC)) for e in json.loads(line)]


def write_events(events: list[tuple]) -> int:
    """Record a batch through ``events_record_batch``. Returns the number of events written."""

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
