"""The campaigns' figures read at Prometheus scrape time (core.metrics.scrape_collectors,
registered in CampaignsConfig.ready)."""

from __future__ import annotations

import logging

from django.db.models import Count
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from campaigns.models import Delivery, DeliveryStatus

log = logging.getLogger(__name__)


def outbox_backlog():
    """qm_outbox_backlog: due pending rows, rows being sent, rows of unknown outcome."""
    family = GaugeMetricFamily(
        "qm_outbox_backlog",
        "Outbox rows waiting: due pending rows, rows being sent",
        labels=["state"],
    )
    try:
        due = Delivery.unscoped.filter(
            status=DeliveryStatus.PENDING, due_at__lte=timezone.now()
        ).count()
        sending = dict(
            Delivery.unscoped.filter(status__in=[DeliveryStatus.SENDING, DeliveryStatus.UNKNOWN])
            .values_list("status")
            .annotate(n=Count("pk"))
        )
    except Exception:  # noqa: BLE001 - a scrape never fails on one figure
        log.warning("outbox backlog unavailable", exc_info=True)
        return
    family.add_metric(["due"], due)
    family.add_metric(["sending"], sending.get(DeliveryStatus.SENDING, 0))
    family.add_metric(["unknown"], sending.get(DeliveryStatus.UNKNOWN, 0))
    yield family
