"""Fixed-window counters in the cache (atomic INCR on Redis, locked on locmem)."""

from __future__ import annotations

import ipaddress
import time

from django.conf import settings
from django.core.cache import cache

from core.errors import RateLimited


def parse_rule(rule: str) -> tuple[int, int]:
    count, _, seconds = rule.partition("/")
    return int(count), int(seconds or 60)


def hit(name: str, identity: str, *, rule: str | None = None) -> bool:
    """Count one hit for (name, identity); False when the budget for this window is spent."""
    limit, window = parse_rule(rule or settings.RATE_LIMITS[name])
    bucket = int(time.time() // window)
    key = f"rl:{name}:{identity}:{bucket}"
    if cache.add(key, 1, timeout=window + 1):
        count = 1
    else:
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=window + 1)
            count = 1
    return count <= limit


def release(name: str, identity: str, *, rule: str | None = None) -> None:
    """Give back one hit counted by ``hit`` in this window (a reserved slot not used)."""
    _limit, window = parse_rule(rule or settings.RATE_LIMITS[name])
    try:
        cache.decr(f"rl:{name}:{identity}:{int(time.time() // window)}")
    except ValueError:  # the window ended meanwhile: nothing to give back
        pass


def spent(name: str, identity: str, *, rule: str | None = None) -> bool:
    """True when (name, identity) has used its whole budget in this window (counts nothing)."""
    limit, window = parse_rule(rule or settings.RATE_LIMITS[name])
    count = cache.get(f"rl:{name}:{identity}:{int(time.time() // window)}") or 0
    return count >= limit


def enforce(name: str, identity: str, *, rule: str | None = None) -> None:
    if not hit(name, identity, rule=rule):
        raise RateLimited()


def client_ip(request) -> str | None:
    """The caller's IP address, the one helper every view, rate limit and audit row uses.

    Behind N trusted proxies (``TRUSTED_PROXY_COUNT``; `make prod` runs one nginx that
    appends its peer's address) it is the N-th address from the right of X-Forwarded-For:
    anything further left was written by the client and is ignored. With no trusted proxy it
    is the socket peer (``REMOTE_ADDR``). None when unknown or not an IP address (a Unix
    socket peer with no proxy header), so audit rows store NULL rather than a made-up value.
    """
    hops = settings.TRUSTED_PROXY_COUNT
    candidate = request.META.get("REMOTE_ADDR", "")
    if hops:
        forwarded = [
            part.strip()
            for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if part.strip()
        ]
        if len(forwarded) >= hops:
            candidate = forwarded[-hops]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None
