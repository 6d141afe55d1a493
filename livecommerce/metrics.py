"""The rooms' figures read at Prometheus scrape time (core.metrics.scrape_collectors,
registered in LivecommerceConfig.ready)."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from prometheus_client.core import GaugeMetricFamily

from livecommerce.services.coupons import reconcile_backlog

log = logging.getLogger(__name__)


def coupon_reconcile_backlog():
    """qm_coupon_reconcile_backlog and _lag_seconds (the Redis claim backend only)."""
    if settings.COUPON_CLAIM_BACKEND != "redis":
        return
    try:
        entries, oldest = reconcile_backlog()
    except Exception:  # noqa: BLE001
        log.warning("coupon reconcile backlog unavailable", exc_info=True)
        return
    yield GaugeMetricFamily(
        "qm_coupon_reconcile_backlog",
        "Claims in Redis not yet written to PostgreSQL",
        value=entries,
    )
    lag = max(0.0, time.time() - oldest) if oldest else 0.0
    yield GaugeMetricFamily(
        "qm_coupon_reconcile_lag_seconds",
        "Age of the oldest claim not yet written to PostgreSQL (0 when none)",
        value=lag,
    )
