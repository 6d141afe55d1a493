"""campaigns' part of the personal-data map (crm/personal_data.py): rows the map cannot find
through a foreign key or a hash."""

from __future__ import annotations

from django.db.models import Q

from campaigns.models import Delivery, JourneyMembership
from crm.personal_data import register_finder


@register_finder("staff_notices_about_the_person")
def staff_notices_about_the_person(*, org_id: int, contact_ids: list[int]) -> Q:
    """Staff notices about a lead (a journey's notify_owner step) are deliveries to the owner
    with no contact, keyed ``owner:<membership>:<step>`` (journeys._message_owner); their
    params name the lead."""
    memberships = JourneyMembership.unscoped.filter(org_id=org_id, contact_id__in=contact_ids)
    keys = Q(pk__in=[])
    for pk in memberships.values_list("pk", flat=True):
        keys |= Q(key__startswith=f"owner:{pk}:")
    return Q(contact=None) & keys


@register_finder("console_texts_of_staff_notices")
def console_texts_of_staff_notices(*, org_id: int, contact_ids: list[int]) -> Q:
    notices = Delivery.unscoped.filter(org_id=org_id).filter(
        staff_notices_about_the_person(org_id=org_id, contact_ids=contact_ids)
    )
    return Q(delivery__in=list(notices.values_list("pk", flat=True)))
