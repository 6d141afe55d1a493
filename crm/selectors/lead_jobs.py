"""Reads of bulk lead jobs (CSV import and export)."""

from __future__ import annotations

from core.models import Membership, Role
from crm.models import LeadJob


def lead_job_for(*, membership: Membership, job_id: int) -> LeadJob | None:
    """The member's own job; admins see every job of the organisation. None otherwise."""
    job = LeadJob.objects.for_org(membership.org_id).filter(pk=job_id).first()
    if job is None:
        return None
    if job.created_by_id != membership.user_id and membership.role != Role.ADMIN:
        return None
    return job
