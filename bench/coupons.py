"""Coupon claim bench: Redis mode, PostgreSQL-only mode, and the naive ORM baseline.

Needs PostgreSQL and Redis (BENCH_PG_URL, default postgres://postgres@127.0.0.1:5432/
qm_bench_coupons — created if missing; BENCH_REDIS_URL, default redis://127.0.0.1:6379/12
with a random key prefix). For each path it starts uvicorn (one process) on loopback and:

- speed: 20,000 claims by 20,000 distinct viewers (stock 20,000: every claim is a real
  claim) with 200 requests in flight on 200 keep-alive connections → claims/s, p50, p99;
- correctness: 10,000 claims from 2,000 viewers × 5 on stock 1,000, 200 in flight →
  successful claims, claims in the database (after the reconciler), oversell, doubles;
- reconcile (Redis mode): ``reconcile_s`` of the two runs above (their 21,000 claims'
  follow-up after the runs), then the lag run: a 10,000-claim burst (10,000 viewers, stock
  10,000, every claim granted) while the reconciler runs as production runs it (its own
  process, one pass per ``COUPON_RECONCILE_SECONDS``, ``bench/coupon_reconciler.py``) →
  lag p50/p99/max per claim (answer received by the client → its CRM event committed,
  ``crm.Event.created_at``) and ``reconcile_s`` (last answer → every claim followed up).

Knobs for a quicker run: ``BENCH_COUPON_SPEED_CLAIMS`` (default 20,000),
``BENCH_COUPON_LAG_CLAIMS`` (default 10,000; 0 skips the lag run),
``BENCH_COUPON_MODES=redis`` (one path); ``BENCH_COUPON_TASK_RUNNER`` (default
``inprocess``: the re-scores the reconciler enqueues run in a thread of its process, off its
loop, as workers run them in production; ``eager`` puts them in the loop). The load average
is recorded at each run's start.

The load generator is a bare asyncio protocol in this process (uvloop), sharing the
2-core box with the server.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
IN_FLIGHT = 200
SPEED_CLAIMS = int(os.environ.get("BENCH_COUPON_SPEED_CLAIMS", "20000"))
LAG_CLAIMS = int(os.environ.get("BENCH_COUPON_LAG_CLAIMS", "10000"))
BURST_VIEWERS, BURST_PER_VIEWER, BURST_STOCK = 2_000, 5, 1_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ensure_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def _serve(env: dict, app: str) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    proc = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--lifespan",
            "off",
            "--backlog",
            "4096",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("uvicorn did not start")


class _Conn(asyncio.Protocol):
    """One keep-alive connection sending its queue of requests one after another."""

    def __init__(self, requests: list[bytes], out: list, done: asyncio.Future):
        self.requests, self.out, self.done = requests, out, done
        self.buffer = b""
        self.sent_at = 0.0

    def connection_made(self, transport):
        self.transport = transport

    def next(self):
        if not self.requests:
            self.transport.close()
            if not self.done.done():
                self.done.set_result(None)
            return
        self.sent_at = time.perf_counter()
        self.current = self.requests.pop()
        self.transport.write(self.current)

    def data_received(self, data):
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end]
            at = head.lower().find(b"content-length:")
            stop = head.find(b"\r\n", at)
            length = int(head[at + 15 : stop if stop >= 0 else None]) if at >= 0 else 0
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            status = int(head[9:12])
            try:
                code = json.loads(body).get("code") if status != 201 and body else None
            except ValueError:  # a non-JSON error page (the baseline's 500s)
                code = "error"
            now = time.perf_counter()
            # Wall time of the answer too: the lag run compares it with the database's clock.
            self.out.append((status, code, now - self.sent_at, time.time(), self.current))
            self.next()

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(None)


def _request_bytes(path: str, token: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token {token}\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


async def _drive(port: int, path: str, tokens: list[str], answers: list | None = None) -> dict:
    loop = asyncio.get_running_loop()
    requests = [_request_bytes(path, t) for t in tokens]
    queues = [requests[i::IN_FLIGHT] for i in range(IN_FLIGHT)]
    out: list = []
    conns, waits = [], []
    for queue in queues:
        done = loop.create_future()
        _, conn = await loop.create_connection(
            lambda q=queue, d=done: _Conn(q, out, d), "127.0.0.1", port
        )
        conns.append(conn)
        waits.append(done)
    began = time.perf_counter()
    for conn in conns:
        conn.next()
    await asyncio.wait_for(asyncio.gather(*waits), timeout=600)
    elapsed = time.perf_counter() - began
    if answers is not None:
        answers.extend(out)
    latencies = sorted(lat for _, _, lat, _, _ in out)
    statuses: dict[str, int] = {}
    for status, code, *_ in out:
        key = str(status) if status == 201 else f"{status} {code}"
        statuses[key] = statuses.get(key, 0) + 1
    return {
        "requests": len(tokens),
        "answered": len(out),
        "seconds": round(elapsed, 2),
        "claims_per_s": round(len(out) / elapsed),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
        "statuses": statuses,
    }


def _setup_django(pg_url: str, redis_url: str, prefix: str) -> None:
    os.environ.update(
        {
            "DJANGO_ENV": "development",
            "DATABASE_URL": pg_url,
            "REDIS_URL": redis_url,
            "COUPON_REDIS_PREFIX": prefix,
            "TASK_RUNNER": "eager",
            "DJANGO_SETTINGS_MODULE": "qianmian.settings",
        }
    )
    import django

    django.setup()


def _fixtures(n_viewers: int):
    from datetime import timedelta

    from django.utils import timezone

    from core.models import Organization
    from core.tokens import issue_viewer_token
    from crm.models import Contact
    from livecommerce.models import Room, StreamerProfile

    org, _ = Organization.objects.get_or_create(slug="bench-coupons", defaults={"name": "压测"})
    streamer, _ = StreamerProfile.objects.for_org(org).get_or_create(org=org, name="压测主播")
    room = Room.objects.for_org(org).create(
        org=org,
        streamer=streamer,
        title="压测直播间",
        status="live",
        scheduled_start=timezone.now(),
        started_at=timezone.now(),
    )
    contacts = Contact.unscoped.bulk_create(
        [Contact(org=org, nickname=f"压测{i}") for i in range(n_viewers)], batch_size=5000
    )
    tokens = [
        issue_viewer_token(org_id=org.pk, contact_id=c.pk, device=f"b{c.pk}") for c in contacts
    ]
    return org, room, tokens, timedelta


def _coupon(org, room, stock: int, released_in_redis: bool):
    from datetime import timedelta

    from django.utils import timezone

    from livecommerce.models import Coupon
    from livecommerce.services.coupons.backends.redis import redis_load

    coupon = Coupon.unscoped.create(
        org=org,
        room=room,
        name="压测券",
        kind="no_threshold",
        amount=5,
        stock=stock,
        valid_until=timezone.now() + timedelta(days=1),
        released_at=timezone.now(),
    )
    if released_in_redis:
        redis_load(coupon)
    return coupon


def _db_outcome(coupon) -> dict:
    from django.db.models import Count

    from livecommerce.models import CouponClaim

    claims = CouponClaim.unscoped.filter(coupon=coupon)
    rows = claims.count()
    doubles = claims.values("contact_id").annotate(n=Count("id")).filter(n__gt=1).count()
    return {"claims_in_db": rows, "oversold": max(rows - coupon.stock, 0), "double_claims": doubles}


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _pct(values: list[float], q: float) -> float:
    return round(values[max(0, int(len(values) * q) - 1)], 3)


def _lag_run(org, room, tokens: list[str], port: int, path: str, env: dict) -> dict:
    """A burst of ``LAG_CLAIMS`` granted claims with the reconciler running beside it (its own
    process): per-claim lag from the answer to its CRM event, and ``reconcile_s`` from the
    last answer until every claim is followed up."""
    import uvloop
    from django.db import connection

    from core.tokens import parse_token
    from crm.models import Event
    from livecommerce.models import CouponClaim

    coupon = _coupon(org, room, LAG_CLAIMS, True)
    lag_tokens = tokens[:LAG_CLAIMS]
    claim_path = path.format(coupon.pk)
    # Each request's bytes name its viewer (one claim per viewer in this run).
    contact_of = {_request_bytes(claim_path, t): parse_token(t).contact_id for t in lag_tokens}
    reconciler = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "bench.coupon_reconciler"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        reconciler.stdout.readline()  # "ready": Django is set up
        answers: list = []
        load = _load()
        result = uvloop.run(_drive(port, claim_path, lag_tokens, answers))
        last_answer = time.perf_counter()
        deadline = last_answer + 600
        granted = sum(1 for a in answers if a[0] == 201)
        while time.perf_counter() < deadline:
            pending = CouponClaim.unscoped.filter(coupon=coupon, crm_recorded=False).count()
            rows = CouponClaim.unscoped.filter(coupon=coupon).count()
            if rows >= granted and not pending:
                break
            time.sleep(0.05)
        reconcile_s = time.perf_counter() - last_answer
    finally:
        reconciler.terminate()
        reconciler.wait(60)
    answered_by_contact = {
        contact_of[request]: answered_at
        for status, _code, _lat, answered_at, request in answers
        if status == 201
    }
    created = dict(
        Event.unscoped.filter(
            org_id=org.pk, type="coupon.claim", key__startswith=f"coupon.claim:{coupon.pk}:"
        ).values_list("contact_id", "created_at")
    )
    connection.close()
    lags = sorted(
        created[c].timestamp() - answered
        for c, answered in answered_by_contact.items()
        if c in created
    )
    result.update(_db_outcome(coupon))
    result.update(
        {
            "load_avg_at_start": load,
            "granted": granted,
            "events_recorded": len(lags),
            "reconcile_s": round(reconcile_s, 2),
            "lag_p50_s": _pct(lags, 0.50) if lags else None,
            "lag_p99_s": _pct(lags, 0.99) if lags else None,
            "lag_max_s": round(lags[-1], 3) if lags else None,
        }
    )
    return result


def run() -> dict:
    import uvloop

    pg_url = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/qm_bench_coupons")
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
    prefix = f"qmbench-{uuid.uuid4().hex[:8]}"
    _ensure_database(pg_url)
    base_env = {
        **os.environ,
        "DJANGO_ENV": "development",
        "DATABASE_URL": pg_url,
        "REDIS_URL": redis_url,
        "COUPON_REDIS_PREFIX": prefix,
        "TASK_RUNNER": "eager",
        "LOG_LEVEL": "WARNING",
        "DB_POOL_MAX": "40",
    }
    subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=base_env, check=True
    )
    _setup_django(pg_url, redis_url, prefix)
    from livecommerce.services import coupons

    org, room, tokens, _ = _fixtures(max(SPEED_CLAIMS, LAG_CLAIMS, BURST_VIEWERS))
    burst_tokens = [t for t in tokens[:BURST_VIEWERS] for _ in range(BURST_PER_VIEWER)]
    report: dict = {
        "in_flight": IN_FLIGHT,
        "speed_claims": SPEED_CLAIMS,
        "lag_claims": LAG_CLAIMS,
        "burst": f"{BURST_VIEWERS} viewers x {BURST_PER_VIEWER}, stock {BURST_STOCK}",
    }
    modes = [
        ("redis", "qianmian.asgi:application", "/api/v1/coupons/{}/claim"),
        ("pg", "qianmian.asgi:application", "/api/v1/coupons/{}/claim"),
        ("naive_orm_baseline", "bench.coupon_naive_asgi:application", "/naive/coupons/{}/claim"),
    ]
    wanted = os.environ.get("BENCH_COUPON_MODES", "")
    if wanted:
        modes = [m for m in modes if m[0] in wanted.split(",")]
    for mode, app, path in modes:
        backend = mode if mode in ("redis", "pg") else "db"
        mode_env = {**base_env, "COUPON_CLAIM_BACKEND": backend}
        server, port = _serve(mode_env, app)
        lag = None
        try:
            from django.conf import settings

            settings.COUPON_CLAIM_BACKEND = backend
            speed_load = _load()
            speed_coupon = _coupon(org, room, SPEED_CLAIMS, backend == "redis")
            speed = uvloop.run(_drive(port, path.format(speed_coupon.pk), tokens[:SPEED_CLAIMS]))
            speed["load_avg_at_start"] = speed_load
            burst_load = _load()
            burst_coupon = _coupon(org, room, BURST_STOCK, backend == "redis")
            burst = uvloop.run(_drive(port, path.format(burst_coupon.pk), burst_tokens))
            burst["load_avg_at_start"] = burst_load
            if backend == "redis":
                # The follow-up of both runs' claims (speed + burst), after the runs.
                started = time.perf_counter()
                while coupons.coupon_reconcile():
                    pass
                burst["reconcile_s"] = round(time.perf_counter() - started, 2)
                burst["reconcile_claims"] = speed["statuses"].get("201", 0) + burst["statuses"].get(
                    "201", 0
                )
                if LAG_CLAIMS:
                    lag = _lag_run(
                        org,
                        room,
                        tokens,
                        port,
                        path,
                        {
                            **mode_env,
                            "DJANGO_SETTINGS_MODULE": "qianmian.settings",
                            # The re-scores its batches enqueue run as production runs them,
                            # off the reconciler's loop — here in a thread of the same process
                            # (same box, same GIL), not in the loop as "eager" would.
                            "TASK_RUNNER": os.environ.get("BENCH_COUPON_TASK_RUNNER", "inprocess"),
                            "TASK_RUNNER_THREADS": "1",
                        },
                    )
        finally:
            server.terminate()
            server.wait(10)
        burst.update(_db_outcome(burst_coupon))
        speed.update(_db_outcome(speed_coupon) if backend != "redis" else {})
        report[mode] = {"speed": speed, "burst": burst}
        if lag is not None:
            report[mode]["lag_burst"] = lag
        print(mode, json.dumps(report[mode], ensure_ascii=False), flush=True)
    return report
