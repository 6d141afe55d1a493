"""The Tencent and Alibaba adapters, driven through their real SDKs against the local stubs."""

import pytest

from campaigns.models import Delivery, DeliveryStatus, Provider
from campaigns.services.sending import deliveries_send_due
from core import pii
from tests.campaigns.factories import ProviderAccountFactory, TemplateFactory

pytestmark = pytest.mark.django_db


def _service_rows(org, account, phones, **template_kwargs):
    template = TemplateFactory(
        org=org,
        message_class="service",
        body="您预约的{name}即将开播",
        provider_account=account,
        **template_kwargs,
    )
    return [
        Delivery.objects.for_org(org).create(
            org=org,
            channel="sms",
            message_class="service",
            template=template,
            account=account,
            key=f"k{i}",
            to_encrypted=pii.encrypt(phone),
            to_hash=pii.lookup_hash("phone", phone),
            params={"name": "春季上新"},
            due_at=account.created_at,
        )
        for i, phone in enumerate(phones)
    ]


def _phones(n, start=0):
    return [f"139{i:08d}" for i in range(start, start + n)]


def test_tencent_sends_up_to_200_numbers_per_request(acme, tencent_stub, settings):
    settings.SMS_REQUEST_TIMEOUT = 1.0
    account = ProviderAccountFactory(
        org=acme, provider=Provider.TENCENT, endpoint=tencent_stub.endpoint, app_id="1400000000"
    )
    rows = _service_rows(acme, account, _phones(450))
    assert deliveries_send_due() == 450
    assert len(tencent_stub.request_times) == 3  # 200 + 200 + 50
    assert not tencent_stub.duplicates()
    assert len(tencent_stub.received) == 450
    statuses = set(
        Delivery.objects.for_org(acme)
        .filter(pk__in=[r.pk for r in rows])
        .values_list("status", flat=True)
    )
    assert statuses == {DeliveryStatus.SENT}
    assert tencent_stub.messages[0]["params"] == ["春季上新"]


def test_aliyun_batches_at_most_100_numbers(acme, aliyun_stub, settings):
    settings.SMS_REQUEST_TIMEOUT = 1.0
    account = ProviderAccountFactory(
        org=acme, provider=Provider.ALIYUN, endpoint=aliyun_stub.endpoint
    )
    _service_rows(acme, account, _phones(250), provider_template_id="SMS_123")
    assert deliveries_send_due() == 250
    assert len(aliyun_stub.request_times) == 3
    assert len(aliyun_stub.received) == 250 and not aliyun_stub.duplicates()
    assert Delivery.objects.for_org(acme).filter(status="sent").count() == 250


def test_a_provider_timeout_leaves_rows_unknown_and_never_resends(acme, tencent_stub, settings):
    settings.SMS_REQUEST_TIMEOUT = 0.5
    account = ProviderAccountFactory(
        org=acme, provider=Provider.TENCENT, endpoint=tencent_stub.endpoint
    )
    _service_rows(acme, account, _phones(10))
    tencent_stub.inject("timeout")
    deliveries_send_due()
    deliveries_send_due()  # a second worker round must not pick the ambiguous rows up again
    assert Delivery.objects.for_org(acme).filter(status="unknown").count() == 10
    assert max(tencent_stub.received.values()) == 1


def test_rate_limit_errors_are_retried_with_backoff(acme, aliyun_stub, settings):
    settings.SMS_REQUEST_TIMEOUT = 1.0
    account = ProviderAccountFactory(
        org=acme, provider=Provider.ALIYUN, endpoint=aliyun_stub.endpoint
    )
    rows = _service_rows(acme, account, _phones(5), provider_template_id="SMS_1")
    aliyun_stub.inject("ratelimit")
    deliveries_send_due()
    row = Delivery.objects.for_org(acme).get(pk=rows[0].pk)
    assert row.status == DeliveryStatus.PENDING and row.attempts == 1
    assert row.due_at > row.updated_at.replace(microsecond=0)
    Delivery.objects.for_org(acme).update(due_at=row.created_at)  # the backoff has elapsed
    deliveries_send_due()
    assert Delivery.objects.for_org(acme).filter(status="sent").count() == 5
    assert max(aliyun_stub.received.values()) == 1


def test_a_5xx_is_unknown_not_resent(acme, tencent_stub, settings):
    settings.SMS_REQUEST_TIMEOUT = 1.0
    account = ProviderAccountFactory(
        org=acme, provider=Provider.TENCENT, endpoint=tencent_stub.endpoint
    )
    _service_rows(acme, account, _phones(3))
    tencent_stub.inject("5xx")
    deliveries_send_due()
    deliveries_send_due()
    assert Delivery.objects.for_org(acme).filter(status="unknown").count() == 3


def test_a_rate_limited_marketing_send_gives_its_cap_slot_back(acme, tencent_stub, daytime):
    from campaigns.models import MarketingSendCount
    from campaigns.services.campaigns import campaign_create, campaign_launch
    from crm.services.consent import consent_grant
    from tests.campaigns.factories import add_phone
    from tests.factories import ContactFactory

    account = ProviderAccountFactory(
        org=acme, provider=Provider.TENCENT, endpoint=tencent_stub.endpoint
    )
    person = ContactFactory(org=acme)
    add_phone(person, "13912340000")
    consent_grant(contact=person, purpose="sms_marketing", source="test")
    template = TemplateFactory(org=acme, provider_account=account, param_names=[])
    campaign = campaign_create(
        org=acme,
        name="上新",
        channel="sms",
        variants=[{"template": template}],
        provider_account=account,
    )
    campaign_launch(campaign=campaign)  # planned only
    tencent_stub.inject("ratelimit")
    deliveries_send_due()
    row = Delivery.objects.for_org(acme).get(campaign=campaign)
    assert row.status == DeliveryStatus.PENDING  # the provider did not take it
    counts = MarketingSendCount.objects.for_org(acme).filter(contact=person)
    assert set(counts.values_list("count", flat=True)) <= {0}  # the slot went back
    Delivery.objects.for_org(acme).update(due_at=row.created_at)  # the backoff has elapsed
    deliveries_send_due()
    row.refresh_from_db()
    assert row.status == DeliveryStatus.SENT
    assert set(counts.values_list("count", flat=True)) == {1}  # one day + one week slot
    assert max(tencent_stub.received.values()) == 1
