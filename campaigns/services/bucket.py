"""One global rate limiter per provider account, shared by every worker process.

Providers rate-limit per account, so a per-worker limit (Celery's ``rate_limit``) would
multiply the budget by the number of workers. With Redis the limiter is a sliding-window
log kept in a sorted set and updated by one Lua script (atomic, with Redis's own clock, so
worker clocks do not matter): a request is admitted only if fewer than ``qps`` requests were
admitted in the preceding window. Unlike a classic token bucket (which lets a full bucket
plus its refill through in one second) this never admits more than ``qps`` in ANY window.
The window carries a small margin so network jitter between admission and arrival at the
provider cannot squeeze ``qps + 1`` arrivals into one second.

A sender with several requests ready takes up to ``n`` slots in one call (``acquire_many``):
the script admits ``min(n, qps - admitted in the window)`` at once, which is the same rule
applied n times at the same instant, so the bound holds whatever ``n``.

Without Redis (the embedded default) the same algorithm runs in process memory.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from functools import lru_cache

import redis
from django.conf import settings

_ACQUIRE = """
local key = KEYS[1]
local qps = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count < qps then
  local n = math.min(want, qps - count)
  local seq = redis.call('INCRBY', key .. ':seq', n)
  for i = seq - n + 1, seq do
    redis.call('ZADD', key, now, i)
  end
  redis.call('PEXPIRE', key, math.floor(window / 1000) + 1000)
  redis.call('PEXPIRE', key .. ':seq', math.floor(window / 1000) + 1000)
  return {n, 0}
end
local oldest = redis.call('ZRANGE', key, count - qps, count - qps, 'WITHSCORES')
return {0, math.max(1, oldest[2] + window - now)}
"""


def _window_us() -> int:
    return int((1.0 + settings.SMS_BUCKET_MARGIN) * 1_000_000)


class RedisBucket:
    def __init__(self, url: str, prefix: str):
        self.client = redis.Redis.from_url(url)
        self.script = self.client.register_script(_ACQUIRE)
        self.prefix = prefix

    def try_acquire(self, name: str, qps: int, n: int = 1) -> tuple[int, float]:
        """(slots admitted, up to ``n``; seconds to wait before trying again when none)."""
        admitted, wait_us = self.script(
            keys=[f"{self.prefix}:bucket:{name}"], args=[qps, _window_us(), n]
        )
        return int(admitted), int(wait_us) / 1_000_000


class LocalBucket:
    def __init__(self):
        self._lock = threading.Lock()
        self._logs: dict[str, deque] = {}

    def try_acquire(self, name: str, qps: int, n: int = 1) -> tuple[int, float]:
        window = _window_us() / 1_000_000
        with self._lock:
            log = self._logs.setdefault(name, deque())
            now = time.monotonic()
            while log and log[0] <= now - window:
                log.popleft()
            if len(log) < qps:
                admitted = min(n, qps - len(log))
                log.extend([now] * admitted)
                return admitted, 0.0
            return 0, max(0.001, log[len(log) - qps] + window - now)


@lru_cache(maxsize=4)
def _bucket(url: str, prefix: str):
    return RedisBucket(url, prefix) if url else LocalBucket()


def bucket_get():
    return _bucket(settings.CAMPAIGNS_REDIS_URL, settings.CAMPAIGNS_KEY_PREFIX)


def acquire_many(name: str, qps: int, n: int, *, timeout: float = 30.0) -> int:
    """Block until at least one of ``n`` request slots is admitted for ``name``; returns how
    many were (0 after ``timeout``). Admitted requests must leave now: the window's margin
    (``SMS_BUCKET_MARGIN``) is all the delay between admission and arrival it absorbs."""
    bucket = bucket_get()
    deadline = time.monotonic() + timeout
    while True:
        admitted, wait = bucket.try_acquire(name, qps, n)
        if admitted:
            return admitted
        if time.monotonic() + wait > deadline:
            return 0
        time.sleep(min(wait, 0.25))


def acquire(name: str, qps: int, *, timeout: float = 30.0) -> bool:
    """Block until one request slot is admitted for ``name`` (False after ``timeout``)."""
    return acquire_many(name, qps, 1, timeout=timeout) > 0
