"""A launched campaign finishes by itself once every outbox row is final."""

import pytest
import time_machine

from campaigns.models import Delivery, DeliveryStatus
from campaigns.services.finishing import campaigns_finish_done
from campaigns.services.sending import deliveries_reconcile_stale, deliveries_send_due
from crm.services.consent import consent_grant
from tests.campaigns.factories import ProviderAccountFactory, add_phone, beijing
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def audience(acme):
    ProviderAccountFactory(org=acme)
    people = []
    for i in range(6):
        contact = ContactFactory(org=acme, city="杭州")
        add_phone(contact, f"1360000{i:04d}")
        consent_grant(contact=contact, purpose="sms_marketing", source="test")
        people.append(contact)
    add_phone(ContactFactory(org=acme, city="杭州"), "13600009999")  # no consent: suppressed
    return people


def _create(client, message_class="marketing", holdout=20):
    template = client.post(
        "/api/v1/templates",
        {"name": "上新", "channel": "sms", "message_class": message_class, "body": "今晚上新"},
        format="json",
    ).json()
    campaign = client.post(
        "/api/v1/campaigns",
        {
            "name": "杭州上新",
            "channel": "sms",
            "condition": {"field": "city", "op": "eq", "value": "杭州"},
            "variants": [{"template": template["id"]}],
            "holdout_pct": holdout,
        },
        format="json",
    ).json()
    return campaign["id"]


def _status(client, campaign_id):
    detail = client.get(f"/api/v1/campaigns/{campaign_id}").json()
    stats = client.get(f"/api/v1/campaigns/{campaign_id}/stats").json()
    assert detail["status"] == stats["status"]
    return detail["status"], detail["finished_at"]


def test_campaign_is_done_once_every_row_is_final(
    sales_bob, audience, daytime, django_capture_on_commit_callbacks
):
    client = sales_bob.client()
    campaign_id = _create(client)
    assert _status(client, campaign_id) == ("draft", None)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/api/v1/campaigns/{campaign_id}/launch")
    status, finished_at = _status(client, campaign_id)
    assert status == "done" and finished_at
    rows = Delivery.unscoped.filter(campaign_id=campaign_id)
    assert {r.status for r in rows} <= {"sent", "holdout", "suppressed"}
    assert rows.filter(status="suppressed").count() == 1
    # A relaunch that adds nobody leaves it done.
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/api/v1/campaigns/{campaign_id}/launch").json()["planned"] == 0
    assert _status(client, campaign_id) == ("done", finished_at)
    # One that adds a newcomer reopens it until the newcomer's row is final.
    newcomer = ContactFactory(org=sales_bob.membership.org, city="杭州")
    add_phone(newcomer, "13600008888")
    consent_grant(contact=newcomer, purpose="sms_marketing", source="test")
    assert client.post(f"/api/v1/campaigns/{campaign_id}/launch").json()["planned"] == 1
    assert _status(client, campaign_id) == ("sending", None)
    deliveries_send_due(campaign_id=campaign_id)
    assert _status(client, campaign_id)[0] == "done"


def test_deferred_rows_keep_the_campaign_sending_until_they_are_sent(
    sales_bob, audience, django_capture_on_commit_callbacks
):
    client = sales_bob.client()
    campaign_id = _create(client, holdout=0)
    with time_machine.travel(beijing(22, 30), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            client.post(f"/api/v1/campaigns/{campaign_id}/launch")
        assert Delivery.unscoped.filter(campaign_id=campaign_id, deferred=True).count() == 6
        assert campaigns_finish_done() == 0
        assert _status(client, campaign_id) == ("sending", None)
    with time_machine.travel(beijing(8, 5, days=1), tick=False):
        deliveries_send_due(campaign_id=campaign_id)
        assert _status(client, campaign_id)[0] == "done"
        stats = client.get(f"/api/v1/campaigns/{campaign_id}/stats").json()
        assert (stats["sent"], stats["deferred"], stats["pending"]) == (6, 6, 0)


def test_rows_lost_mid_send_finish_the_campaign_as_unknown(
    sales_bob, audience, daytime, django_capture_on_commit_callbacks
):
    client = sales_bob.client()
    campaign_id = _create(client, holdout=0)
    client.post(f"/api/v1/campaigns/{campaign_id}/launch")  # planned, sender not yet run
    rows = Delivery.unscoped.filter(campaign_id=campaign_id, status=DeliveryStatus.PENDING)
    # A worker died while their provider request was out.
    rows.update(status=DeliveryStatus.SENDING, claimed_at=beijing(9), handed_at=beijing(9))
    assert campaigns_finish_done() == 0
    assert _status(client, campaign_id)[0] == "sending"
    assert deliveries_reconcile_stale() == 6
    assert campaigns_finish_done() == 1
    assert _status(client, campaign_id)[0] == "done"
    stats = client.get(f"/api/v1/campaigns/{campaign_id}/stats").json()
    assert stats["unknown"] == 6


def test_rows_a_dead_worker_never_handed_to_a_provider_are_sent_once_after_all(
    sales_bob, audience, daytime, django_capture_on_commit_callbacks
):
    """kill -9 mid-round (make chaos): rows claimed but whose request never left go back to
    pending and the next round sends them; rows whose request left stay unknown."""
    client = sales_bob.client()
    campaign_id = _create(client, holdout=0)
    client.post(f"/api/v1/campaigns/{campaign_id}/launch")
    rows = Delivery.unscoped.filter(campaign_id=campaign_id, status=DeliveryStatus.PENDING)
    ids = list(rows.order_by("pk").values_list("pk", flat=True))
    Delivery.unscoped.filter(pk__in=ids).update(
        status=DeliveryStatus.SENDING, claimed_at=beijing(9)
    )
    Delivery.unscoped.filter(pk__in=ids[:2]).update(handed_at=beijing(9))
    assert deliveries_reconcile_stale() == 6
    statuses = dict(Delivery.unscoped.filter(pk__in=ids).values_list("pk", "status"))
    assert [statuses[pk] for pk in ids[:2]] == [DeliveryStatus.UNKNOWN] * 2
    assert [statuses[pk] for pk in ids[2:]] == [DeliveryStatus.PENDING] * 4
    assert deliveries_send_due(campaign_id=campaign_id) == 4
    sent = Delivery.unscoped.filter(pk__in=ids[2:], status=DeliveryStatus.SENT)
    assert sent.count() == 4 and not sent.filter(handed_at=None).exists()


def test_a_slow_worker_never_sends_rows_the_stale_sweep_took_back(
    sales_bob, audience, daytime, django_capture_on_commit_callbacks
):
    """A worker slower than CAMPAIGNS_SENDING_STALE_SECONDS is not dead: rows the sweep put
    back to pending (for another worker) are skipped at its hand-off, never sent twice."""
    from campaigns.services.sending import batch_send, deliveries_claim

    client = sales_bob.client()
    campaign_id = _create(client, holdout=0)
    client.post(f"/api/v1/campaigns/{campaign_id}/launch")
    batches = deliveries_claim(limit=100, campaign_id=campaign_id)
    batch_key, rows = batches[0]
    taken = rows[0].pk
    Delivery.unscoped.filter(pk=taken).update(status=DeliveryStatus.PENDING)  # the sweep
    batch_send(batch_key, rows)
    assert Delivery.unscoped.get(pk=taken).status == DeliveryStatus.PENDING
    assert Delivery.unscoped.get(pk=taken).handed_at is None
    others = Delivery.unscoped.filter(pk__in=[r.pk for r in rows[1:]])
    assert not others.filter(handed_at=None).exists()
