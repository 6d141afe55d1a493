"""What viewers see of a coupon's stock: its card, the remaining count, and the throttled
``coupon.stock`` announcements of the fast backends."""

from __future__ import annotations

import asyncio
import time

from django.conf import settings

from core.event_schemas import checks_enabled
from livecommerce import events
from livecommerce.models import Coupon
from livecommerce.services.coupons import caches
from livecommerce.services.coupons.backends.redis import redis_key, sredis_client
from livecommerce.services.coupons.contract import backend


def coupon_remaining(coupon: Coupon) -> int:
    """Remaining stock now. In Redis mode the script's counter leads the database (the
    reconciler writes claims a moment later), so it is read from Redis."""
    if backend() == "redis" and coupon.released_at is not None:
        try:
            left = sredis_client().get(redis_key(coupon.pk, "left"))
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


def coupon_stock_announce(org_id: int, coupon_id: int, remaining: int) -> None:
    """Publish ``coupon.stock`` after a fast-backend claim, throttled per coupon (a burst must
    not become 1,000 priority events; the last unit always goes out)."""
    room_id = caches.room_ids.get(coupon_id)
    if room_id is None:
        return
    now = time.monotonic()
    with caches.stock_lock:
        last = caches.last_stock.get(coupon_id, 0.0)
        if remaining > 0 and now - last < settings.COUPON_STOCK_EVENT_INTERVAL:
            return
        caches.last_stock[coupon_id] = now

    payload = {"coupon": coupon_id, "remaining": remaining}
    if checks_enabled():
        events.check_room_event("coupon.stock", payload)

    def publish() -> None:
        events._publish(room_id, "coupon.stock", payload, "all", None)

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is None:
        publish()
    else:
        # The hub's publish may touch Redis synchronously: keep it off the event loop.
        loop.run_in_executor(None, publish)
