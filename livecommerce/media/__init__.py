"""Media adapters: the app issues signed push URLs and play URLs; it never relays video."""

from __future__ import annotations

import hashlib
import hmac
import time

from django.conf import settings

from core.links import absolute_url
from livecommerce.media import tencent


def _sign(stream_key: str, expires: int) -> str:
    secret = settings.MEDIA_PUSH_SECRET.encode()
    return hmac.new(secret, f"{stream_key}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]


def push_url(room) -> str:
    """RTMP URL for OBS with an expiring signature checked by the on_publish callback."""
    if settings.MEDIA_PROVIDER == "tencent":
        return tencent.push_url(room)
    expires = int(time.time()) + settings.MEDIA_PUSH_TTL
    base = settings.MEDIA_RTMP_URL.rstrip("/")
    return f"{base}/{room.stream_key}?exp={expires}&sign={_sign(room.stream_key, expires)}"


def verify_push_signature(stream_key: str, expires: str, sign: str) -> bool:
    try:
        expires_at = int(expires)
    except (TypeError, ValueError):
        return False
    if expires_at < time.time():
        return False
    return hmac.compare_digest(_sign(stream_key, expires_at), sign or "")


def play_url(room, *, request=None) -> str:
    """The HLS URL a viewer plays. MEDIA_HLS_URL may be a path ("/hls", nginx in front of
    the app serves it): then it is made absolute on the address ``request`` came to."""
    if settings.MEDIA_PROVIDER == "tencent":
        return tencent.play_url(room)

    base = settings.MEDIA_HLS_URL.rstrip("/")
    return absolute_url(f"{base}/{room.stream_key}.m3u8", request=request)
