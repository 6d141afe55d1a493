"""Celery worker and beat heartbeats, kept in Redis and read by the health report.

- The worker's consumer writes ``<prefix>:heartbeat:worker:<hostname>`` every
  ``HEARTBEAT_SECONDS`` while it is connected to the broker (a consumer step: the timer stops
  when the connection is lost, so a worker cut off from its broker goes stale too).
- Beat's scheduler writes ``<prefix>:heartbeat:beat`` on its ticks (``celery beat -S
  core.heartbeats:HeartbeatScheduler``), so a dead or stuck beat goes stale even though
  the tasks it used to publish would still be answered by workers.

Each key expires after ``HEARTBEAT_STALE_SECONDS``: a part is alive while its key exists.
"""

from __future__ import annotations

import logging
import socket
import time

import redis
from celery import bootsteps
from celery.beat import PersistentScheduler
from django.conf import settings

log = logging.getLogger(__name__)


def _client() -> redis.Redis:
    return redis.Redis.from_url(
        settings.HEARTBEAT_REDIS_URL, socket_timeout=1, socket_connect_timeout=1
    )


def _key(kind: str, name: str = "") -> str:
    base = f"{settings.HEARTBEAT_PREFIX}:heartbeat:{kind}"
    return f"{base}:{name}" if name else base


def heartbeat_write(*, kind: str, name: str = "") -> None:
    """Record that ``kind`` (worker/beat) is alive now. Never raises: a heartbeat that
    cannot be written is exactly what the health report then shows."""
    try:
        with _client() as client:
            client.set(_key(kind, name), f"{time.time():.3f}", ex=settings.HEARTBEAT_STALE_SECONDS)
    except redis.RedisError as exc:
        log.warning("heartbeat %s not written: %s", kind, exc)


def heartbeat_age(*, kind: str) -> float | None:
    """Seconds since the freshest ``kind`` heartbeat, None when there is none (stale)."""
    with _client() as client:
        if kind == "beat":
            values = [client.get(_key("beat"))]
        else:
            keys = list(client.scan_iter(match=_key(kind, "*"), count=100))
            values = client.mget(keys) if keys else []
    stamps = [float(v) for v in values if v]
    return max(0.0, time.time() - max(stamps)) if stamps else None


class WorkerHeartbeat(bootsteps.StartStopStep):
    """Consumer step: a repeating timer while the consumer is connected."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, parent, **kwargs):
        super().__init__(parent, **kwargs)
        self.tref = None
        self.name_ = ""

    def start(self, parent) -> None:
        self.name_ = parent.hostname or socket.gethostname()
        heartbeat_write(kind="worker", name=self.name_)
        self.tref = parent.timer.call_repeatedly(
            settings.HEARTBEAT_SECONDS,
            heartbeat_write,
            kwargs={"kind": "worker", "name": self.name_},
        )

    def stop(self, parent) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    def shutdown(self, parent) -> None:
        self.stop(parent)
        try:
            with _client() as client:
                client.delete(_key("worker", self.name_))
        except redis.RedisError:
            pass


class HeartbeatScheduler(PersistentScheduler):
    """Celery's file-backed scheduler that also reports beat alive on every tick."""

    _last = 0.0

    def tick(self, *args, **kwargs):
        now = time.monotonic()
        if now - self._last >= settings.HEARTBEAT_SECONDS:
            self._last = now
            heartbeat_write(kind="beat")
        return min(super().tick(*args, **kwargs), settings.HEARTBEAT_SECONDS)
