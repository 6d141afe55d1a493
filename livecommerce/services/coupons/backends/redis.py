"""The ``redis`` backend: an atomic Lua script decides (stock counter, per-viewer counter) and
appends the claim to a log list; the granted claims of each micro-batch are then written to
the database in one INSERT that the answer waits for, so a claim answered 201 is committed
before its answer and survives Redis losing its data (the stock is then rebuilt from the
database, which holds every answered claim). The reconciler (``coupons.reconcile``), fed by
the log, records the CRM events and the coupon's counter. The database's unique constraints
(``(coupon, contact, nth)`` and ``(coupon, slot)``) stay the final guard: a claim the
database refuses is answered 503 ``claim_retry`` (never 201) and never counted twice.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import redis
import redis.asyncio as aredis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.utils.translation import gettext as _

from core.errors import NotFound
from livecommerce.models import Coupon, CouponClaim, claim_code, new_claim_code
from livecommerce.services.coupons import caches
from livecommerce.services.coupons.batchers import ClaimBatcher
from livecommerce.services.coupons.contract import (
    ClaimNotRecorded,
    ClaimReceipt,
    Expired,
    LimitReached,
    SoldOut,
    classify,
)
from livecommerce.services.coupons.pool import pg_pool
from livecommerce.services.coupons.records import clip_of, coupon_or_none, off_request

# One call decides a whole micro-batch of claims for one coupon, in arrival order, atomically
# (Redis runs a script alone). ARGV: org, now, n, then (contact, code, clip) per claim.
# Each result: {-1} sold out, {-2} limit reached, {-4} not loaded, {-5} other org,
# {-6} expired, or {left, nth, slot}.
_LUA_CLAIM = """
local meta = redis.call('HMGET', KEYS[1], 'org', 'limit', 'until', 'stock', 'room')
local n = tonumber(ARGV[3])
local out = {}
local fail = nil
if not meta[1] then fail = -4
elseif meta[1] ~= ARGV[1] then fail = -5
elseif tonumber(meta[3]) <= tonumber(ARGV[2]) then fail = -6 end
if fail then
  for i = 1, n do out[i] = {fail} end
  return out
end
local limit = tonumber(meta[2])
local stock = tonumber(meta[4])
local left = tonumber(redis.call('GET', KEYS[2]) or '0')
for i = 1, n do
  local base = 3 + (i - 1) * 3
  local contact = ARGV[base + 1]
  local mine = tonumber(redis.call('HGET', KEYS[3], contact) or '0')
  if mine >= limit then
    out[i] = {-2}
  elseif left <= 0 then
    out[i] = {-1}
  else
    left = redis.call('DECR', KEYS[2])
    local nth = redis.call('HINCRBY', KEYS[3], contact, 1)
    local slot = stock - left
    redis.call('RPUSH', KEYS[4], contact .. ':' .. nth .. ':' .. slot .. ':' .. ARGV[base + 2]
      .. ':' .. ARGV[2] .. ':' .. ARGV[base + 3])
    out[i] = {left, nth, slot, tonumber(meta[5])}
  end
end
return out
"""


def redis_key(coupon_id: int, part: str) -> str:
    return f"{settings.COUPON_REDIS_PREFIX}:coupon:{coupon_id}:{part}"


def aredis_client():
    """This loop's asyncio client (closed by ``caches.close_loop``)."""
    loop = asyncio.get_running_loop()
    client = caches.redis_clients.get(id(loop))
    if client is None:
        # redis-py 8 raises at once when its pool is full, and its BlockingConnectionPool
        # wakes every waiter on each release (a burst of 2,000 waiters crawls). A FIFO
        # semaphore in front of a pool of the same size admits exactly one per release.
        client = aredis.Redis.from_url(
            settings.REDIS_URL,
            max_connections=settings.COUPON_REDIS_MAX_CONNECTIONS + 8,
            decode_responses=True,
        )
        client._qm_gate = asyncio.Semaphore(settings.COUPON_REDIS_MAX_CONNECTIONS)
        client._qm_script = client.register_script(_LUA_CLAIM)
        caches.redis_clients[id(loop)] = client
    return client


def sredis_client():
    """The process's blocking client (loads, reconciler, metrics)."""
    client = caches.redis_clients.get("sync")
    if client is None:
        client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
        caches.redis_clients["sync"] = client
    return client


