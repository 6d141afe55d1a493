"""Coupons: create, release, claim (burst-safe), reconcile, redeem.

One claim interface — ``coupon_claim`` (sync) and ``acoupon_claim`` (async, for the ASGI
fast path) — over three backends chosen by ``COUPON_CLAIM_BACKEND``:

- ``db``: one transaction that locks the coupon row, bumps ``claimed`` under
  ``claimed < stock`` and inserts the claim. The embedded default (SQLite) and the
  DRF view's path everywhere.
- ``pg``: PostgreSQL only, one SQL statement through a psycopg ``AsyncConnectionPool``
  (no Django thread per request).
- ``redis``: an atomic Lua script decides (stock counter, per-viewer counter) and appends the
  claim to a log list; the granted claims of each micro-batch are then written to the
  database in one INSERT that the answer waits for, so a claim answered 201 is committed
  before its answer and survives Redis losing its data (the stock is then rebuilt from the
  database, which holds every answered claim). The reconciler, fed by the log, records the
  CRM events and the coupon's counter. The database's unique constraints
  (``(coupon, contact, nth)`` and ``(coupon, slot)``) stay the final guard: a claim the
  database refuses is answered 503 ``claim_retry`` (never 201) and never counted twice.

Whatever the backend, a claim answers 201 with a receipt, 409 ``sold_out``, 409
``limit_reached``, 403 ``coupon_not_released`` (or expired), 404 for another
organisation's coupon.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import Conflict, DomainError, Forbidden, NotFound
from core.models import Membership
from livecommerce.events import send_room_event_on_commit
from livecommerce.models import (
    Coupon,
    CouponClaim,
    CouponKind,
    ProductClip,
    Room,
    RoomStatus,
    claim_code,
    new_claim_code,
)
from livecommerce.services.rooms import ensure_can_manage_room

log = logging.getLogger(__name__)


class SoldOut(Conflict):
    code = "sold_out"


class LimitReached(Conflict):
    code = "limit_reached"


class NotReleased(Forbidden):
    code = "coupon_not_released"


class Expired(Forbidden):
    code = "coupon_expired"


class ClaimNotRecorded(DomainError):
    """Redis granted a slot the database refused (Redis lost its data while an earlier claim
    for that slot was still being written): the viewer is asked to try again, never told
    the coupon is theirs."""

    code = "claim_retry"
    status_code = 503


@dataclass(frozen=True)
class ClaimReceipt:
    coupon: int
    contact: int
    nth: int
    slot: int
    code: str
    remaining: int

    def as_dict(self) -> dict:
        return asdict(self)


def coupon_remaining(coupon: Coupon) -> int:
    """Remaining stock now. In Redis mode the script's counter leads the database (the
    reconciler writes claims a moment later), so it is read from Redis."""
    if backend() == "redis" and coupon.released_at is not None:
        try:
            left = _sredis().get(_key(coupon.pk, "left"))
        except Exception:  # noqa: BLE001 - fall back to the database's count
            left = None
        if left is not None:
            return max(int(left), 0)
    return max(coupon.stock - coupon.claimed, 0)


def coupon_card(coupon: Coupon, *, remaining: int | None = None) -> dict:
    """What viewers see of a coupon (the ``coupon.released`` payload and the room state)."""
    return {
        "id": coupon.pk,
        "name": coupon.name,
        "kind": coupon.kind,
        "amount": str(coupon.amount),
        "threshold": str(coupon.threshold),
        "stock": coupon.stock,
        "remaining": remaining if remaining is not None else max(coupon.stock - coupon.claimed, 0),
        "per_viewer_limit": coupon.per_viewer_limit,
        "valid_until": coupon.valid_until.isoformat(),
        "released": coupon.released_at is not None,
    }


# --- create / release ------------------------------------------------------------------


def coupon_create(
    *,
    membership: Membership,
    room: Room,
    name: str,
    kind: str,
    amount: Decimal,
    threshold: Decimal = Decimal(0),
    stock: int,
    per_viewer_limit: int = 1,
    valid_until: datetime,
) -> Coupon:
    """A coupon batch for a room the caller manages. Not visible to viewers until released."""
    ensure_can_manage_room(membership=membership, room=room)
    errors: dict[str, list[str]] = {}
    if kind == CouponKind.DISCOUNT and not (Decimal("0.1") <= amount < Decimal(10)):
        errors["amount"] = [_("折扣应在 0.1 到 9.9 折之间")]
    if kind == CouponKind.THRESHOLD and threshold <= amount:
        errors["threshold"] = [_("满减门槛必须大于减免金额")]
    if valid_until <= timezone.now():
        errors["valid_until"] = [_("有效期必须晚于现在")]
    if room.status == RoomStatus.ENDED:
        raise Conflict(_("直播已结束"), code="room_ended")
    if errors:
        raise DomainError(_("优惠券参数有误"), fields=errors)
    return Coupon.objects.for_org(room.org_id).create(
        org_id=room.org_id,
        room=room,
        name=name,
        kind=kind,
        amount=amount,
        threshold=threshold if kind == CouponKind.THRESHOLD else Decimal(0),
        stock=stock,
        per_viewer_limit=per_viewer_limit,
        valid_until=valid_until,
    )


def coupon_release(*, membership: Membership, coupon: Coupon) -> Coupon:
    """Release a coupon into its room: viewers see it pop up and may claim it."""
    ensure_can_manage_room(membership=membership, room=coupon.room)
    with transaction.atomic():
        coupon = Coupon.unscoped.select_for_update().get(pk=coupon.pk)
        if coupon.released_at is not None:
            return coupon
        if coupon.valid_until <= timezone.now():
            raise Expired(_("优惠券已过期"))
        coupon.released_at = timezone.now()
        coupon.save(update_fields=["released_at", "updated_at"])
        send_room_event_on_commit(
            room_id=coupon.room_id, type="coupon.released", data={"coupon": coupon_card(coupon)}
        )
    if backend() == "redis":
        transaction.on_commit(lambda: _redis_load(coupon))
    return coupon


# --- the claim interface -----------------------------------------------------------------


def backend() -> str:
    return settings.COUPON_CLAIM_BACKEND


def coupon_claim(
    *, org_id: int, coupon_id: int, contact_id: int, clip_id: int | None = None
) -> ClaimReceipt:
    """Claim one coupon for a viewer. Raises SoldOut / LimitReached / NotReleased / Expired /
    NotFound. Never oversells, never double-claims."""
    if backend() == "db":
        return _db_claim(org_id=org_id, coupon_id=coupon_id, contact_id=contact_id, clip_id=clip_id)
    return _run_async(
        acoupon_claim(org_id=org_id, coupon_id=coupon_id, contact_id=contact_id, clip_id=clip_id)
    )


async def acoupon_claim(
    *, org_id: int, coupon_id: int, contact_id: int, clip_id: int | None = None
) -> ClaimReceipt:
    """The same contract as ``coupon_claim`` for async callers (the ASGI fast path)."""
    mode = backend()
    if mode == "redis":
        receipt = await _redis_claim(
            org_id=org_id, coupon_id=coupon_id, contact_id=contact_id, clip_id=clip_id
        )
    elif mode == "pg":
        receipt = await _pg_claim(
            org_id=org_id, coupon_id=coupon_id, contact_id=contact_id, clip_id=clip_id
        )
    else:
        return await sync_to_async(_db_claim)(
            org_id=org_id, coupon_id=coupon_id, contact_id=contact_id, clip_id=clip_id
        )
    _announce_stock(org_id, coupon_id, receipt.remaining)
    return receipt


def _run_async(coro):
    """Run a coroutine from sync code (DRF view, tests) on a private loop thread."""
    result: dict = {}

    async def with_cleanup():
        try:
            return await coro
        finally:
            # This loop dies with the call: close what was opened for it (no leaked
            # PostgreSQL connections or Redis sockets per DRF request).
            loop_id = id(asyncio.get_running_loop())
            _batchers.pop(loop_id, None)
            _pg_batchers.pop(loop_id, None)
            pool = _pg_pools.pop(loop_id, None)
            if pool is not None:
                await pool.close()
            client = _redis_clients.pop(loop_id, None)
            if client is not None:
                await client.aclose()

    def target():
        try:
            result["value"] = asyncio.run(with_cleanup())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def _classify(coupon: Coupon | None, org_id: int, mine: int) -> DomainError:
    if coupon is None or coupon.org_id != org_id:
        return NotFound(_("优惠券不存在"))
    if coupon.released_at is None:
        return NotReleased(_("优惠券尚未发放"))
    if coupon.valid_until <= timezone.now():
        return Expired(_("优惠券已过期"))
    if mine >= coupon.per_viewer_limit:
        return LimitReached(_("已达领取上限"))
    return SoldOut(_("优惠券已抢光"))


# --- backend: one database transaction -------------------------------------------------------


def _db_claim(*, org_id: int, coupon_id: int, contact_id: int, clip_id: int | None):
    now = timezone.now()
    with transaction.atomic():
        coupon = Coupon.objects.for_org(org_id).select_for_update().filter(pk=coupon_id).first()
        mine = (
            CouponClaim.objects.for_org(org_id)
            .filter(coupon_id=coupon_id, contact_id=contact_id)
            .count()
        )
        if (
            coupon is None
            or coupon.released_at is None
            or coupon.valid_until <= now
            or mine >= coupon.per_viewer_limit
            or coupon.claimed >= coupon.stock
        ):
            raise _classify(coupon, org_id, mine)
        updated = Coupon.unscoped.filter(pk=coupon_id, claimed__lt=F("stock")).update(
            claimed=F("claimed") + 1
        )
        if not updated:
            raise SoldOut(_("优惠券已抢光"))
        slot = coupon.claimed + 1
        try:
            with transaction.atomic():
                claim = CouponClaim.objects.for_org(org_id).create(
                    org_id=org_id,
                    coupon_id=coupon_id,
                    contact_id=contact_id,
                    nth=mine + 1,
                    slot=slot,
                    code=claim_code(coupon_id, slot, new_claim_code()),
                    claimed_at=now,
                    clip_id=_clip_of(org_id, coupon.room_id, clip_id),
                )
        except IntegrityError:
            # A concurrent request of the same viewer won the (coupon, contact, nth) row.
            raise LimitReached(_("已达领取上限")) from None
        _after_claims(org_id, [claim])
        remaining = coupon.stock - slot
        send_room_event_on_commit(
            room_id=coupon.room_id,
            type="coupon.stock",
            data={"coupon": coupon_id, "remaining": remaining},
        )
    return ClaimReceipt(coupon_id, contact_id, claim.nth, slot, claim.code, remaining)


def _clip_of(org_id: int, room_id: int, clip_id: int | None) -> int | None:
    if not clip_id:
        return None
    exists = ProductClip.objects.for_org(org_id).filter(pk=clip_id, room_id=room_id).exists()
    return clip_id if exists else None


def _after_claims(org_id: int, claims: list[CouponClaim]) -> None:
    """CRM events and clip attribution for freshly written claims (inside the transaction)."""
    from crm.models import Contact
    from crm.services.events import event_record

    contacts = Contact.objects.for_org(org_id).in_bulk({c.contact_id for c in claims})
    clip_counts: dict[int, int] = {}
    for claim in claims:
        contact = contacts.get(claim.contact_id)
        if contact is None:
            continue
        coupon = claim.coupon
        event_record(
            contact=contact,
            type="coupon.claim",
            props={"coupon": claim.coupon_id, "name": coupon.name, "clip": claim.clip_id},
            room_id=coupon.room_id,
            occurred_at=claim.claimed_at,
            key=f"coupon.claim:{claim.coupon_id}:{claim.contact_id}:{claim.nth}",
        )
        if claim.clip_id:
            clip_counts[claim.clip_id] = clip_counts.get(claim.clip_id, 0) + 1
    for clip_id, count in clip_counts.items():
        ProductClip.objects.for_org(org_id).filter(pk=clip_id).update(claims=F("claims") + count)


# --- stock announcements (throttled: a burst must not become 1,000 priority events) -------

_last_stock: dict[int, float] = {}
_pending_stock: dict[int, tuple[int, int]] = {}
_stock_lock = threading.Lock()


def _announce_stock(org_id: int, coupon_id: int, remaining: int) -> None:
    room_id = _room_ids.get(coupon_id)
    if room_id is None:
        return
    now = time.monotonic()
    with _stock_lock:
        last = _last_stock.get(coupon_id, 0.0)
        if remaining > 0 and now - last < settings.COUPON_STOCK_EVENT_INTERVAL:
            return
        _last_stock[coupon_id] = now
    from livecommerce import events

    def publish() -> None:
        events._publish(
            room_id, "coupon.stock", {"coupon": coupon_id, "remaining": remaining}, "all", None
        )

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is None:
        publish()
    else:
        # The hub's publish may touch Redis synchronously: keep it off the event loop.
        loop.run_in_executor(None, publish)


_room_ids: dict[int, int] = {}


# --- backend: Redis Lua ------------------------------------------------------------------

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

_redis_clients: dict = {}


def _key(coupon_id: int, part: str) -> str:
    return f"{settings.COUPON_REDIS_PREFIX}:coupon:{coupon_id}:{part}"


def _aredis():
    import redis.asyncio as aredis

    loop = asyncio.get_running_loop()
    client = _redis_clients.get(id(loop))
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
        _redis_clients[id(loop)] = client
    return client


def _sredis():
    import redis

    client = _redis_clients.get("sync")
    if client is None:
        client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
        _redis_clients["sync"] = client
    return client


def _redis_load(coupon: Coupon, client=None) -> None:
    """Put a released coupon's rules and remaining stock into Redis (idempotent: the stock
    counter and per-viewer counts are only seeded when absent)."""
    client = client or _sredis()
    coupon = Coupon.unscoped.get(pk=coupon.pk)
    if coupon.released_at is None:
        return
    counts: dict[str, int] = {}
    contact_ids = CouponClaim.unscoped.filter(coupon_id=coupon.pk).values_list("contact_id")
    for (contact_id,) in contact_ids:
        counts[str(contact_id)] = counts.get(str(contact_id), 0) + 1
    pipe = client.pipeline()
    pipe.set(_key(coupon.pk, "left"), coupon.stock - sum(counts.values()), nx=True)
    if counts:
        for contact, n in counts.items():
            pipe.hsetnx(_key(coupon.pk, "mine"), contact, n)
    pipe.hset(
        _key(coupon.pk, "meta"),
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
    _room_ids[coupon.pk] = coupon.room_id


class _ClaimBatcher:
    """Gathers the claims that arrive in one event-loop iteration and decides them with one
    script call per coupon: the per-claim cost in Python drops to a few tuple appends,
    which is what lets one ASGI process answer a burst of thousands per second."""

    MAX_BATCH = 256

    def __init__(self, client):
        self.client = client
        self.pending: dict[tuple[int, int], list] = {}
        self.scheduled = False

    def submit(self, org_id: int, coupon_id: int, contact_id: int, code: str, clip_id: int):
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.pending.setdefault((org_id, coupon_id), []).append((contact_id, code, clip_id, future))
        if not self.scheduled:
            self.scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self.scheduled = False
        batches, self.pending = self.pending, {}
        for (org_id, coupon_id), items in batches.items():
            for start in range(0, len(items), self.MAX_BATCH):
                chunk = items[start : start + self.MAX_BATCH]
                asyncio.ensure_future(self._run(org_id, coupon_id, chunk))

    async def _run(self, org_id: int, coupon_id: int, items: list) -> None:
        keys = [_key(coupon_id, p) for p in ("meta", "left", "mine", "log")]
        now = int(time.time())
        args: list = [org_id, now, len(items)]
        for contact_id, code, clip_id, _future in items:
            args += (contact_id, code, clip_id)
        try:
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
                for (contact_id, code, clip_id, _f), result in zip(items, results, strict=True)
                if len(result) == 4
            ]
            recorded = await _record_claims(org_id, coupon_id, now, granted) if granted else set()
        except Exception as exc:  # noqa: BLE001 - every waiter learns of the failure
            for item in items:
                if not item[-1].done():
                    item[-1].set_exception(exc)
            return
        for (_contact, code, _clip, future), result in zip(items, results, strict=True):
            if future.done():
                continue
            if len(result) == 4 and claim_code(coupon_id, int(result[2]), code) not in recorded:
                future.set_exception(ClaimNotRecorded(_("领取未成功，请重试")))
            else:
                future.set_result(result)


# Rows written before the answer (see _ClaimBatcher._run). A clip is kept only when it is
# this organisation's and of the coupon's room, as _clip_of checks for the reconciler.
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


async def _record_claims(org_id: int, coupon_id: int, ts: int, granted: list) -> set[str]:
    """Write granted claims ``(contact, nth, slot, code, clip)``; return the codes the
    database holds afterwards (a row refused by a unique constraint is left out)."""
    if connection.vendor != "postgresql":
        return await sync_to_async(_record_claims_orm)(org_id, coupon_id, ts, granted)
    pool = await _pg_pool()
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
        return {row[0] for row in await cursor.fetchall()}


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
                    clip_id=_clip_of(org_id, coupon.room_id, clip_id or None),
                    crm_recorded=False,
                )
                for contact_id, nth, slot, code, clip_id in granted
            ],
            ignore_conflicts=True,
        )
        codes = [g[3] for g in granted]
        return set(CouponClaim.unscoped.filter(code__in=codes).values_list("code", flat=True))

    return _off_request(write)


_batchers: dict[int, _ClaimBatcher] = {}


def _batcher() -> _ClaimBatcher:
    client = _aredis()
    loop_id = id(asyncio.get_running_loop())
    batcher = _batchers.get(loop_id)
    if batcher is None or batcher.client is not client:
        batcher = _batchers[loop_id] = _ClaimBatcher(client)
    return batcher


_loads: dict[tuple[int, int], asyncio.Future] = {}
_loaded_at: dict[int, float] = {}


def _find_and_load(coupon_id: int) -> Coupon | None:
    coupon = _coupon_or_none(coupon_id)
    if coupon is not None and coupon.released_at is not None:
        _off_request(lambda: _redis_load(coupon))
    return coupon


async def _load_once(coupon_id: int, asked_at: float) -> Coupon | None:
    """Find a coupon Redis does not know and load it, once for every claim that found it
    missing at the same time: after Redis lost its data a whole burst finds it missing, and
    one lookup and load (which counts the coupon's claims in the database) serves them all.
    A claim refused before a load that has since finished only needs to try again."""
    if _loaded_at.get(coupon_id, 0.0) > asked_at:
        return None
    key = (id(asyncio.get_running_loop()), coupon_id)
    running = _loads.get(key)
    if running is None:
        running = _loads[key] = asyncio.ensure_future(sync_to_async(_find_and_load)(coupon_id))
        running.add_done_callback(lambda _f: _loads.pop(key, None))
    coupon = await asyncio.shield(running)
    if coupon is not None and coupon.released_at is not None:
        _loaded_at[coupon_id] = max(_loaded_at.get(coupon_id, 0.0), time.monotonic())
    return coupon


async def _redis_claim(*, org_id: int, coupon_id: int, contact_id: int, clip_id: int | None):
    code = new_claim_code()
    asked_at = time.monotonic()
    result = await _batcher().submit(org_id, coupon_id, contact_id, code, clip_id or 0)
    if result[0] == -4:
        # Not in Redis: unknown, unreleased, or Redis lost it. Load from the database.
        coupon = await _load_once(coupon_id, asked_at)
        if coupon is not None and (coupon.org_id != org_id or coupon.released_at is None):
            raise _classify(coupon, org_id, 0)
        if coupon is None and _loaded_at.get(coupon_id, 0.0) <= asked_at:
            raise _classify(None, org_id, 0)
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
    _room_ids[coupon_id] = int(result[3])
    slot = int(result[2])
    return ClaimReceipt(
        coupon_id, contact_id, int(result[1]), slot, claim_code(coupon_id, slot, code), left
    )


def _coupon_or_none(coupon_id: int) -> Coupon | None:
    return _off_request(lambda: Coupon.unscoped.filter(pk=coupon_id).first())


def _off_request(fn):
    """Run a database read from an async path's worker thread and hand the connection back
    (no request cycle will close it there)."""
    try:
        return fn()
    finally:
        if not connection.in_atomic_block:
            connection.close()


# A claim written before its answer whose log entry is older than this and still not
# followed up lost its entry with Redis's data: its CRM events are recorded from the row.
ORPHAN_CLAIM_SECONDS = 60


def coupon_reconcile(*, batch: int = 2000) -> int:
    """Follow up claims logged by the Redis script: write any the answer path has not (rows
    are inserted with ON CONFLICT DO NOTHING against the unique constraints), record their
    CRM events, set the coupon's counter; the log is trimmed only after that commits. Safe
    to run concurrently and repeatedly. Claims whose log entry Redis lost are found in the
    database (``crm_recorded`` still false after ``ORPHAN_CLAIM_SECONDS``)."""
    if backend() == "pg":
        return pg_claims_follow_up()
    if backend() != "redis":
        return 0
    client = _sredis()
    lock = client.set(f"{settings.COUPON_REDIS_PREFIX}:reconcile-lock", "1", nx=True, ex=30)
    if not lock:
        return 0
    written = 0
    try:
        for raw_id in client.smembers(f"{settings.COUPON_REDIS_PREFIX}:coupons"):
            written += _reconcile_one(client, int(raw_id), batch)
        orphans_before = timezone.now() - timedelta(seconds=ORPHAN_CLAIM_SECONDS)
        pg_claims_follow_up(batch=batch, claimed_before=orphans_before)
    finally:
        client.delete(f"{settings.COUPON_REDIS_PREFIX}:reconcile-lock")
    return written


def _reconcile_one(client, coupon_id: int, batch: int) -> int:
    coupon = Coupon.unscoped.select_related("room").filter(pk=coupon_id).first()
    log_key = _key(coupon_id, "log")
    if coupon is None:
        client.delete(log_key)
        client.srem(f"{settings.COUPON_REDIS_PREFIX}:coupons", str(coupon_id))
        return 0
    written = 0
    while True:
        entries = client.lrange(log_key, 0, batch - 1)
        if not entries:
            return written
        rows = []
        for entry in entries:
            contact, nth, slot, code, ts, clip = entry.split(":")
            if int(slot) > coupon.stock:  # never happens; the database refuses it anyway
                log.error("coupon %s: slot %s beyond stock", coupon_id, slot)
                continue
            rows.append(
                CouponClaim(
                    org_id=coupon.org_id,
                    coupon_id=coupon_id,
                    contact_id=int(contact),
                    nth=int(nth),
                    slot=int(slot),
                    code=claim_code(coupon_id, int(slot), code),
                    claimed_at=datetime.fromtimestamp(int(ts), tz=UTC),
                    clip_id=_clip_of(coupon.org_id, coupon.room_id, int(clip) or None),
                )
            )
        with transaction.atomic():
            before = CouponClaim.unscoped.filter(coupon_id=coupon_id).count()
            CouponClaim.unscoped.bulk_create(rows, ignore_conflicts=True)
            total = CouponClaim.unscoped.filter(coupon_id=coupon_id).count()
            Coupon.unscoped.filter(pk=coupon_id).update(claimed=total)
            fresh = list(
                CouponClaim.unscoped.select_related("coupon").filter(
                    coupon_id=coupon_id, code__in=[r.code for r in rows]
                )
            )
            _after_claims(coupon.org_id, fresh)
            CouponClaim.unscoped.filter(pk__in=[c.pk for c in fresh]).update(crm_recorded=True)
        written += total - before
        client.ltrim(log_key, len(entries), -1)


# --- backend: PostgreSQL, one statement through an async pool -----------------------------

# One statement decides a micro-batch of claims for one coupon (arrival order = ``ord``):
# lock the coupon row, number each viewer's requests after the claims they already hold,
# keep those within the per-viewer limit, grant the first ``stock - claimed`` of them,
# bump the counter once and insert the granted rows. A concurrent batch from another
# process that slipped a claim in between our snapshot and the lock makes the INSERT hit
# a unique constraint: the whole statement rolls back and the batch is retried.
_PG_CLAIM = """
WITH req AS (
  SELECT r.contact_id, r.suffix, r.ord
  FROM unnest(%(contacts)s::bigint[], %(codes)s::text[]) WITH ORDINALITY AS r(contact_id, suffix, ord)
), cp AS (
  SELECT id, org_id, stock, claimed, per_viewer_limit FROM livecommerce_coupon
  WHERE id = %(coupon)s AND org_id = %(org)s AND released_at IS NOT NULL AND valid_until > now()
  FOR UPDATE
), mine AS (
  SELECT contact_id, count(*) AS n FROM livecommerce_couponclaim
  WHERE coupon_id = %(coupon)s AND contact_id = ANY(%(contacts)s::bigint[]) GROUP BY contact_id
), ranked AS (
  SELECT req.*, coalesce(mine.n, 0)
         + row_number() OVER (PARTITION BY req.contact_id ORDER BY req.ord) AS nth
  FROM req LEFT JOIN mine USING (contact_id)
), eligible AS (
  SELECT ranked.*, row_number() OVER (ORDER BY ranked.ord) AS k
  FROM ranked, cp WHERE ranked.nth <= cp.per_viewer_limit
), granted AS (
  SELECT eligible.*, cp.claimed + eligible.k AS slot
  FROM eligible, cp WHERE eligible.k <= cp.stock - cp.claimed
), upd AS (
  UPDATE livecommerce_coupon c SET claimed = c.claimed + (SELECT count(*) FROM granted)
  FROM cp WHERE c.id = cp.id RETURNING c.claimed, c.stock
), ins AS (
  INSERT INTO livecommerce_couponclaim
    (org_id, coupon_id, contact_id, nth, slot, code, claimed_at, created_at, updated_at,
     redeemed_via, order_ref, clip_id, crm_recorded)
  SELECT %(org)s, %(coupon)s, contact_id, nth, slot,
         %(coupon)s::text || '-' || slot::text || '-' || suffix, now(), now(), now(), '', '',
         NULL, false
  FROM granted
  RETURNING contact_id, nth, slot, code
)
SELECT ranked.ord, ins.nth, ins.slot, ranked.nth,
       (SELECT per_viewer_limit FROM cp), (SELECT stock - claimed FROM upd), ins.code
FROM ranked LEFT JOIN ins ON ins.contact_id = ranked.contact_id AND ins.nth = ranked.nth
ORDER BY ranked.ord
"""

_pg_pools: dict = {}


async def _pg_pool():
    from psycopg_pool import AsyncConnectionPool

    loop = asyncio.get_running_loop()
    pool = _pg_pools.get(id(loop))
    if pool is None:
        db = settings.DATABASES["default"]
        conninfo = (
            f"host={db['HOST'] or '127.0.0.1'} port={db['PORT'] or 5432} dbname={db['NAME']} "
            f"user={db['USER']} password={db['PASSWORD']}"
        )
        pool = AsyncConnectionPool(
            conninfo,
            min_size=2,
            max_size=settings.COUPON_PG_POOL_MAX,
            open=False,
            kwargs={"autocommit": True},
        )
        await pool.open()
        _pg_pools[id(loop)] = pool
    return pool


class _PgBatcher(_ClaimBatcher):
    """The PostgreSQL-only twin of the Redis batcher: one statement (and one commit, which
    is what bounds a single hot row) per micro-batch instead of one per claim."""

    def __init__(self, pool):
        self.pool = pool
        self.pending = {}
        self.scheduled = False

    async def _run(self, org_id: int, coupon_id: int, items: list) -> None:
        import psycopg

        params = {
            "coupon": coupon_id,
            "org": org_id,
            "contacts": [item[0] for item in items],
            "codes": [item[1] for item in items],
        }
        try:
            for attempt in range(20):
                try:
                    async with self.pool.connection() as conn:
                        cursor = await conn.execute(_PG_CLAIM, params)
                        rows = await cursor.fetchall()
                    break
                except psycopg.errors.UniqueViolation:
                    # Another process won a claim between our snapshot and our lock: the
                    # statement rolled back as a whole; decide the batch again.
                    await asyncio.sleep(0.001 * attempt)
            else:
                raise RuntimeError("coupon batch kept conflicting")
        except Exception as exc:  # noqa: BLE001 - every waiter learns of the failure
            for *_, future in items:
                if not future.done():
                    future.set_exception(exc)
            return
        for (*_, future), row in zip(items, rows, strict=True):
            if not future.done():
                future.set_result(row)


async def _pg_claim(*, org_id: int, coupon_id: int, contact_id: int, clip_id: int | None):
    loop_id = id(asyncio.get_running_loop())
    batcher = _pg_batchers.get(loop_id)
    if batcher is None:
        batcher = _pg_batchers[loop_id] = _PgBatcher(await _pg_pool())
    code = new_claim_code()
    _ord, nth, slot, wanted_nth, limit, remaining, full_code = await batcher.submit(
        org_id, coupon_id, contact_id, code, clip_id or 0
    )
    if nth is not None:
        return ClaimReceipt(coupon_id, contact_id, nth, slot, full_code, remaining)
    if limit is None:  # no such coupon here, not released, or expired
        coupon = await sync_to_async(_coupon_or_none)(coupon_id)
        raise _classify(coupon, org_id, 0)
    if wanted_nth > limit:
        raise LimitReached(_("已达领取上限"))
    raise SoldOut(_("优惠券已抢光"))


_pg_batchers: dict[int, _PgBatcher] = {}


def pg_claims_follow_up(*, batch: int = 2000, claimed_before: datetime | None = None) -> int:
    """CRM events for claims written by a fast path (``crm_recorded`` false), run by the
    periodic reconciler; idempotent through the events' keys. ``claimed_before`` leaves
    recent rows to the Redis log's follow-up."""
    pending = CouponClaim.unscoped.filter(crm_recorded=False)
    if claimed_before is not None:
        pending = pending.filter(claimed_at__lt=claimed_before)
    done = 0
    while True:
        with transaction.atomic():
            claims = list(
                pending.select_for_update(skip_locked=True).select_related("coupon")[:batch]
            )
            if not claims:
                return done
            by_org: dict[int, list[CouponClaim]] = {}
            for claim in claims:
                by_org.setdefault(claim.org_id, []).append(claim)
            for org_id, group in by_org.items():
                _after_claims(org_id, group)
            CouponClaim.unscoped.filter(pk__in=[c.pk for c in claims]).update(crm_recorded=True)
        done += len(claims)


# --- redeem -------------------------------------------------------------------------------


def coupon_redeem(
    *, org_id: int, code: str, via: str = "code", order_ref: str = "", props: dict | None = None
) -> CouponClaim:
    """Redeem a claimed coupon by its verification code (till or order callback). Idempotent
    for the same order; a second, different redemption is a 409."""
    from crm.services.events import event_record

    with transaction.atomic():
        claim = (
            CouponClaim.objects.for_org(org_id)
            .select_for_update()
            .select_related("coupon", "contact")
            .filter(code=code)
            .first()
        )
        if claim is None:
            raise NotFound(_("核销码不存在"), fields={"code": [_("核销码不存在")]})
        if claim.redeemed_at is not None:
            if order_ref and claim.order_ref == order_ref:
                return claim
            raise Conflict(_("该券已核销"), code="already_redeemed")
        if claim.coupon.valid_until <= timezone.now():
            raise Expired(_("优惠券已过期"))
        claim.redeemed_at = timezone.now()
        claim.redeemed_via = via
        claim.order_ref = order_ref
        claim.save(update_fields=["redeemed_at", "redeemed_via", "order_ref", "updated_at"])
        event_record(
            contact=claim.contact,
            type="coupon.redeem",
            props={"coupon": claim.coupon_id, "order": order_ref, **(props or {})},
            room_id=claim.coupon.room_id,
            key=f"coupon.redeem:{claim.pk}",
        )
        if claim.clip_id and order_ref:
            ProductClip.unscoped.filter(pk=claim.clip_id).update(orders=F("orders") + 1)
    return claim


def reconcile_backlog() -> tuple[int, float | None]:
    """Claims the Redis script logged that ``coupon_reconcile`` has not written to the
    database yet: (how many, unix time of the oldest or None). For metrics."""
    client = _sredis()
    entries, oldest = 0, None
    for raw_id in client.smembers(f"{settings.COUPON_REDIS_PREFIX}:coupons"):
        log_key = _key(int(raw_id), "log")
        count = client.llen(log_key)
        if not count:
            continue
        entries += count
        first = client.lindex(log_key, 0)
        if first:
            stamp = float(first.split(":")[4])
            oldest = stamp if oldest is None else min(oldest, stamp)
    return entries, oldest
