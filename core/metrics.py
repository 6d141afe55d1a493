"""Prometheus metrics (prometheus-client), served at ``GET /metrics``.

Several processes serve one deployment (ASGI processes, Celery workers): with
``PROMETHEUS_MULTIPROC_DIR`` set (``make prod`` sets it) every process writes its samples
there and a scrape of any ASGI process reports the sum (prometheus-client's multiprocess
mode); without it (``make run``, tests) the process's own registry is reported.

Counted where they happen: HTTP requests through Django (``core.middleware``), open room
WebSockets per room (the room socket route). Read at scrape time (one query each): the
outbox backlog, the coupon claims not yet reconciled into PostgreSQL and their age, the
Celery queue depth.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import redis
from django.conf import settings
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric

from core.hooks import Hook

log = logging.getLogger(__name__)

HTTP_REQUESTS = Counter(
    "qm_http_requests", "HTTP requests answered by Django", ["method", "route", "status"]
)
HTTP_SECONDS = Histogram(
    "qm_http_request_seconds",
    "Time Django took to answer",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WS_CONNECTIONS = Gauge(
    "qm_ws_connections",
    "Open room WebSockets (viewers and staff)",
    ["room"],
    multiprocess_mode="livesum",
)


def _multiproc_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def _forget_dead_processes(directory: str) -> None:
    """A killed process never says goodbye: drop its live gauges (open sockets) so they do
    not count forever."""
    for path in Path(directory).glob("gauge_live*_*.db"):
        match = re.search(r"_(\d+)\.db$", path.name)
        if not match:
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, directory)
        except PermissionError:
            pass


# fn() -> metric families read at scrape time. An app's own figures (campaigns' outbox
# backlog, livecommerce's coupon reconcile backlog) register here in its AppConfig.ready;
# a figure that cannot be read is left out, never failing the scrape.
scrape_collectors: Hook[Callable[[], Iterable[Metric]]] = Hook("core.scrape_collectors")


class ScrapeTimeCollector:
    """Figures read when Prometheus asks, not counted in a hot path."""

    def collect(self):
        for collector in scrape_collectors:
            yield from collector()
        yield from _celery_queue()


def _celery_queue():
    if settings.TASK_RUNNER != "celery" or not settings.CELERY_BROKER_URL.startswith("redis"):
        return

    try:
        with redis.Redis.from_url(
            settings.CELERY_BROKER_URL, socket_timeout=1, socket_connect_timeout=1
        ) as client:
            depth = client.llen("celery")
    except redis.RedisError:
        return
    yield GaugeMetricFamily(
        "qm_celery_queue_depth", "Tasks waiting in the default Celery queue", value=depth
    )


def render() -> tuple[bytes, str]:
    """The exposition text of every process (multiprocess mode) plus the scrape-time figures."""
    directory = _multiproc_dir()
    if directory:
        _forget_dead_processes(directory)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    scrape = CollectorRegistry()
    scrape.register(ScrapeTimeCollector())
    return body + generate_latest(scrape), CONTENT_TYPE_LATEST
