"""Tencent Cloud live (云直播) adapter.

Push URLs are signed with ``txSecret = md5(key + stream + txTime)`` where ``txTime`` is
the expiry as upper-case hex (Tencent's anti-leech rule). Callbacks are JSON with
``t`` (expiry, Unix seconds) and ``sign = md5(callback_key + t)``; ``event_type`` 1 =
stream start, 0 = stream end, 100 = recording file ready.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from django.conf import settings

from livecommerce.media import callbacks


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - Tencent's protocol


def push_url(room, *, ttl: int | None = None) -> str:
    expires = int(time.time()) + (ttl or settings.MEDIA_PUSH_TTL)
    tx_time = f"{expires:X}"
    secret = _md5(f"{settings.TENCENT_LIVE_PUSH_KEY}{room.stream_key}{tx_time}")
    return (
        f"rtmp://{settings.TENCENT_LIVE_PUSH_DOMAIN}/{settings.TENCENT_LIVE_APP}/"
        f"{room.stream_key}?txSecret={secret}&txTime={tx_time}"
    )


def play_url(room) -> str:
    return (
        f"https://{settings.TENCENT_LIVE_PLAY_DOMAIN}/{settings.TENCENT_LIVE_APP}/"
        f"{room.stream_key}.m3u8"
    )


def callback_sign(t: int | str) -> str:
    return _md5(f"{settings.TENCENT_LIVE_CALLBACK_KEY}{t}")


def signature_ok(body: dict) -> bool:
    try:
        t = int(body.get("t"))
    except (TypeError, ValueError):
        return False
    if t < time.time():
        return False
    return hmac.compare_digest(callback_sign(t), str(body.get("sign", "")))


def handle(body: dict) -> None:
    """Dispatch one verified callback (idempotent)."""
    event = body.get("event_type")
    stream = str(body.get("stream_id") or body.get("stream_param", "") or "")
    if event == 1:
        callbacks.stream_started(stream_key=stream)
    elif event == 0:
        callbacks.stream_stopped(stream_key=stream)
    elif event == 100:
        file_id = str(body.get("file_id") or body.get("video_url") or "")
        if not callbacks.first_time("tencent:record", f"{stream}:{file_id}"):
            return
        callbacks.recording_ready(
            stream_key=stream,
            url=str(body.get("video_url", "")),
            source="tencent",
            duration_s=int(body.get("duration") or 0),
        )
