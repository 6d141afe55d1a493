"""Read-side helpers for the foundation: health of the parts the product depends on."""

from __future__ import annotations

import redis
from django.conf import settings
from django.db import connection

from core.heartbeats import heartbeat_age
from qianmian.celery import app


def _error(exc: Exception) -> str:
    return f"error: {type(exc).__name__}"


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return "ok"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return _error(exc)


def _redis(url: str, pinged: dict[str, str]) -> str:
    """PING one Redis (once per URL per report: several parts often share one server)."""
    if url not in pinged:
        try:
            with redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1) as client:
                client.ping()
            pinged[url] = "ok"
        except Exception as exc:  # noqa: BLE001
            pinged[url] = _error(exc)
    return pinged[url]


def _broker() -> str:
    try:
        with app.connection_for_write(url=settings.CELERY_BROKER_URL) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return "ok"
    except Exception as exc:  # noqa: BLE001
        return _error(exc)


def _heartbeat(kind: str) -> str:
    try:
        age = heartbeat_age(kind=kind)
    except Exception as exc:  # noqa: BLE001
        return _error(exc)
    if age is None:
        return f"error: no heartbeat for {settings.HEARTBEAT_STALE_SECONDS} s"
    return "ok"


def health_report() -> dict:
    """Each part the product really uses, "ok…" or "error: …"; ``status`` is "ok" only when
    every part is. Parts the embedded default runs in-process say so."""
    pinged: dict[str, str] = {}
    report = {"database": _database()}
    # Rate limits, sessions' throttles and caches (django cache on REDIS_URL).
    report["cache"] = _redis(settings.REDIS_URL, pinged) if settings.REDIS_URL else "ok (local)"
    # The room hubs' pub/sub and per-room logs.
    report["hub"] = (
        _redis(settings.REALTIME_REDIS_URL, pinged)
        if settings.REALTIME_REDIS_URL
        else "ok (in-memory)"
    )
    # Coupon claims (Lua script + reconciler) when they run on Redis.
    report["claims"] = (
        _redis(settings.REDIS_URL, pinged)
        if settings.COUPON_CLAIM_BACKEND == "redis"
        else f"ok ({settings.COUPON_CLAIM_BACKEND})"
    )
    # The campaigns' global per-account send limiter.
    report["send_limiter"] = (
        _redis(settings.CAMPAIGNS_REDIS_URL, pinged)
        if settings.CAMPAIGNS_REDIS_URL
        else "ok (in-process)"
    )
    if settings.TASK_RUNNER == "celery":
        report["broker"] = _broker()
        report["worker"] = _heartbeat("worker")
        report["beat"] = _heartbeat("beat")
    else:
        for part in ("broker", "worker", "beat"):
            report[part] = f"ok ({settings.TASK_RUNNER})"
    report["status"] = "ok" if all(v.startswith("ok") for v in report.values()) else "degraded"
    return report
