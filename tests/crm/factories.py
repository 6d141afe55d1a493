"""Factories for crm tests."""

from __future__ import annotations

import factory

from core import pii
from crm.models import ContactIdentity, Event, ScoringModel, ScoringRule, Segment
from tests.factories import ContactFactory, OrganizationFactory, TenantFactory

__all__ = ["ContactFactory", "EventFactory", "IdentityFactory", "RuleFactory", "SegmentFactory"]


class EventFactory(TenantFactory):
    class Meta:
        model = Event

    contact = factory.SubFactory(ContactFactory)
    org = factory.SelfAttribute("contact.org")
    type = "chat"
    occurred_at = factory.Faker("date_time_this_month", tzinfo=__import__("datetime").UTC)


class IdentityFactory(TenantFactory):
    class Meta:
        model = ContactIdentity
        exclude = ("value",)

    contact = factory.SubFactory(ContactFactory)
    org = factory.SelfAttribute("contact.org")
    kind = "phone"
    app_id = ""
    value = factory.Sequence(lambda n: f"1390000{n:04d}")
    value_hash = factory.LazyAttribute(lambda o: pii.lookup_hash(o.kind, o.value))
    value_encrypted = factory.LazyAttribute(lambda o: pii.encrypt(o.value))


class ScoringModelFactory(TenantFactory):
    class Meta:
        model = ScoringModel
        django_get_or_create = ("org",)

    org = factory.SubFactory(OrganizationFactory)


class RuleFactory(TenantFactory):
    class Meta:
        model = ScoringRule

    org = factory.SubFactory(OrganizationFactory)
    model = factory.LazyAttribute(lambda o: ScoringModelFactory(org=o.org))
    name = factory.Sequence(lambda n: f"规则{n}")
    points = 10
    condition = factory.LazyFunction(lambda: {"field": "gender", "op": "eq", "value": "female"})


class SegmentFactory(TenantFactory):
    class Meta:
        model = Segment

    org = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"人群{n}")
    condition = factory.LazyFunction(lambda: {"field": "gender", "op": "eq", "value": "female"})
