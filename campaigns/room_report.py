"""The campaigns side of the 战报 (livecommerce.selectors_report.room_report_recall): the
recall campaign sent from a room and its uplift against the holdout, as the campaign's own
statistics compute it (``campaign_uplift``) — never recomputed here."""

from __future__ import annotations

from campaigns.models import Campaign
from campaigns.services.campaigns import campaign_uplift
from livecommerce.selectors_report import room_report_recall


def room_recall_report(*, room) -> dict | None:
    """The latest launched campaign whose ``source_room`` is ``room``, or None."""
    campaign = (
        Campaign.objects.for_org(room.org_id)
        .filter(source_room=room, launched_at__isnull=False)
        .order_by("-launched_at", "-pk")
        .first()
    )
    if campaign is None:
        return None
    return {
        "campaign": campaign.pk,
        "name": campaign.name,
        "launched_at": campaign.launched_at,
        "uplift": campaign_uplift(campaign=campaign),
    }


def connect() -> None:
    room_report_recall.register(room_recall_report)
