"""Reads of segments: members (compiled to SQL), membership of one contact, the list and
the builder's field catalogue."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from crm.conditions import FIELDS, OPS_BY_KIND, contact_matches, contacts_matching
from crm.models import Contact, Segment


def segment_contacts(segment: Segment) -> QuerySet:
    """The segment's members, compiled to SQL (live: evaluated now)."""
    return contacts_matching(segment.org_id, segment.condition)


def segment_contains(segment: Segment, contact: Contact) -> bool:
    """Whether one contact is in the segment (same semantics as segment_contacts)."""
    if contact.org_id != segment.org_id:
        return False
    return contact_matches(contact, segment.condition)


def segment_list(org_id: int) -> QuerySet:
    return Segment.objects.for_org(org_id).order_by("-id")


def segment_fields() -> dict:
    """The segment builder's pickers: each condition field's kind, operators and allowed
    values with labels in the active language (crm.conditions.FIELDS is the source)."""
    labels = {
        name: dict(Contact._meta.get_field(name).choices or ())
        for name in ("gender", "income_level", "status", "source", "lifecycle")
    }
    fields = []
    for name, spec in FIELDS.items():
        if spec.kind == "bool":
            choices = [
                {"value": True, "label": str(_("已授权"))},
                {"value": False, "label": str(_("未授权"))},
            ]
        elif name in labels:
            choices = [{"value": v, "label": str(labels[name].get(v, v))} for v in spec.choices]
        elif name == "grade":
            choices = [{"value": g, "label": g} for g in ("A", "B", "C")]
        else:
            choices = []
        fields.append(
            {
                "field": name,
                "kind": spec.kind,
                "ops": sorted(OPS_BY_KIND[spec.kind] - {"exists"}),
                "choices": choices,
            }
        )
    return {"fields": fields}
