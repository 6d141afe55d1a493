"""Background work of the live rooms: reminders sweep, coupon reconciler, online samples."""

from __future__ import annotations

from celery import shared_task

from livecommerce.media import nginx_rtmp
from livecommerce.services.coupons import coupon_reconcile as reconcile
from livecommerce.services.reservations import reservations_sweep as sweep
from livecommerce.services.stats import online_sample_live_rooms


@shared_task(name="livecommerce.reservations_sweep")
def reservations_sweep() -> int:
    return sweep()


@shared_task(name="livecommerce.coupon_reconcile")
def coupon_reconcile() -> int:
    return reconcile()


@shared_task(name="livecommerce.online_sample")
def online_sample() -> int:
    return online_sample_live_rooms()


@shared_task(name="livecommerce.replay_from_recording")
def replay_from_recording(stream_key: str, path: str) -> None:
    nginx_rtmp.attach_recording(stream_key=stream_key, path=path)