def redis_load(coupon: Coupon, client=None) -> None:
    """Put a released coupon's rules and remaining stock into Redis (idempotent: the stock
    counter and per-viewer counts are only seeded when absent)."""
    client = client or sredis_client()
    coupon = Coupon.unscoped.get(pk=coupon.pk)
    if coupon.released_at is None:
        return
    counts: dict[str, int] = {}
    contact_ids = CouponClaim.unscoped.filter(coupon_id=coupon.pk).values_list("contact_id")
    for (contact_id,) in contact_ids:
        counts[str(contact_id)] = counts.get(str(contact_id), 0) + 1
    pipe = client.pipeline()
    pipe.set(redis_key(coupon.pk, "left"), coupon.stock - sum(counts.values()), nx=True)
    if counts:
        for contact, n in counts.items():
            pipe.hsetnx(redis_key(coupon.pk, "mine"), contact, n)
    pipe.hset(
        redis_key(coupon.pk, "meta"),
        mapping={
            "org": str(coupon.org_id),
            "limit": str(coupon.per_viewer_limit),
            "until": str(int(coupon.valid_until.timestamp())),
            "stock": str(coupon.stock),
            "room": str(coupon.room_id),
        },
    )
    pipe.sadd(f"{settings.COUPON_REDIS_PREFIX}:coupons", str(coupon.pk))
    pipe.execute()
    caches.room_ids[coupon.pk] = coupon.room_id


class RedisClaimBatcher(ClaimBatcher):
    """One script call per micro-batch and coupon, then one INSERT of its granted claims."""

    def __init__(self, client):
        super().__init__()
        self.client = client

    async def decide(self, org_id: int, coupon_id: int, requests: list[tuple]) -> list:
        keys = [redis_key(coupon_id, p) for p in ("meta", "left", "mine", "log")]
        now = int(time.time())
        args: list = [org_id, now, len(requests)]
        for contact_id, code, clip_id in requests:
            args += (contact_id, code, clip_id)
        async with self.client._qm_gate:
            results = await self.client._qm_script(keys=keys, args=args)
        # Granted claims reach the database before anyone is told "yours" (one INSERT
        # per micro-batch): Redis may lose its data, the answered claims stay.
        granted = [
            (
                contact_id,
                int(result[1]),
                int(result[2]),
                claim_code(coupon_id, int(result[2]), code),
                clip_id,
            )
            for (contact_id, code, clip_id), result in zip(requests, results, strict=True)
            if len(result) == 4
        ]
        recorded = await _record_claims(org_id, coupon_id, now, granted) if granted else set()
        return [
            ClaimNotRecorded(_("领取未成功，请重试"))
            if len(result) == 4 and claim_code(coupon_id, int(result[2]), code) not in recorded
            else result
            for (_contact, code, _clip), result in zip(requests, results, strict=True)
        ]


# Rows written before the answer (see _ClaimBatcher._run). A clip is kept only when it is
# this organisation's and of the coupon's room, as records.clip_of checks for the reconciler.
_RECORD_CLAIMS = """
INSERT INTO livecommerce_couponclaim
  (org_id, coupon_id, contact_id, nth, slot, code, claimed_at, created_at, updated_at,
   redeemed_via, order_ref, clip_id, crm_recorded)
SELECT %(org)s, %(coupon)s, r.contact_id, r.nth, r.slot, r.code, to_timestamp(%(ts)s),
       now(), now(), '', '', clip.id, false
FROM unnest(%(contacts)s::bigint[], %(nths)s::int[], %(slots)s::int[], %(codes)s::text[],
            %(clips)s::bigint[]) AS r(contact_id, nth, slot, code, clip_id)
LEFT JOIN livecommerce_productclip clip
  ON clip.id = r.clip_id AND clip.org_id = %(org)s
  AND clip.room_id = (SELECT room_id FROM livecommerce_coupon WHERE id = %(coupon)s)
ON CONFLICT DO NOTHING
RETURNING code
"""


_CODES_HELD = "SELECT code FROM livecommerce_couponclaim WHERE code = ANY(%(codes)s::text[])"


async def _record_claims(org_id: int, coupon_id: int, ts: int, granted: list) -> set[str]:
    """Write granted claims ``(contact, nth, slot, code, clip)``; return the codes the
    database holds afterwards (a row refused by a unique constraint is left out)."""
    if connection.vendor != "postgresql":
        return await sync_to_async(_record_claims_orm)(org_id, coupon_id, ts, granted)
    pool = await pg_pool()
    params = {
        "org": org_id,
        "coupon": coupon_id,
        "ts": ts,
        "contacts": [g[0] for g in granted],
        "nths": [g[1] for g in granted],
        "slots": [g[2] for g in granted],
        "codes": [g[3] for g in granted],
        "clips": [g[4] or None for g in granted],
    }
    async with pool.connection() as conn:
        cursor = await conn.execute(_RECORD_CLAIMS, params)
        recorded = {row[0] for row in await cursor.fetchall()}
        missing = [code for code in params["codes"] if code not in recorded]
        if missing:
            # The reconciler may have written a claim from the log while this INSERT was in
            # flight (it follows the log up every second): the row is there, with this
            # claim's own random code, so the claim is the viewer's. A new statement (new
            # snapshot) sees the row that made the INSERT skip it. Seen in the coupons
            # bench's lag run: 2 of 10,000 claims answered 503 though written (issue 20).
            cursor = await conn.execute(_CODES_HELD, {"codes": missing})
            recorded |= {row[0] for row in await cursor.fetchall()}
        return recorded


