"""Campaign delivery on real PostgreSQL + Redis: the global limiter across processes and a
forced rollback that must enqueue nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
import redis
from django.db import transaction

from campaigns.models import Delivery
from campaigns.services.campaigns import campaign_create, campaign_launch
from core import pii
from crm.models import Contact, ContactIdentity
from tests.campaigns.factories import ProviderAccountFactory, TemplateFactory
from tests.integration.test_campaigns_faults import ROOT, _free_port, _redis_server

pytestmark = pytest.mark.integration

ACQUIRE = """
import json, time
from campaigns.services import bucket
times = []
for _ in range({n}):
    assert bucket.acquire("it-limiter", {qps}, timeout=30)
    times.append(time.time())
print(json.dumps(times))
"""


def test_the_limiter_never_admits_more_than_qps_in_any_second_across_processes(settings):
    qps, per_process = 20, 30
    env = dict(os.environ, CAMPAIGNS_KEY_PREFIX=f"qm-it-{uuid.uuid4().hex[:8]}", DJANGO_ENV="test")
    env["CAMPAIGNS_REDIS_URL"] = settings.REDIS_URL
    procs = [
        subprocess.Popen(  # noqa: S603
            [sys.executable, "manage.py", "shell", "-c", ACQUIRE.format(n=per_process, qps=qps)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=60)[0].strip().splitlines()[-1] for p in procs]
    times = sorted(t for out in outputs for t in json.loads(out))
    assert len(times) == 3 * per_process
    worst, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        worst = max(worst, end - start + 1)
    assert worst <= qps
    # … and it is not idle either: 90 admissions at 20/s take about 4.5 s, not much more.
    assert times[-1] - times[0] < 90 / qps + 1.5


@pytest.mark.django_db(transaction=True)
def test_a_forced_rollback_of_a_1000_row_launch_enqueues_nothing(acme, settings):
    from qianmian.celery import app

    port = _free_port()
    broker_url = f"redis://127.0.0.1:{port}/0"
    server = _redis_server(port)
    previous = app.conf.broker_url
    settings.TASK_RUNNER = "celery"
    app.conf.broker_url = broker_url
    app._pool = None  # a fresh producer pool on the test's own broker
    try:
        account = ProviderAccountFactory(org=acme)
        template = TemplateFactory(org=acme, provider_account=account)
        contacts = Contact.objects.for_org(acme).bulk_create(
            [Contact(org=acme, nickname=f"p{i}") for i in range(1000)]
        )
        ContactIdentity.objects.for_org(acme).bulk_create(
            [
                ContactIdentity(
                    org=acme,
                    contact=c,
                    kind="phone",
                    value_hash=pii.lookup_hash("phone", f"135{i:08d}"),
                    value_encrypted=pii.encrypt(f"135{i:08d}"),
                )
                for i, c in enumerate(contacts)
            ]
        )
        queue = redis.Redis(port=port)

        def launch():
            campaign = campaign_create(
                org=acme, name="回滚", channel="sms", variants=[{"template": template}]
            )
            campaign_launch(campaign=campaign)
            return campaign

        with pytest.raises(RuntimeError), transaction.atomic():
            launch()
            assert Delivery.objects.for_org(acme).count() == 1000
            raise RuntimeError("forced rollback")
        assert Delivery.objects.for_org(acme).count() == 0
        assert queue.llen("celery") == 0  # nothing reached the broker
        # Control: the same launch committed does enqueue its send task.
        launch()
        assert Delivery.objects.for_org(acme).count() == 1000
        assert queue.llen("celery") == 1
    finally:
        app.conf.broker_url = previous
        app._pool = None
        server.kill()
        server.wait()
