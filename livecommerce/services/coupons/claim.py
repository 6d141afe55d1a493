"""The claim interface callers use: ``coupon_claim`` (sync) and ``acoupon_claim`` (async, for
the ASGI fast path), one contract (``coupons.contract``) over the backend chosen by
``COUPON_CLAIM_BACKEND``."""

from __future__ import annotations

import asyncio
import threading

from asgiref.sync import sync_to_async

from livecommerce.services.coupons import caches
from livecommerce.services.coupons.backends.db import db_claim
from livecommerce.services.coupons.backends.pg import pg_claim
from livecommerce.services.coupons.backends.redis import redis_claim
from livecommerce.services.coupons.contract import ClaimReceipt, backend
from livecommerce.services.coupons.stock import coupon_stock_announce


def coupon_claim(
    *, org_id: int, coupon_id: int, contact_id: int, clip_id: int | None = None
) -> ClaimReceipt:
    """Claim one coupon for a viewer. Raises SoldOut / LimitReached / NotReleased / Expired /
    NotFound. Never oversells, never double-claims."""
    if backend() == "db":
        return db_claim(org_id=org_id, coupon_id=coupon_id, contact_id=contact_id, clip_id=clip_id)
    return coroutine_run(
        acoupon_claim(org_id=org_id, coupon_id=coupon_id, contact_id=contact_id, clip_id=clip_id)
    )


async def acoupon_claim(
    *, org_id: int, coupon_id: int, contact_id: int, clip_id: int | None = None
) -> ClaimReceipt:
    """The same contract as ``coupon_claim`` for async callers (the ASGI fast path)."""
    mode = backend()
    if mode == "redis":
        receipt = await redis_claim(
            org_id=org_id, coupon_id=coupon_id, contact_id=contact_id, clip_id=clip_id
        )
    elif mode == "pg":
        receipt = await pg_claim(
            org_id=org_id, coupon_id=coupon_id, contact_id=contact_id, clip_id=clip_id
        )
    else:
        return await sync_to_async(db_claim)(
            org_id=org_id, coupon_id=coupon_id, contact_id=contact_id, clip_id=clip_id
        )
    coupon_stock_announce(org_id, coupon_id, receipt.remaining)
    return receipt


def coroutine_run(coro):
    """Run a coroutine from sync code (DRF view, tests) on a private loop thread."""
    result: dict = {}

    async def with_cleanup():
        try:
            return await coro
        finally:
            # This loop dies with the call: close what was opened for it.
            await caches.close_loop(id(asyncio.get_running_loop()))

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
