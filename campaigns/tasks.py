"""Background entry points: thin adapters over campaigns.services (ids in, no instances)."""

from __future__ import annotations

from celery import shared_task

from campaigns.services import journeys, policy, sending
from campaigns.services.finishing import campaigns_finish_done
from campaigns.services.sending import deliveries_send_due
from campaigns.services.status_poll import unknown_statuses_poll
from core.tasks import periodic


@shared_task(name="campaigns.send_deliveries")
def send_deliveries(ids: list[int] | None = None, campaign_id: int | None = None) -> int:
    return deliveries_send_due(ids=ids, campaign_id=campaign_id)


@shared_task(name="campaigns.tick")
def tick() -> dict:
    """Every few seconds: settle crashed sends, advance due journey steps, send due rows,
    finish campaigns whose rows are all final, drop cap counters no cap reads any more."""

    stale = sending.deliveries_reconcile_stale()
    steps = journeys.memberships_run_due()
    sent = sending.deliveries_send_due(time_budget=20.0)
    finished = campaigns_finish_done()
    policy.cap_counts_prune()
    return {"stale": stale, "journey_steps": steps, "sent": sent, "finished": finished}


periodic("campaigns.tick", tick, 5)


@shared_task(name="campaigns.poll_unknown_statuses")
def poll_unknown_statuses() -> dict:
    """Every minute: ask SMS providers what became of rows left ``unknown``."""
    return unknown_statuses_poll()


periodic("campaigns.poll_unknown_statuses", poll_unknown_statuses, 60)
