"""Read-side helpers for the foundation: health of the parts the product depends on."""

from __future__ import annotations

import asyncio
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return "ok"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return f"error: {type(exc).__name__}"


async def _layer_round_trip() -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    marker = uuid.uuid4().hex
    await layer.send(channel, {"type": "health.check", "marker": marker})
    message = await asyncio.wait_for(layer.receive(channel), timeout=2)
    if message.get("marker") != marker:
        raise RuntimeError("channel layer returned another message")


def _channel_layer() -> str:
    try:
        async_to_sync(_layer_round_trip)()
        return "ok"
    except Exception as exc:  # noqa: BLE001
        return f"error: {type(exc).__name__}"


def _broker() -> str:
    if settings.TASK_RUNNER != "celery":
        return f"ok ({settings.TASK_RUNNER})"
    from qianmian.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return "ok"
    except Exception as exc:  # noqa: BLE001
        return f"error: {type(exc).__name__}"


def health_report() -> dict:
    report = {"database": _database(), "channel_layer": _channel_layer(), "broker": _broker()}
    report["status"] = "ok" if all(v.startswith("ok") for v in report.values()) else "degraded"
    return report
