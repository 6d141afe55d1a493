"""The integration tier: the same suite runs on PostgreSQL + Redis; these tests check the
parts only real services have."""

import asyncio

import pytest
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection

pytestmark = pytest.mark.integration


@pytest.mark.django_db
def test_database_is_postgresql_with_a_connection_pool():
    assert connection.vendor == "postgresql"
    assert "pool" in settings.DATABASES["default"]["OPTIONS"]


def test_redis_channel_layer_round_trip_between_two_layer_instances():
    from channels_redis.core import RedisChannelLayer

    config = settings.CHANNEL_LAYERS["default"]["CONFIG"]

    async def round_trip():
        sender, receiver = RedisChannelLayer(**config), RedisChannelLayer(**config)
        channel = await receiver.new_channel()
        await receiver.group_add("health-it", channel)
        await sender.group_send("health-it", {"type": "ping", "text": "你好"})
        message = await asyncio.wait_for(receiver.receive(channel), timeout=5)
        await receiver.group_discard("health-it", channel)
        return message

    assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    assert get_channel_layer() is not None
    message = asyncio.run(round_trip())
    assert message == {"type": "ping", "text": "你好"}


@pytest.mark.django_db
def test_health_reports_postgres_and_redis_ok(anon):
    body = anon.get("/api/v1/health").json()
    assert body["database"] == "ok"
    # The parts on the integration tier's Redis are really pinged.
    assert body["cache"] == body["hub"] == body["claims"] == body["send_limiter"] == "ok"
