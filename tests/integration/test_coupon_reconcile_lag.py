"""The coupon reconciler keeps up with a burst (issue 20), on PostgreSQL + Redis through the
real ASGI fast path, with the reconciler running as production runs it: its own process,
one ``coupon_reconcile`` pass per ``COUPON_RECONCILE_SECONDS`` (``bench/coupon_reconciler.py``),
the re-scores its batches enqueue in a task thread of that process.

4,000 claims (3,200 viewers, 800 of them tapping twice) arrive as fast as the server answers
them, 200 in flight on keep-alive connections (the bench's generator), for a coupon with
stock 3,000: every claim answered "yours" is in PostgreSQL and in the CRM (its
``coupon.claim`` event) within ``DRAIN_BOUND_S`` of the last answer, 0 oversell, 0 doubles,
and the reconciler's lag — the age of the oldest claim it has not followed up, the figure
``reconcile_backlog`` gives metrics — sampled while the claims arrive stays under
``LAG_BOUND_S``. The speed bars themselves (≤ 2 s lag at the full claim rate, ``reconcile_s``
≤ 5 s after 10,000 claims) live in `make bench` (bench/coupons.py, docs/bench/coupons.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import pytest
import uvloop
from django.conf import settings
from django.db.models import Count

from bench.coupons import _drive
from core.tokens import issue_viewer_token, parse_token
from crm.models import Contact, Event
from livecommerce.models import CouponClaim
from livecommerce.services.coupons import coupon_release, reconcile_backlog
from livecommerce.services.coupons.backends.redis import sredis_client
from tests.factories import RoomFactory
from tests.integration.test_coupon_burst import PREFIX, _database_url, start_server, stop
from tests.livecommerce.factories import CouponFactory

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

VIEWERS = 3_200
TWICE = 800  # viewers who tap again: 4,000 claims in all, for a stock of 3,000
STOCK = 3_000
SAMPLE_SECONDS = 0.1
# Bounds for a loaded 2-core CI box, where the server, this load generator, the reconciler
# and PostgreSQL share the cores. Drain: the issue's bar is 5 s after 10,000 claims; the
# bench's worst on the shared box (load 7–10) was 1.98 s for 10,000, and this burst grants
# 3,000, so 5 s leaves ~2.5× for a box busier than that. Lag: its floor is the 1 s tick, one
# pass, and up to 1 s more because the log stamps claims in whole seconds; the bench's worst
# p99 was 2.55 s (docs/bench/coupons.md). 5 s is 2.5× the issue's 2 s lag bar: a reconciler
# falling behind the arrival (lag growing with every second of the burst) crosses it, a
# descheduled pass on a busy box does not.
DRAIN_BOUND_S = 5.0
LAG_BOUND_S = 5.0


@pytest.fixture
def redis_claims(settings):
    settings.COUPON_CLAIM_BACKEND = "redis"
    settings.COUPON_REDIS_PREFIX = PREFIX
    yield
    client = sredis_client()
    keys = list(client.scan_iter(f"{PREFIX}:*"))
    if keys:
        client.delete(*keys)


@pytest.fixture
def claim_server(redis_claims):
    server, port = start_server("redis")
    yield port
    stop(server)


@pytest.fixture
def reconciler(redis_claims):
    """``coupon_reconcile`` every ``COUPON_RECONCILE_SECONDS`` in its own process, against the
    test database and key prefix; yields once Django is set up there."""
    env = {
        **os.environ,
        "DJANGO_ENV": "test",
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "COUPON_CLAIM_BACKEND": "redis",
        "COUPON_REDIS_PREFIX": PREFIX,
        # Re-scores run off the reconciler's loop, in one task thread, as workers run them.
        "TASK_RUNNER": "inprocess",
        "TASK_RUNNER_THREADS": "1",
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "bench.coupon_reconciler"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline().strip() == "ready", "the reconciler did not start"
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def _viewers(org) -> list[str]:
    contacts = Contact.unscoped.bulk_create(
        [Contact(org=org, nickname=f"观众{i}") for i in range(VIEWERS)]
    )
    return [issue_viewer_token(org_id=org.pk, contact_id=c.pk, device=f"d{c.pk}") for c in contacts]


def _released_coupon(host, room, stock: int):
    coupon = CouponFactory(room=room, name="整点抢券", stock=stock, per_viewer_limit=1)
    return coupon_release(membership=host.membership, coupon=coupon)


def _until(condition, timeout: float) -> float:
    """Poll ``condition`` until it holds; returns the seconds it took (``timeout`` + if never)."""
    began = time.perf_counter()
    while time.perf_counter() - began < timeout:
        if condition():
            break
        time.sleep(0.05)
    return time.perf_counter() - began


def _followed_up(coupon_id: int, granted: int):
    def check() -> bool:
        events = Event.unscoped.filter(
            type="coupon.claim", key__startswith=f"coupon.claim:{coupon_id}:"
        ).count()
        pending = CouponClaim.unscoped.filter(coupon_id=coupon_id, crm_recorded=False).exists()
        return events >= granted and not pending

    return check


async def _burst(port: int, coupon_id: int, tokens: list[str]):
    """The bench's load generator (``IN_FLIGHT`` keep-alive connections, each sending its
    share of the claims one after another) while the reconciler's lag is sampled every
    ``SAMPLE_SECONDS`` until the last answer. Returns the answers (status, code, latency,
    answered at, request), the samples (seconds since the first claim, backlog, lag s) and
    the bench's summary of the run."""
    loop = asyncio.get_running_loop()
    samples: list = []
    answers: list = []
    began = loop.time()

    async def sample():
        while True:
            entries, oldest = reconcile_backlog()
            lag = time.time() - oldest if oldest is not None else 0.0
            samples.append((round(loop.time() - began, 2), entries, round(lag, 2)))
            await asyncio.sleep(SAMPLE_SECONDS)

    sampler = asyncio.ensure_future(sample())
    try:
        summary = await _drive(port, f"/api/v1/coupons/{coupon_id}/claim", tokens, answers)
    finally:
        sampler.cancel()
    return answers, samples, summary


