"""Factories for campaigns tests."""

from __future__ import annotations

import factory

from campaigns.models import (
    ApprovalStatus,
    Channel,
    MessageClass,
    MessageTemplate,
    Provider,
    ProviderAccount,
)
from campaigns.services.placeholders import placeholders_of
from core import pii
from crm.models import Consent, Contact, ContactIdentity, Event
from tests.factories import OrganizationFactory, TenantFactory


class ProviderAccountFactory(TenantFactory):
    class Meta:
        model = ProviderAccount

    org = factory.SubFactory(OrganizationFactory)
    provider = Provider.CONSOLE
    name = "控制台"
    sign_name = "千面"
    is_default = True
    qps = 1000
    access_key_id = "AKIDstub"
    access_key_secret = "stub-secret"
    app_id = "1400000000"


class TemplateFactory(TenantFactory):
    class Meta:
        model = MessageTemplate

    org = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"模板{n}")
    channel = Channel.SMS
    message_class = MessageClass.MARKETING
    body = "直播间今晚8点开播"
    provider_template_id = "100001"
    # The provider's parameters are the body's placeholders, in order.
    param_names = factory.LazyAttribute(lambda t: placeholders_of(t.body))
    approval_status = ApprovalStatus.APPROVED


def add_phone(contact, phone: str):
    return ContactIdentity.unscoped.create(
        org_id=contact.org_id,
        contact=contact,
        kind="phone",
        value_hash=pii.lookup_hash("phone", phone),
        value_encrypted=pii.encrypt(phone),
    )


def sms_audience(org, n: int, *, prefix: str = "137") -> list:
    """``n`` people with a phone ``{prefix}00000000``… and SMS marketing consent, written in
    three bulk statements (the simulations of uplift, bandit and send timing need hundreds)."""
    contacts = Contact.objects.for_org(org).bulk_create(
        [Contact(org=org, nickname=f"p{i}") for i in range(n)]
    )
    ContactIdentity.objects.for_org(org).bulk_create(
        [
            ContactIdentity(
                org=org,
                contact=c,
                kind="phone",
                value_hash=pii.lookup_hash("phone", f"{prefix}{i:08d}"),
                value_encrypted=pii.encrypt(f"{prefix}{i:08d}"),
            )
            for i, c in enumerate(contacts)
        ]
    )
    Consent.objects.for_org(org).bulk_create(
        [Consent(org=org, contact=c, purpose="sms_marketing", granted=True) for c in contacts]
    )
    return contacts


def beijing(hour: int, minute: int = 0, days: int = 0):
    """An aware datetime at the given Beijing wall-clock time on today's Beijing date (plus
    ``days``): close to the real clock so signed tokens stay valid."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Asia/Shanghai")
    today = datetime.now(tz).date() + timedelta(days=days)
    return datetime(today.year, today.month, today.day, hour, minute, tzinfo=tz)


def active_at(contact, hour: int, days: int = 6, minute: int = 10):
    """On each of the ``days`` past days the person joined a room and clicked a product at
    ``hour``:``minute`` Beijing time (their habit, for 智能节奏)."""
    Event.objects.for_org(contact.org).bulk_create(
        [
            Event(
                org=contact.org,
                contact=contact,
                type=kind,
                occurred_at=beijing(hour, minute, days=-d),
            )
            for d in range(1, days + 1)
            for kind in ("room.join", "product.click")
        ]
    )
