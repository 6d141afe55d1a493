"""When a sending campaign is done: below both the sender (which finishes its campaign after
the last row settles) and the campaign services (launch, relaunch), so neither imports the
other for it."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from campaigns.models import Campaign, CampaignStatus, Delivery, DeliveryStatus

# Rows that still have work to do: pending (due now or deferred to a later window) and
# sending. Everything else is final for the campaign — ``unknown`` included: nothing will be
# sent again for it, and a late receipt may still settle it to ``delivered``.
OPEN_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.SENDING)


def campaign_finish_if_done(*, campaign_id: int) -> bool:
    """Move a ``sending`` campaign to ``done`` when none of its rows is open any more.
    Returns True when it did. Safe to call any time, from any worker: the campaign row is
    locked first and the open-row check runs after the lock (a fresh snapshot), so a
    concurrent relaunch that adds rows is either seen or waits for us."""
    with transaction.atomic():
        campaign = (
            Campaign.unscoped.select_for_update()
            .filter(pk=campaign_id, status=CampaignStatus.SENDING)
            .first()
        )
        if campaign is None:
            return False
        if (
            Delivery.unscoped.filter(campaign_id=campaign_id, status__in=OPEN_STATUSES)
            .order_by()
            .exists()
        ):
            return False
        campaign.status = CampaignStatus.DONE
        campaign.finished_at = timezone.now()
        campaign.save(update_fields=["status", "finished_at", "updated_at"])
    return True


def campaigns_finish_done() -> int:
    """The tick's sweep: every ``sending`` campaign whose rows are all final becomes ``done``
    (rows settle outside the sender too: stale ``sending`` → ``unknown``, deferred rows)."""
    ids = Campaign.unscoped.filter(status=CampaignStatus.SENDING).values_list("pk", flat=True)
    return sum(campaign_finish_if_done(campaign_id=pk) for pk in list(ids))