def test_reconciler_keeps_up_with_a_burst_of_claims(host_alice, claim_server, reconciler):
    room = RoomFactory(streamer=host_alice.profile)
    tokens = _viewers(room.org)
    # A serving process and a reconciler are warm: connections open, scripts loaded, memos
    # filled, before the measured burst (which starts with an empty log).
    warm = _released_coupon(host_alice, room, 50)
    warm_answers, _, _ = uvloop.run(_burst(claim_server, warm.pk, tokens[:50]))
    assert [a[0] for a in warm_answers] == [201] * 50
    assert _until(_followed_up(warm.pk, 50), 60) < 60, "the warm-up was never followed up"

    coupon = _released_coupon(host_alice, room, STOCK)
    claims = tokens + tokens[:TWICE]
    answers, samples, summary = uvloop.run(_burst(claim_server, coupon.pk, claims))
    drain_s = _until(_followed_up(coupon.pk, STOCK), 60)

    lags = [lag for _, _, lag in samples]
    report = {
        **summary,
        "drain_s": round(drain_s, 2),
        "lag_samples": len(samples),
        "lag_max_s": max(lags),
        "lag_p50_s": sorted(lags)[len(lags) // 2],
        "backlog_max": max(entries for _, entries, _ in samples),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }
    print("coupon reconcile lag:", json.dumps(report))

    # The answers: everyone answered, 201 or 409 only, exactly the stock granted, nobody twice.
    assert len(answers) == len(claims)
    statuses = [a[0] for a in answers]
    assert set(statuses) == {201, 409}, ("0 errors: every answer is 201 or 409", report)
    assert {a[1] for a in answers if a[0] == 409} <= {"sold_out", "limit_reached"}
    contact_of = {t: parse_token(t).contact_id for t in tokens}
    yours = [contact_of[_token_of(a[4])] for a in answers if a[0] == 201]
    assert len(yours) == STOCK
    assert len(set(yours)) == STOCK, "nobody answered yours twice"

    # Every claim answered "yours" is in PostgreSQL, each slot once: 0 oversell, 0 doubles.
    stored = CouponClaim.unscoped.filter(coupon=coupon)
    assert sorted(stored.values_list("contact_id", flat=True)) == sorted(yours)
    assert sorted(stored.values_list("slot", flat=True)) == list(range(1, STOCK + 1))
    assert not stored.values("contact_id").annotate(n=Count("id")).filter(n__gt=1).exists()
    coupon.refresh_from_db()
    assert coupon.claimed == STOCK

    # … and in the CRM, within the bound after the last answer.
    assert drain_s <= DRAIN_BOUND_S, report
    events = Event.unscoped.filter(type="coupon.claim", props__coupon=coupon.pk)
    assert sorted(events.values_list("key", flat=True)) == sorted(
        f"coupon.claim:{coupon.pk}:{contact}:1" for contact in yours
    )

    # The lag stayed bounded while the claims kept arriving.
    assert max(lags) <= LAG_BOUND_S, report


def _token_of(request: bytes) -> str:
    return request.split(b"Authorization: Token ")[1].split(b"\r\n")[0].decode()
