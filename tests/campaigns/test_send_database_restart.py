"""A round's provider answers survive the database going away before they are written
(issue 18's PostgreSQL restart fault, in the fast tier): the worker retries the write with
backoff, and an answer may settle a row the stale sweep meanwhile marked ``unknown``."""

import pytest
from django.db import OperationalError

from campaigns.models import Delivery, DeliveryStatus, Provider
from campaigns.services import sending
from campaigns.services.sending import deliveries_send_due
from tests.campaigns.factories import ProviderAccountFactory
from tests.campaigns.test_sms_providers import _phones, _service_rows

# transaction=True: the sender closes the broken connection and opens a new one, which
# PostgreSQL's backend refuses inside the test's wrapping atomic block.
pytestmark = pytest.mark.django_db(transaction=True)


def test_sent_answers_are_written_once_the_database_answers_again(
    acme, tencent_stub, settings, monkeypatch
):
    settings.SMS_REQUEST_TIMEOUT = 1.0
    account = ProviderAccountFactory(
        org=acme, provider=Provider.TENCENT, endpoint=tencent_stub.endpoint, app_id="1400000000"
    )
    rows = _service_rows(acme, account, _phones(250))
    real, calls = sending._record_sent, []

    def flaky(sent, now):
        calls.append(len(sent))
        if len(calls) <= 2:
            raise OperationalError("terminating connection due to administrator command")
        return real(sent, now)

    monkeypatch.setattr(sending, "_record_sent", flaky)
    monkeypatch.setattr(sending.time, "sleep", lambda s: None)
    assert deliveries_send_due() == 250
    assert calls == [250, 250, 250]
    statuses = set(
        Delivery.objects.for_org(acme)
        .filter(pk__in=[r.pk for r in rows])
        .values_list("status", flat=True)
    )
    assert statuses == {DeliveryStatus.SENT}
    assert len(tencent_stub.received) == 250 and not tencent_stub.duplicates()


def test_a_worker_gives_up_after_the_retry_budget_and_the_rows_stay_for_the_sweep(
    acme, tencent_stub, settings, monkeypatch
):
    settings.SMS_REQUEST_TIMEOUT = 1.0
    settings.CAMPAIGNS_RECORD_RETRY_SECONDS = 0
    account = ProviderAccountFactory(
        org=acme, provider=Provider.TENCENT, endpoint=tencent_stub.endpoint, app_id="1400000000"
    )
    rows = _service_rows(acme, account, _phones(3))

    def down(sent, now):
        raise OperationalError("the database system is shutting down")

    monkeypatch.setattr(sending, "_record_sent", down)
    with pytest.raises(OperationalError):
        deliveries_send_due()
    statuses = set(
        Delivery.objects.for_org(acme)
        .filter(pk__in=[r.pk for r in rows])
        .values_list("status", flat=True)
    )
    assert statuses == {DeliveryStatus.SENDING}  # the stale sweep settles them: unknown


def test_a_provider_answer_settles_a_row_the_sweep_marked_unknown(acme, settings):
    account = ProviderAccountFactory(org=acme, provider=Provider.CONSOLE)
    row = _service_rows(acme, account, _phones(1))[0]
    Delivery.objects.for_org(acme).filter(pk=row.pk).update(status=DeliveryStatus.UNKNOWN)
    from django.utils import timezone

    from campaigns.channels import Outcome, SendResult

    sending._record_sent([SendResult(row.pk, Outcome.SENT, "m1")], timezone.now())
    row.refresh_from_db()
    assert (row.status, row.provider_message_id) == (DeliveryStatus.SENT, "m1")
    Delivery.objects.for_org(acme).filter(pk=row.pk).update(status=DeliveryStatus.DELIVERED)
    sending._record_sent([SendResult(row.pk, Outcome.SENT, "m2")], timezone.now())
    row.refresh_from_db()
    assert row.status == DeliveryStatus.DELIVERED  # a receipt is never overwritten
