"""The ``pg`` backend: PostgreSQL only, one SQL statement per micro-batch through the
claim pool (``coupons.pool``), no Django thread per request. Its claims' CRM events are
recorded by the periodic follow-up (``coupons.reconcile.pg_claims_follow_up``)."""

from __future__ import annotations

import asyncio

import psycopg
from asgiref.sync import sync_to_async
from django.utils.translation import gettext as _

from livecommerce.models import new_claim_code
from livecommerce.services.coupons import caches
from livecommerce.services.coupons.batchers import ClaimBatcher
from livecommerce.services.coupons.contract import ClaimReceipt, LimitReached, SoldOut, classify
from livecommerce.services.coupons.pool import pg_pool
from livecommerce.services.coupons.records import coupon_or_none

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


class PgClaimBatcher(ClaimBatcher):
    """The PostgreSQL-only twin of the Redis batcher: one statement (and one commit, which
    is what bounds a single hot row) per micro-batch instead of one per claim."""

    def __init__(self, pool):
        super().__init__()
        self.pool = pool

    async def decide(self, org_id: int, coupon_id: int, requests: list[tuple]) -> list:
        params = {
            "coupon": coupon_id,
            "org": org_id,
            "contacts": [request[0] for request in requests],
            "codes": [request[1] for request in requests],
        }
        for attempt in range(20):
            try:
                async with self.pool.connection() as conn:
                    cursor = await conn.execute(_PG_CLAIM, params)
                    return await cursor.fetchall()
            except psycopg.errors.UniqueViolation:
                # Another process won a claim between our snapshot and our lock: the
                # statement rolled back as a whole; decide the batch again.
                await asyncio.sleep(0.001 * attempt)
        raise RuntimeError("coupon batch kept conflicting")


async def pg_claim(*, org_id: int, coupon_id: int, contact_id: int, clip_id: int | None):
    loop_id = id(asyncio.get_running_loop())
    batcher = caches.pg_batchers.get(loop_id)
    if batcher is None:
        batcher = caches.pg_batchers[loop_id] = PgClaimBatcher(await pg_pool())
    code = new_claim_code()
    _ord, nth, slot, wanted_nth, limit, remaining, full_code = await batcher.submit(
        org_id, coupon_id, contact_id, code, clip_id or 0
    )
    if nth is not None:
        return ClaimReceipt(coupon_id, contact_id, nth, slot, full_code, remaining)
    if limit is None:  # no such coupon here, not released, or expired
        coupon = await sync_to_async(coupon_or_none)(coupon_id)
        raise classify(coupon, org_id, 0)
    if wanted_nth > limit:
        raise LimitReached(_("已达领取上限"))
    raise SoldOut(_("优惠券已抢光"))
