"""Behaviour events for the CRM, recorded off the hot path in batches.

Joins, leaves, chats and likes arrive at socket speed (a join storm is 1,000+/s); the CRM
needs them but the connect path must never wait for the database. Records go into an
in-process buffer; a daemon thread writes them every ``REALTIME_CRM_FLUSH_SECONDS``
through ``crm.services.events.event_record`` (so scoring listeners run as usual), with
one contact query per batch. Likes are summed per viewer and room per batch.
"""

from __future__ import annotations

import collections
import logging
import threading
from datetime import datetime

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
                self.flush()
            except Exception:  # noqa: BLE001 - keep the thread alive; next batch retries
                log.exception("CRM event batch failed")
            finally:
                close_old_connections()

    def flush(self) -> int:
        """Write everything buffered so far. Returns the number of events written."""
        from crm.models import Contact
        from crm.services.events import event_record

        with self._flush_lock:
            with self._lock:
                events, self._events = self._events, []
                likes, self._likes = self._likes, collections.Counter()
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
            if not events:
                return 0
            contacts = Contact.unscoped.in_bulk({e[1] for e in events})
            written = 0
            for org_id, contact_id, type_, props, room_id, key, at in events:
                contact = contacts.get(contact_id)
                if contact is None or contact.org_id != org_id:
                    continue
                try:
                    if event_record(
                        contact=contact,
                        type=type_,
                        props=props,
                        occurred_at=at,
                        room_id=room_id,
                        key=key,
                    ):
                        written += 1
                except Exception:  # noqa: BLE001 - one bad row must not lose the batch
                    log.exception("CRM event %s for contact %s failed", type_, contact_id)
            return written


buffer = CrmBuffer()
