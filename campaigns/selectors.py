"""Reads for the campaigns app that other apps show (registered at start-up)."""

from __future__ import annotations

from campaigns.models import Delivery


def lead_messages(contact, limit: int) -> list[dict]:
    """The messages sent to one lead, with the text they read, for the lead's timeline
    (``crm.selectors.timeline_source``): one query, newest first."""
    rows = (
        Delivery.objects.for_org(contact.org_id)
        .filter(contact_id=contact.pk, sent_at__isnull=False)
        .exclude(rendered="")
        .select_related("campaign")
        .only("pk", "channel", "status", "sent_at", "rendered", "campaign__name")
        .order_by("-sent_at")[:limit]
    )
    return [
        {
            "kind": "message",
            "type": "message.sent",
            "at": row.sent_at,
            "delivery": row.pk,
            "channel": row.channel,
            "status": row.status,
            "campaign": row.campaign.name if row.campaign_id else "",
            "rendered": row.rendered,
        }
        for row in rows
    ]