def _record_claims_orm(org_id: int, coupon_id: int, ts: int, granted: list) -> set[str]:
    """The same write for a non-PostgreSQL database (the embedded default never runs the
    Redis backend in production; kept so the contract holds wherever it is configured)."""

    def write():
        coupon = Coupon.unscoped.get(pk=coupon_id)
        claimed_at = datetime.fromtimestamp(ts, tz=UTC)
        CouponClaim.unscoped.bulk_create(
            [
                CouponClaim(
                    org_id=org_id,
                    coupon_id=coupon_id,
                    contact_id=contact_id,
                    nth=nth,
                    slot=slot,
                    code=code,
                    claimed_at=claimed_at,
                    clip_id=clip_of(org_id, coupon.room_id, clip_id or None),
                    crm_recorded=False,
                )
                for contact_id, nth, slot, code, clip_id in granted
            ],
            ignore_conflicts=True,
        )
        codes = [g[3] for g in granted]
        return set(CouponClaim.unscoped.filter(code__in=codes).values_list("code", flat=True))

    return off_request(write)


def _batcher() -> RedisClaimBatcher:
    client = aredis_client()
    loop_id = id(asyncio.get_running_loop())
    batcher = caches.redis_batchers.get(loop_id)
    if batcher is None or batcher.client is not client:
        batcher = caches.redis_batchers[loop_id] = RedisClaimBatcher(client)
    return batcher


def _find_and_load(coupon_id: int) -> Coupon | None:
    coupon = coupon_or_none(coupon_id)
    if coupon is not None and coupon.released_at is not None:
        off_request(lambda: redis_load(coupon))
    return coupon


async def _load_once(coupon_id: int, asked_at: float) -> Coupon | None:
    """Find a coupon Redis does not know and load it, once for every claim that found it
    missing at the same time: after Redis lost its data a whole burst finds it missing, and
    one lookup and load (which counts the coupon's claims in the database) serves them all.
    A claim refused before a load that has since finished only needs to try again."""
    if caches.loaded_at.get(coupon_id, 0.0) > asked_at:
        return None
    key = (id(asyncio.get_running_loop()), coupon_id)
    running = caches.loads.get(key)
    if running is None:
        running = caches.loads[key] = asyncio.ensure_future(
            sync_to_async(_find_and_load)(coupon_id)
        )
        running.add_done_callback(lambda _f: caches.loads.pop(key, None))
    coupon = await asyncio.shield(running)
    if coupon is not None and coupon.released_at is not None:
        caches.loaded_at[coupon_id] = max(caches.loaded_at.get(coupon_id, 0.0), time.monotonic())
    return coupon


async def redis_claim(*, org_id: int, coupon_id: int, contact_id: int, clip_id: int | None):
    code = new_claim_code()
    asked_at = time.monotonic()
    result = await _batcher().submit(org_id, coupon_id, contact_id, code, clip_id or 0)
    if result[0] == -4:
        # Not in Redis: unknown, unreleased, or Redis lost it. Load from the database.
        coupon = await _load_once(coupon_id, asked_at)
        if coupon is not None and (coupon.org_id != org_id or coupon.released_at is None):
            raise classify(coupon, org_id, 0)
        if coupon is None and caches.loaded_at.get(coupon_id, 0.0) <= asked_at:
            raise classify(None, org_id, 0)
        result = await _batcher().submit(org_id, coupon_id, contact_id, code, clip_id or 0)
        if result[0] == -4:
            raise NotFound(_("优惠券不存在"))
    left = result[0]
    if left == -1:
        raise SoldOut(_("优惠券已抢光"))
    if left == -2:
        raise LimitReached(_("已达领取上限"))
    if left == -5:
        raise NotFound(_("优惠券不存在"))
    if left == -6:
        raise Expired(_("优惠券已过期"))
    caches.room_ids[coupon_id] = int(result[3])
    slot = int(result[2])
    return ClaimReceipt(
        coupon_id, contact_id, int(result[1]), slot, claim_code(coupon_id, slot, code), left
    )
