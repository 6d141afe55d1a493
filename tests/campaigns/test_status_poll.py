"""Status polling of ``unknown`` SMS rows through the real SDK clients against the stubs:
settled as delivered / failed from the provider's records, never re-sent; rows the provider
never saw are marked for review."""

from datetime import timedelta

import pytest
import time_machine
from django.db.models import Value as V
from django.db.models.functions import Concat
from django.utils import timezone

from campaigns.models import Delivery, DeliveryStatus, Provider
from campaigns.services.sending import deliveries_send_due
from campaigns.services.status_poll import NOT_AT_PROVIDER, unknown_statuses_poll
from tests.campaigns.factories import ProviderAccountFactory
from tests.campaigns.test_sms_providers import _phones, _service_rows

pytestmark = pytest.mark.django_db


def _later():
    return time_machine.travel(timezone.now() + timedelta(minutes=6), tick=False)


def test_tencent_rows_lost_in_a_timeout_are_settled_from_the_status_pull(
    acme, tencent_stub, settings
):
    settings.SMS_REQUEST_TIMEOUT = 0.5
    account = ProviderAccountFactory(
        org=acme, provider=Provider.TENCENT, endpoint=tencent_stub.endpoint
    )
    phones = _phones(3)
    _service_rows(acme, account, phones)
    tencent_stub.failed_phones.add(phones[2])
    tencent_stub.inject("timeout")  # the provider takes them, the answer never arrives
    deliveries_send_due()
    assert Delivery.objects.for_org(acme).filter(status="unknown").count() == 3
    assert unknown_statuses_poll() == {}  # too early: receipts may still settle them
    with _later():
        assert unknown_statuses_poll() == {"delivered": 2, "failed": 1}
    statuses = dict(Delivery.objects.for_org(acme).values_list("to_hash", "status"))
    assert sorted(statuses.values()) == ["delivered", "delivered", "failed"]
    assert max(tencent_stub.received.values()) == 1  # nobody was sent anything twice


def test_a_message_the_provider_never_took_is_marked_for_review_not_resent(
    acme, tencent_stub, settings
):
    settings.SMS_REQUEST_TIMEOUT = 1.0
    account = ProviderAccountFactory(
        org=acme, provider=Provider.TENCENT, endpoint=tencent_stub.endpoint
    )
    _service_rows(acme, account, _phones(2))
    tencent_stub.inject("5xx")  # refused before anything was taken — we cannot know that
    deliveries_send_due()
    with _later():
        assert unknown_statuses_poll() == {"review": 2}
        assert unknown_statuses_poll() == {}  # checked once, left for a person (or a receipt)
        deliveries_send_due()
    rows = Delivery.objects.for_org(acme).all()
    assert {(r.status, r.error) for r in rows} == {(DeliveryStatus.UNKNOWN, NOT_AT_PROVIDER)}
    assert all(r.provider_checked_at for r in rows)
    assert tencent_stub.received == {}


def test_aliyun_rows_are_settled_from_query_send_details(acme, aliyun_stub, settings):
    settings.SMS_REQUEST_TIMEOUT = 0.5
    account = ProviderAccountFactory(
        org=acme, provider=Provider.ALIYUN, endpoint=aliyun_stub.endpoint
    )
    phones = _phones(2)
    _service_rows(acme, account, phones, provider_template_id="SMS_1")
    aliyun_stub.failed_phones.add(phones[1])
    aliyun_stub.inject("timeout")
    deliveries_send_due()
    assert Delivery.objects.for_org(acme).filter(status="unknown").count() == 2
    with _later():
        assert unknown_statuses_poll() == {"delivered": 1, "failed": 1}
    assert max(aliyun_stub.received.values()) == 1


def test_an_account_whose_status_query_fails_does_not_starve_the_others(
    acme, tencent_stub, aliyun_stub, settings
):
    """The oldest rows fill each poll's batch first. A provider that keeps failing its status
    query (here: an account whose endpoint is gone) must not take every batch for ever: its
    rows go behind the others, whose rows are settled on the next poll."""
    settings.SMS_REQUEST_TIMEOUT = 0.5
    gone = ProviderAccountFactory(
        org=acme, provider=Provider.TENCENT, endpoint=tencent_stub.endpoint
    )
    _service_rows(acme, gone, _phones(3))
    tencent_stub.inject("timeout")
    deliveries_send_due()
    gone.endpoint = "http://127.0.0.1:9"  # the discard port: nothing answers there
    gone.save(update_fields=["endpoint"])
    # The helper below numbers its keys from k0 again.
    Delivery.objects.for_org(acme).filter(account=gone).update(key=Concat(V("gone-"), "key"))
    live = ProviderAccountFactory(org=acme, provider=Provider.ALIYUN, endpoint=aliyun_stub.endpoint)
    _service_rows(acme, live, _phones(2, start=100), provider_template_id="SMS_1")
    aliyun_stub.inject("timeout")
    deliveries_send_due()
    live_rows = Delivery.objects.for_org(acme).filter(account=live)
    assert [r.status for r in live_rows] == ["unknown", "unknown"]
    with _later():
        # The batch holds only the three oldest rows: the failing account's.
        assert unknown_statuses_poll(limit=3) == {"deferred": 3}
        assert unknown_statuses_poll(limit=3) == {"delivered": 2}
    assert sorted(r.status for r in live_rows.all()) == ["delivered", "delivered"]
    gone_rows = Delivery.objects.for_org(acme).filter(account=gone)
    assert {(r.status, r.provider_checked_at) for r in gone_rows} == {("unknown", None)}
