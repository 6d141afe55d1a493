"""The coupon reconciler as production runs it, for the coupons bench's lag run: its own
process (a worker), ``coupon_reconcile`` once per ``COUPON_RECONCILE_SECONDS`` tick (beat's
interval, livecommerce/apps.py), until SIGTERM. Django's settings come from the environment
the bench hands over (database, Redis, key prefix, task runner)."""

from __future__ import annotations

import signal
import sys
import time


def main() -> int:
    import django

    django.setup()
    from django.conf import settings

    from livecommerce.services.coupons import coupon_reconcile

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    interval = settings.COUPON_RECONCILE_SECONDS
    print("ready", flush=True)
    next_tick = time.monotonic()
    while not stopping:
        coupon_reconcile()
        next_tick += interval
        # A run longer than the interval is followed at once, as beat's queued ticks would.
        time.sleep(max(0.0, next_tick - time.monotonic()))
        next_tick = max(next_tick, time.monotonic())
    return 0


if __name__ == "__main__":
    sys.exit(main())
