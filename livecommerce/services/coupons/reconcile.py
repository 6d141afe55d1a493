"""Follow-up of claims written by the fast backends: the Redis log's claims into the
database with their CRM events and counters, the ``pg`` backend's CRM events, and the
backlog figures for metrics."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from livecommerce.models import Coupon, CouponClaim, claim_code
from livecommerce.services.coupons.backends.redis import redis_key, sredis_client
from livecommerce.services.coupons.contract import backend
from livecommerce.services.coupons.records import after_claims, claim_events_record, clip_of

log = logging.getLogger(__name__)

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
    client = sredis_client()
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
    log_key = redis_key(coupon_id, "log")
    if coupon is None:
        client.delete(log_key)
        client.srem(f"{settings.COUPON_REDIS_PREFIX}:coupons", str(coupon_id))
        return 0
    follow_up = _follow_up_pg if connection.vendor == "postgresql" else _follow_up_orm
    written = 0
    while True:
        entries = client.lrange(log_key, 0, batch - 1)
        if not entries:
            return written
        claims = []
        for entry in entries:
            contact, nth, slot, code, ts, clip = entry.split(":")
            if int(slot) > coupon.stock:  # never happens; the database refuses it anyway
                log.error("coupon %s: slot %s beyond stock", coupon_id, slot)
                continue
            claims.append(
                (
                    int(contact),
                    int(nth),
                    int(slot),
                    claim_code(coupon_id, int(slot), code),
                    ts,
                    clip,
                )
            )
        with transaction.atomic():
            written += follow_up(coupon, claims)
        # Trimmed only after the commit: a crash before it replays the batch, which then
        # inserts nothing (unique constraints) and records nothing (``crm_recorded``, keys).
        client.ltrim(log_key, len(entries), -1)


# The log's claims the answer path has not written (it writes each micro-batch before its
# answer, so normally none; a clip is kept only when it is this organisation's and of the
# coupon's room, as at answer time). ``crm_recorded`` false: the next statement marks it.
_INSERT_MISSING = """
INSERT INTO livecommerce_couponclaim
  (org_id, coupon_id, contact_id, nth, slot, code, claimed_at, created_at, updated_at,
   redeemed_via, order_ref, clip_id, crm_recorded)
SELECT %(org)s, %(coupon)s, r.contact_id, r.nth, r.slot, r.code, to_timestamp(r.ts),
       now(), now(), '', '', clip.id, false
FROM unnest(%(contacts)s::bigint[], %(nths)s::int[], %(slots)s::int[], %(codes)s::text[],
            %(tss)s::bigint[], %(clips)s::bigint[]) AS r(contact_id, nth, slot, code, ts, clip_id)
LEFT JOIN livecommerce_productclip clip
  ON clip.id = r.clip_id AND clip.org_id = %(org)s AND clip.room_id = %(room)s
ON CONFLICT DO NOTHING
"""

# The batch's claims whose CRM follow-up has not run, marked in one statement that also
# adds them to their clips' counters and sets the coupon's counter; it returns them for
# their events. A separate statement from the insert: its snapshot sees the rows the insert
# waited for (an answer path's INSERT still in flight when the log was read).
_MARK_FOLLOWED_UP = """
WITH fresh AS (
  UPDATE livecommerce_couponclaim c SET crm_recorded = true, updated_at = now()
  WHERE c.coupon_id = %(coupon)s AND c.code = ANY(%(codes)s::text[]) AND NOT c.crm_recorded
  RETURNING c.id, c.contact_id, c.nth, c.claimed_at, c.clip_id
), clips AS (
  UPDATE livecommerce_productclip p SET claims = p.claims + f.n
  FROM (SELECT clip_id, count(*) AS n FROM fresh WHERE clip_id IS NOT NULL GROUP BY clip_id) f
  WHERE p.id = f.clip_id
), counter AS (
  UPDATE livecommerce_coupon SET claimed =
    (SELECT count(*) FROM livecommerce_couponclaim WHERE coupon_id = %(coupon)s)
  WHERE id = %(coupon)s
)
SELECT contact_id, nth, claimed_at, clip_id FROM fresh ORDER BY id
"""


def _follow_up_pg(coupon: Coupon, claims: list[tuple]) -> int:
    """One batch of the log on PostgreSQL, set-based (inside the caller's transaction): the
    missing rows in one INSERT, the follow-up marks and counters in one statement, the CRM
    events in one ``events_record_batch`` INSERT; returns how many rows it inserted."""
    params = {
        "org": coupon.org_id,
        "coupon": coupon.pk,
        "room": coupon.room_id,
        "contacts": [c[0] for c in claims],
        "nths": [c[1] for c in claims],
        "slots": [c[2] for c in claims],
        "codes": [c[3] for c in claims],
        "tss": [int(c[4]) for c in claims],
        "clips": [int(c[5]) or None for c in claims],
    }
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_MISSING, params)
        inserted = max(cursor.rowcount, 0)
        cursor.execute(_MARK_FOLLOWED_UP, params)
        fresh = cursor.fetchall()
    claim_events_record(coupon, fresh)
    return inserted


def _follow_up_orm(coupon: Coupon, claims: list[tuple]) -> int:
    """The same batch through the ORM (a non-PostgreSQL database: the embedded default never
    runs the Redis backend in production; kept so the contract holds wherever it is set)."""
    coupon_id = coupon.pk
    rows = [
        CouponClaim(
            org_id=coupon.org_id,
            coupon_id=coupon_id,
            contact_id=contact,
            nth=nth,
            slot=slot,
            code=code,
            claimed_at=datetime.fromtimestamp(int(ts), tz=UTC),
            clip_id=clip_of(coupon.org_id, coupon.room_id, int(clip) or None),
            crm_recorded=False,
        )
        for contact, nth, slot, code, ts, clip in claims
    ]
    before = CouponClaim.unscoped.filter(coupon_id=coupon_id).count()
    CouponClaim.unscoped.bulk_create(rows, ignore_conflicts=True)
    total = CouponClaim.unscoped.filter(coupon_id=coupon_id).count()
    Coupon.unscoped.filter(pk=coupon_id).update(claimed=total)
    fresh = list(
        CouponClaim.unscoped.select_related("coupon").filter(
            coupon_id=coupon_id, code__in=[r.code for r in rows], crm_recorded=False
        )
    )
    after_claims(coupon.org_id, fresh)
    CouponClaim.unscoped.filter(pk__in=[c.pk for c in fresh]).update(crm_recorded=True)
    return total - before


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
                after_claims(org_id, group)
            CouponClaim.unscoped.filter(pk__in=[c.pk for c in claims]).update(crm_recorded=True)
        done += len(claims)


def reconcile_backlog() -> tuple[int, float | None]:
    """Claims the Redis script logged that ``coupon_reconcile`` has not written to the
    database yet: (how many, unix time of the oldest or None). For metrics."""
    client = sredis_client()
    entries, oldest = 0, None
    for raw_id in client.smembers(f"{settings.COUPON_REDIS_PREFIX}:coupons"):
        log_key = redis_key(int(raw_id), "log")
        count = client.llen(log_key)
        if not count:
            continue
        entries += count
        first = client.lindex(log_key, 0)
        if first:
            stamp = float(first.split(":")[4])
            oldest = stamp if oldest is None else min(oldest, stamp)
    return entries, oldest
