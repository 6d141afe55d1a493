"""Reads of a staff member's in-app notifications."""

from __future__ import annotations

from django.db.models import QuerySet

from crm.models import Notification


def notification_list(*, org_id: int, user, limit: int = 50) -> QuerySet:
    """The user's latest notifications (the model's ordering: newest first)."""
    return Notification.objects.for_org(org_id).filter(user=user)[:limit]
