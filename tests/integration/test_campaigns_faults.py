"""Exactly-once sending under faults, against real PostgreSQL and Redis.

Workers are real subprocesses (``manage.py campaigns_send`` or a Celery worker) on the test
database; the SMS provider is the Tencent stub, which counts what every phone received.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection, models

from campaigns.models import Delivery, DeliveryStatus, Provider
from campaigns.services.receipts import receipt_apply
from campaigns.stubs.sms import TencentSmsStub
from core import pii
from tests.campaigns.factories import ProviderAccountFactory, TemplateFactory
from tests.factories import OrganizationFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
N = 10_000
FINAL = {
    DeliveryStatus.SENT,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.UNKNOWN,
    DeliveryStatus.FAILED,
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker_env(**extra) -> dict:
    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        DJANGO_ENV="test",
        DATABASE_URL=(
            f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}"
        ),
        CAMPAIGNS_KEY_PREFIX=f"qm-test-{uuid.uuid4().hex[:8]}",
        SMS_REQUEST_TIMEOUT="1",
        CAMPAIGNS_CLAIM_BATCH="1000",
        LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


@pytest.fixture
def stub():
    with TencentSmsStub(delay=2.0) as server:
        yield server


@pytest.fixture
def setup(stub):
    org = OrganizationFactory(slug=f"faults-{uuid.uuid4().hex[:6]}")
    account = ProviderAccountFactory(
        org=org, provider=Provider.TENCENT, endpoint=stub.endpoint, qps=5000
    )
    template = TemplateFactory(
        org=org, message_class="service", provider_account=account, body="您预约的{name}即将开播"
    )
    phones = [f"13{i:09d}" for i in range(N)]
    encrypted = [(pii.encrypt(p), pii.lookup_hash("phone", p)) for p in phones]
    return org, account, template, encrypted


def _plant(org, account, template, encrypted, tag: str) -> None:
    now = account.created_at
    Delivery.objects.for_org(org).bulk_create(
        [
            Delivery(
                org=org,
                channel="sms",
                message_class="service",
                template=template,
                account=account,
                key=f"{tag}:{i}",
                to_encrypted=enc,
                to_hash=h,
                params={"name": "春季上新"},
                due_at=now,
            )
            for i, (enc, h) in enumerate(encrypted)
        ],
        batch_size=2000,
    )


def _clone(org, source: str, tag: str) -> None:
    """A fresh pending copy of a planted set, in one INSERT … SELECT (fast repetitions)."""
    table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (org_id, created_at, updated_at, channel, message_class, "  # noqa: S608
            f"template_id, account_id, key, to_encrypted, to_hash, app_id, params, status, "
            f"reason, due_at, deferred, attempts, provider_message_id, batch_key, error) "
            f"SELECT org_id, now(), now(), channel, message_class, template_id, account_id, "
            f"%s || substr(key, length(%s) + 1), to_encrypted, to_hash, app_id, params, "
            f"'pending', '', due_at, false, 0, '', '', '' FROM {table} "
            f"WHERE org_id = %s AND key LIKE %s",
            [tag, source, org.pk, f"{source}%"],
        )


def _sender(env) -> subprocess.Popen:
    return subprocess.Popen(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", "campaigns_send", "--batch", "1000"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _assert_exactly_once(org, stub, tag: str) -> dict:
    rows = Delivery.objects.for_org(org).filter(key__startswith=tag)
    statuses = {
        s: rows.filter(status=s).count() for s in set(rows.values_list("status", flat=True))
    }
    assert set(statuses) <= FINAL, statuses
    assert not stub.duplicates(), f"sent twice: {list(stub.duplicates().items())[:5]}"
    # Every row the outbox calls sent really reached its phone exactly once.
    assert len(stub.received) >= statuses.get(DeliveryStatus.SENT, 0)
    return statuses


def test_kill_9_of_a_worker_at_random_points_never_sends_twice(setup, stub):
    org, account, template, encrypted = setup
    rng = random.Random(1123)
    env = _worker_env()
    killed_mid_send = 0
    for rep in range(10):
        stub.reset()
        tag = f"rep{rep}:"
        if rep == 0:
            _plant(org, account, template, encrypted, tag.rstrip(":"))
        else:
            _clone(org, "rep0:", tag)
        worker = _sender(env)
        # Kill at a random point once the worker is inside the send (start-up time varies a
        # lot on a shared box, so wait for its first claim rather than guessing).
        rows = Delivery.objects.for_org(org).filter(key__startswith=tag)
        deadline = time.monotonic() + 60
        while not rows.exclude(status=DeliveryStatus.PENDING).exists():
            assert time.monotonic() < deadline, "the worker never started"
            time.sleep(0.02)
        # A random point measured in rows, not seconds: the sender got fast enough to finish
        # 10,000 rows inside a fixed random delay, which then missed the send altogether.
        left = rng.randrange(N // 20, N)
        while rows.filter(status=DeliveryStatus.PENDING).count() > left and worker.poll() is None:
            time.sleep(0.005)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        caught = (
            Delivery.objects.for_org(org)
            .filter(key__startswith=tag, status=DeliveryStatus.SENDING)
            .count()
        )
        killed_mid_send += bool(caught)
        # The reconciler settles rows the dead worker left in "sending", then a fresh worker
        # finishes the rest.
        from campaigns.services.sending import deliveries_reconcile_stale

        deliveries_reconcile_stale(older_than=0)
        finisher = _sender(env)
        assert finisher.wait(timeout=120) == 0, finisher.stderr.read().decode()[-2000:]
        # Receipts reconcile the ambiguous rows that did reach a phone.
        ambiguous = set(
            Delivery.objects.for_org(org)
            .filter(key__startswith=tag, status=DeliveryStatus.UNKNOWN)
            .values_list("batch_key", flat=True)
        )
        for receipt in stub.receipts():
            if receipt["ext"] in ambiguous:
                receipt_apply(
                    org=org,
                    phone=receipt["mobile"],
                    delivered=True,
                    provider_message_id=receipt["sid"],
                    batch_key=receipt["ext"],
                )
        statuses = _assert_exactly_once(org, stub, tag)
        assert sum(statuses.values()) == N
        reached = statuses.get(DeliveryStatus.SENT, 0) + statuses.get(DeliveryStatus.DELIVERED, 0)
        # After reconciliation: every phone that got the message has a sent/delivered row,
        # and what is left "unknown" never reached anyone.
        assert reached == len(stub.received)
        assert reached + statuses.get(DeliveryStatus.UNKNOWN, 0) == N
    assert killed_mid_send >= 3, "the kills should land mid-send in most repetitions"


def _redis_server(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(  # noqa: S603
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def _publish(broker: str, task, **kwargs) -> None:
    from kombu import Connection

    import qianmian.celery  # noqa: F401 - makes the project's Celery app current

    with Connection(broker) as conn:
        task.apply_async(kwargs=kwargs, connection=conn)


def _wait_final(org, tag: str, timeout: float = 90) -> None:
    rows = Delivery.objects.for_org(org).filter(key__startswith=tag)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not rows.filter(status__in=[DeliveryStatus.PENDING, DeliveryStatus.SENDING]).exists():
            return
        time.sleep(0.3)
    raise AssertionError(dict(rows.values_list("status").annotate(n=models.Count("pk"))))


def test_broker_restart_mid_send_loses_nothing_and_sends_nothing_twice(setup, stub):
    from campaigns.tasks import send_deliveries, tick

    org, account, template, encrypted = setup
    port = _free_port()
    broker = f"redis://127.0.0.1:{port}/0"
    redis = _redis_server(port)
    env = _worker_env(CELERY_BROKER_URL=broker, TASK_RUNNER="celery")
    worker = subprocess.Popen(  # noqa: S603
        [
            sys.executable, "-m", "celery", "-A", "qianmian", "worker", "--pool=solo",
            "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        tag = "broker:"
        _plant(org, account, template, encrypted, "broker")
        ids = list(
            Delivery.objects.for_org(org).filter(key__startswith=tag).values_list("pk", flat=True)
        )
        for start in range(0, len(ids), 500):
            _publish(broker, send_deliveries, ids=ids[start : start + 500])
        rows = Delivery.objects.for_org(org).filter(key__startswith=tag)
        deadline = time.monotonic() + 60
        while rows.filter(status=DeliveryStatus.SENT).count() < 1000:
            assert time.monotonic() < deadline, "the worker never started sending"
            time.sleep(0.1)
        # The broker dies mid-send and comes back empty (no persistence): queued tasks are lost.
        redis.kill()
        redis.wait()
        time.sleep(1.0)
        redis = _redis_server(port)
        assert rows.filter(status=DeliveryStatus.PENDING).exists(), "restart came too late"
        # Beat's next tick recovers from the database, not from the lost queue.
        deadline = time.monotonic() + 60
        while rows.filter(status=DeliveryStatus.PENDING).exists():
            assert time.monotonic() < deadline, "nothing recovered after the restart"
            with contextlib.suppress(Exception):  # the broker may still be coming back
                _publish(broker, tick)
            time.sleep(2.0)
        _wait_final(org, tag)
        statuses = _assert_exactly_once(org, stub, tag)
        assert statuses == {DeliveryStatus.SENT: N}
        assert len(stub.received) == N
    finally:
        worker.kill()
        worker.wait()
        redis.kill()
        redis.wait()


def test_provider_timeouts_leave_rows_unknown_and_nobody_gets_two(setup, stub):
    org, account, template, encrypted = setup
    stub.delay = 1.5
    stub.fault_rate = {"timeout": 0.05, "5xx": 0.05, "ratelimit": 0.1}
    # With ~10 batch requests the random faults alone may miss; arm one of each for sure.
    stub.inject("timeout", count=1)
    stub.inject("5xx", count=1)
    tag = "timeouts:"
    _plant(org, account, template, encrypted[:2000], "timeouts")
    deadline = time.monotonic() + 120
    rows = Delivery.objects.for_org(org).filter(key__startswith=tag)
    while rows.filter(status__in=[DeliveryStatus.PENDING]).exists():
        assert time.monotonic() < deadline
        # Backoff elapses instantly for the test: retryable rows are due again now.
        rows.filter(status=DeliveryStatus.PENDING).update(due_at=account.created_at)
        worker = _sender(_worker_env(SMS_REQUEST_TIMEOUT="0.5"))
        assert worker.wait(timeout=120) == 0
    stub.fault_rate = {}
    statuses = _assert_exactly_once(org, stub, tag)
    assert statuses.get(DeliveryStatus.UNKNOWN, 0) > 0  # timeouts and 5xx happened
    assert statuses.get(DeliveryStatus.SENT, 0) + statuses[DeliveryStatus.UNKNOWN] == 2000
    sent_rows = rows.filter(status=DeliveryStatus.SENT).count()
    # Every sent row reached its phone once; unknown rows reached it at most once.
    assert sent_rows <= len(stub.received) <= 2000
