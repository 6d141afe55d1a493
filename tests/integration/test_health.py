"""GET /api/v1/health against a private Redis the test stops: every part that lives on it
turns to an error and the answer is 503; heartbeats go stale the same way."""

from __future__ import annotations

import uuid

import pytest

from tests.support.services import private_redis

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

REDIS_PARTS = ("cache", "hub", "claims", "send_limiter", "broker", "worker", "beat")


@pytest.fixture
def on_private_redis(settings):
    with private_redis() as redis:
        url = redis.url
        settings.REDIS_URL = settings.REALTIME_REDIS_URL = settings.CAMPAIGNS_REDIS_URL = url
        settings.HEARTBEAT_REDIS_URL = settings.CELERY_BROKER_URL = url
        settings.HEARTBEAT_PREFIX = f"qm-health-{uuid.uuid4().hex[:8]}"
        settings.COUPON_CLAIM_BACKEND = "redis"
        settings.TASK_RUNNER = "celery"
        yield redis


def test_health_is_ok_with_every_part_up_and_503_once_redis_stops(anon, on_private_redis):
    from core.heartbeats import heartbeat_write

    heartbeat_write(kind="worker", name="w1@test")
    heartbeat_write(kind="beat")
    response = anon.get("/api/v1/health")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "ok"

    on_private_redis.stop()
    response = anon.get("/api/v1/health")
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "degraded"
    assert body["database"] == "ok"
    for part in REDIS_PARTS:
        assert body[part].startswith("error"), (part, body[part])

    on_private_redis.start()  # back, but empty: the heartbeats are gone until rewritten
    body = anon.get("/api/v1/health").json()
    assert body["hub"] == body["claims"] == body["broker"] == "ok"
    assert body["worker"].startswith("error: no heartbeat")
    heartbeat_write(kind="worker", name="w1@test")
    heartbeat_write(kind="beat")
    assert anon.get("/api/v1/health").status_code == 200


def test_a_missing_beat_heartbeat_alone_makes_health_503(anon, on_private_redis):
    from core.heartbeats import heartbeat_write

    heartbeat_write(kind="worker", name="w1@test")
    response = anon.get("/api/v1/health")
    assert response.status_code == 503
    assert response.json()["beat"].startswith("error: no heartbeat")
    assert response.json()["worker"] == "ok"
