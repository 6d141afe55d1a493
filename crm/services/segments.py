"""Writes of saved segments. A segment is a name and a condition (crm/conditions.py), checked
by the caller's serializer (crm.conditions.validate_condition); members are evaluated live
(crm.selectors.segments.segment_contacts)."""

from __future__ import annotations

from crm.models import Segment


def segment_create(*, org_id: int, created_by, name: str, condition: dict) -> Segment:
    return Segment.objects.for_org(org_id).create(
        org_id=org_id, created_by=created_by, name=name, condition=condition
    )


def segment_update(*, segment: Segment, changes: dict) -> Segment:
    """Change the given fields (``name``, ``condition``) of a segment."""
    for field, value in changes.items():
        setattr(segment, field, value)
    segment.save()
    return segment


def segment_delete(*, segment: Segment) -> None:
    segment.delete()
