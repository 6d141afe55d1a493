"""Coupons: create, release, claim (burst-safe), reconcile, redeem.

One claim interface — ``coupon_claim`` (sync) and ``acoupon_claim`` (async, for the ASGI
fast path) — over three backends chosen by ``COUPON_CLAIM_BACKEND``:

- ``db`` (``backends/db.py``): one transaction per claim; the embedded default (SQLite) and
  the DRF view's path everywhere.
- ``pg`` (``backends/pg.py``): PostgreSQL only, one SQL statement per micro-batch through
  the claim pool.
- ``redis`` (``backends/redis.py``): an atomic Lua script decides, the granted claims are
  written to the database before the answer, the reconciler follows up.

Whatever the backend, a claim answers 201 with a receipt, 409 ``sold_out``, 409
``limit_reached``, 403 ``coupon_not_released`` (or expired), 404 for another
organisation's coupon (``contract.py``).

The package's modules:

- ``contract`` — the claim's answers (receipt, errors), the configured backend;
- ``claim`` — ``coupon_claim`` / ``acoupon_claim``, dispatching to a backend;
- ``backends/`` — ``db``, ``pg``, ``redis``; ``batchers`` — the micro-batching they share;
- ``pool`` — the backends' PostgreSQL pool, connected from Django's ``DATABASES``;
- ``caches`` — per-process and per-loop state (clients, pools, batchers, memos);
- ``records`` — CRM events and clip attribution of written claims;
- ``stock`` — the coupon card, remaining stock, throttled stock announcements;
- ``lifecycle`` — create, release, redeem; ``reconcile`` — the fast backends' follow-up.

Callers import the names below from the package.
"""

from livecommerce.services.coupons.claim import acoupon_claim, coupon_claim
from livecommerce.services.coupons.lifecycle import coupon_create, coupon_redeem, coupon_release
from livecommerce.services.coupons.reconcile import coupon_reconcile, reconcile_backlog
from livecommerce.services.coupons.stock import coupon_card, coupon_remaining

__all__ = [
    "acoupon_claim",
    "coupon_card",
    "coupon_claim",
    "coupon_create",
    "coupon_reconcile",
    "coupon_redeem",
    "coupon_release",
    "coupon_remaining",
    "reconcile_backlog",
]
