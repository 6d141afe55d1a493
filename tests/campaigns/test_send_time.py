"""智能节奏 (issue 22): each person's own hour.

A simulation of people with distinct habits (events at 09:00, 14:00, 23:00 Beijing) gets
each one's own hour back; their deliveries are due in that hour and the real sender (the
Tencent SMS stub) sends them only when it comes; an hour in quiet hours moves to the nearest
allowed one, never into quiet hours; people without history get the fallback hour; a stable
10 % of the treatment arm is sent untimed at the campaign's hour, and the stats compare the
goal rates.
"""

from datetime import timedelta

import pytest
import time_machine

from campaigns.models import Delivery, MessagingPolicy, Provider
from campaigns.services.campaigns import campaign_create, campaign_launch
from campaigns.services.policy import SHANGHAI
from campaigns.services.send_time import UNTIMED_PCT, is_untimed, nearest_allowed_hour
from campaigns.services.sending import deliveries_send_due
from crm.models import Event
from crm.services.consent import consent_grant
from crm.services.events import event_record
from tests.campaigns.factories import (
    ProviderAccountFactory,
    TemplateFactory,
    add_phone,
    beijing,
    sms_audience,
)
from tests.campaigns.factories import active_at as _habit
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def _campaign(org, **extra):
    template = TemplateFactory(org=org, body="今晚8点开播")
    return campaign_create(
        org=org,
        name="智能节奏",
        channel="sms",
        variants=[{"template": template}],
        send_timing="best_hour",
        **extra,
    )


def _person(org, campaign, phone: str, hour: int | None):
    """A reachable person with the given habit; people the untimed draw would take get no
    phone (suppressed at planning, so outside the split) and a new one is made."""
    while True:
        contact = ContactFactory(org=org)
        if not is_untimed(campaign_id=campaign.pk, contact_id=contact.pk):
            break
    add_phone(contact, phone)
    consent_grant(contact=contact, purpose="sms_marketing", source="test")
    if hour is not None:
        _habit(contact, hour)
    return contact


def _untimed_person(org, campaign, phone: str, hour: int):
    while True:
        contact = ContactFactory(org=org)
        if is_untimed(campaign_id=campaign.pk, contact_id=contact.pk):
            break
    add_phone(contact, phone)
    consent_grant(contact=contact, purpose="sms_marketing", source="test")
    _habit(contact, hour)
    return contact


def _local_hour(delivery) -> int:
    return delivery.due_at.astimezone(SHANGHAI).hour


def test_people_get_their_own_hour_and_the_sender_sends_each_only_when_it_comes(
    acme, tencent_stub, settings
):
    settings.SMS_REQUEST_TIMEOUT = 1.0
    ProviderAccountFactory(
        org=acme, provider=Provider.TENCENT, endpoint=tencent_stub.endpoint, sign_name="千面"
    )
    campaign = _campaign(acme, fallback_hour=11)
    morning = _person(acme, campaign, "13800000001", 9)
    afternoon = _person(acme, campaign, "13800000002", 14)
    night_owl = _person(acme, campaign, "13800000003", 23)  # 23:00 is quiet for SMS
    newcomer = _person(acme, campaign, "13800000004", None)
    control = _untimed_person(acme, campaign, "13800000005", 14)
    # One stray late-night event does not outweigh the audience's pattern (shrinkage).
    stray = _person(acme, campaign, "13800000006", None)
    _habit(stray, 3, days=1)

    with time_machine.travel(beijing(8, 30), tick=False):
        campaign_launch(campaign=campaign)
        rows = {
            d.contact_id: d
            for d in Delivery.objects.for_org(acme).filter(campaign=campaign, status="pending")
        }
        assert len(rows) == 6
        hours = {c: _local_hour(rows[c.pk]) for c in (morning, afternoon, night_owl, newcomer)}
        assert hours == {morning: 9, afternoon: 14, night_owl: 20, newcomer: 11}
        assert _local_hour(rows[stray.pk]) in (9, 14)  # the audience's busiest hours
        assert rows[control.pk].timing == "untimed"
        assert rows[control.pk].due_at == beijing(8, 30)
        assert {rows[c.pk].timing for c in (morning, afternoon, night_owl, newcomer)} == {"timed"}
        # Every timed row is due inside SMS marketing hours (08–21), never in quiet hours.
        assert all(8 <= _local_hour(d) < 21 for d in rows.values())
        # The untimed share goes now, at the campaign's hour; nobody else does.
        assert deliveries_send_due(campaign_id=campaign.pk) == 1
        assert set(tencent_stub.received) == {"13800000005"}

    sent_by_hour = {}
    for hour in (9, 11, 14, 20):
        with time_machine.travel(beijing(hour, 5), tick=False):
            before = set(tencent_stub.received)
            deliveries_send_due(campaign_id=campaign.pk)
            sent_by_hour[hour] = set(tencent_stub.received) - before
    assert sent_by_hour[11] == {"13800000004"}
    assert sent_by_hour[20] == {"13800000003"}
    assert sent_by_hour[9] | sent_by_hour[14] == {
        "13800000001",
        "13800000002",
        "13800000006",
    }
    assert "13800000001" in sent_by_hour[9] and "13800000002" in sent_by_hour[14]
    assert not tencent_stub.duplicates()
    sent_at = {
        d.contact_id: d.sent_at.astimezone(SHANGHAI).hour
        for d in Delivery.objects.for_org(acme).filter(campaign=campaign, arm="treatment")
    }
    assert sent_at[morning.pk] == 9 and sent_at[afternoon.pk] == 14
    assert sent_at[night_owl.pk] == 20 and sent_at[newcomer.pk] == 11
    assert Delivery.objects.for_org(acme).filter(campaign=campaign, status="sent").count() == 6


def test_nothing_is_sent_before_a_persons_hour(acme, tencent_stub, settings):
    settings.SMS_REQUEST_TIMEOUT = 1.0
    ProviderAccountFactory(
        org=acme, provider=Provider.TENCENT, endpoint=tencent_stub.endpoint, sign_name="千面"
    )
    campaign = _campaign(acme)
    _person(acme, campaign, "13800000011", 14)
    with time_machine.travel(beijing(8, 30), tick=False):
        campaign_launch(campaign=campaign)
    with time_machine.travel(beijing(13, 59), tick=False):
        assert deliveries_send_due(campaign_id=campaign.pk) == 0
    assert tencent_stub.received == {}
    with time_machine.travel(beijing(14, 0), tick=False):
        assert deliveries_send_due(campaign_id=campaign.pk) == 1
    assert set(tencent_stub.received) == {"13800000011"}


def test_an_hour_in_the_organisations_quiet_hours_moves_to_the_nearest_allowed_hour(acme):
    ProviderAccountFactory(org=acme, sign_name="千面")
    MessagingPolicy.objects.for_org(acme).create(org=acme, quiet_start_hour=10, quiet_end_hour=18)
    campaign = _campaign(acme, fallback_hour=7)
    early = _person(acme, campaign, "13800000021", 8)
    late = _person(acme, campaign, "13800000022", 20)
    small_hours = _person(acme, campaign, "13800000023", 2)
    nobody = _person(acme, campaign, "13800000024", None)
    with time_machine.travel(beijing(6, 0), tick=False):
        campaign_launch(campaign=campaign)
    treated = Delivery.objects.for_org(acme).filter(campaign=campaign, arm="treatment")
    rows = {d.contact_id: d for d in treated}
    assert len(rows) == 4
    assert _local_hour(rows[early.pk]) == 10
    assert _local_hour(rows[late.pk]) == 17
    assert _local_hour(rows[small_hours.pk]) == 10  # 02:00 is nearer 10:00 than 17:00
    assert _local_hour(rows[nobody.pk]) == 10  # the fallback 07:00 is quiet too
    assert all(10 <= _local_hour(d) < 18 for d in rows.values())
    assert [nearest_allowed_hour(h, 8, 21) for h in (7, 8, 20, 21, 22, 3)] == [8, 8, 20, 20, 20, 8]


def test_a_fixed_campaign_is_untouched(acme):
    ProviderAccountFactory(org=acme, sign_name="千面")
    template = TemplateFactory(org=acme)
    campaign = campaign_create(
        org=acme, name="统一", channel="sms", variants=[{"template": template}]
    )
    contact = ContactFactory(org=acme)
    add_phone(contact, "13800000031")
    consent_grant(contact=contact, purpose="sms_marketing", source="test")
    _habit(contact, 14)
    with time_machine.travel(beijing(9, 30), tick=False):
        campaign_launch(campaign=campaign)
        row = Delivery.objects.for_org(acme).get(campaign=campaign)
        assert (row.timing, row.due_at) == ("", beijing(9, 30))


def _big_audience(org, n, hour):
    contacts = sms_audience(org, n)
    Event.objects.for_org(org).bulk_create(
        [
            Event(org=org, contact=c, type="room.join", occurred_at=beijing(hour, days=-1))
            for c in contacts[: n // 2]
        ]
    )
    return contacts


def test_the_untimed_share_is_stable_and_its_goal_rate_is_measured(
    acme, sales_bob, django_capture_on_commit_callbacks
):
    ProviderAccountFactory(org=acme, sign_name="千面")
    _big_audience(acme, 1500, 15)
    campaign = _campaign(acme, holdout_pct=10, fallback_hour=15)
    with time_machine.travel(beijing(9, 0), tick=False):
        campaign_launch(campaign=campaign)
        campaign.refresh_from_db()
    rows = Delivery.objects.for_org(acme).filter(campaign=campaign)
    marks = dict(rows.values_list("contact_id", "timing"))
    arms = dict(rows.values_list("contact_id", "arm"))
    # Only the treatment arm is split; the holdout stays as it is.
    assert {marks[c] for c, arm in arms.items() if arm == "holdout"} == {""}
    treated = [c for c, arm in arms.items() if arm == "treatment"]
    untimed = {c for c in treated if marks[c] == "untimed"}
    # The SQL draw is the stable Python one, row for row, and takes about UNTIMED_PCT %.
    assert untimed == {c for c in treated if is_untimed(campaign_id=campaign.pk, contact_id=c)}
    assert abs(len(untimed) / len(treated) - UNTIMED_PCT / 100) < 0.03
    # Untimed rows go at the campaign's hour; timed ones at 15:00 (the habit of half the
    # audience, and the fallback hour of the other half).
    due = dict(rows.values_list("contact_id", "due_at"))
    assert {due[c] for c in untimed} == {beijing(9, 0)}
    assert {due[c].astimezone(SHANGHAI).hour for c in treated if c not in untimed} == {15}

    # Conversions: 30 % of the timed, 10 % of the untimed.
    timed = [c for c in treated if c not in untimed]
    converters = timed[: int(len(timed) * 0.3)] + sorted(untimed)[: int(len(untimed) * 0.1)]
    Event.objects.for_org(acme).bulk_create(
        [
            Event(
                org=acme,
                contact_id=c,
                type="order",
                occurred_at=campaign.launched_at + timedelta(hours=7),
            )
            for c in converters
        ]
    )
    # The results page's figures.
    stats = sales_bob.client().get(f"/api/v1/campaigns/{campaign.pk}/stats").json()
    timing = stats["timing"]
    x1 = int(len(timed) * 0.3)
    x0 = int(len(untimed) * 0.1)
    assert (timing["treatment_n"], timing["holdout_n"]) == (len(timed), len(untimed))
    assert (timing["treatment_converted"], timing["holdout_converted"]) == (x1, x0)
    assert timing["uplift"] == round(x1 / len(timed) - x0 / len(untimed), 4)
    assert timing["ci95"][0] < timing["uplift"] < timing["ci95"][1]
    # Planning again (a relaunch) draws nobody anew.
    with time_machine.travel(beijing(9, 5), tick=False):
        assert campaign_launch(campaign=campaign)["planned"] == 0
    assert dict(rows.values_list("contact_id", "timing")) == marks


def test_the_builder_preview_counts_people_per_hour_and_the_share_with_history(acme, sales_bob):
    for hour, n, days in ((9, 3, 6), (14, 2, 6), (23, 1, 6), (16, 2, 1)):
        for _ in range(n):
            _habit(ContactFactory(org=acme), hour, days=days)
    for _ in range(2):
        ContactFactory(org=acme)  # no history
    response = sales_bob.client().post(
        "/api/v1/campaigns/send-time-preview",
        {"channel": "sms", "fallback_hour": 22},
        format="json",
    )
    assert response.status_code == 200, response.json()
    preview = response.json()
    counts = {row["hour"]: row["count"] for row in preview["hours"] if row["count"]}
    # Two people with one day at 16:00 are pulled to the audience's busiest hour (09:00);
    # the night owl and the people without history (fallback 22:00) land at 20:00.
    assert counts == {9: 5, 14: 2, 20: 3}
    assert (preview["total"], preview["with_history"], preview["enough_history"]) == (10, 8, 6)
    assert preview["enough_share"] == 0.6
    assert preview["fallback_hour"] == 20 and preview["allowed"] == [8, 21]
    assert len(preview["hours"]) == 24


def test_a_journey_send_step_waits_for_the_members_own_hour(
    acme, sales_bob, django_capture_on_commit_callbacks
):
    ProviderAccountFactory(org=acme, sign_name="千面")
    TemplateFactory(org=acme, key="thanks", body="感谢关注", param_names=[])
    client = sales_bob.client()
    journey = client.post(
        "/api/v1/journeys",
        {
            "name": "关注后按时跟进",
            "trigger_event": "follow",
            "steps": [
                {
                    "type": "send",
                    "template": "thanks",
                    "channel": "sms",
                    "best_hour": True,
                    # no untimed share: every member at their own hour
                    "untimed_pct": 0,
                }
            ],
        },
        format="json",
    ).json()
    assert journey["steps"][0]["best_hour"] is True
    client.post(f"/api/v1/journeys/{journey['id']}/activate")
    owl, newcomer = ContactFactory(org=acme), ContactFactory(org=acme)
    for contact, phone in ((owl, "13800000041"), (newcomer, "13800000042")):
        add_phone(contact, phone)
        consent_grant(contact=contact, purpose="sms_marketing", source="test")
    _habit(owl, 22)  # quiet for SMS: the nearest allowed hour is 20:00
    with (
        time_machine.travel(beijing(9, 30), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        event_record(contact=owl, type="follow")
        event_record(contact=newcomer, type="follow")
    rows = {
        d.contact_id: d for d in Delivery.objects.for_org(acme).filter(key__startswith="journey:")
    }
    assert rows[owl.pk].due_at == beijing(20)
    # Without history the step sends at its own time (the sender ran on commit).
    assert rows[newcomer.pk].status == "sent"
    assert rows[owl.pk].status == "pending"
    with time_machine.travel(beijing(19, 59), tick=False):
        assert deliveries_send_due() == 0
    with time_machine.travel(beijing(20, 0), tick=False):
        assert deliveries_send_due() == 1
    assert Delivery.objects.for_org(acme).get(pk=rows[owl.pk].pk).status == "sent"


def test_the_builder_sets_the_untimed_share_of_a_timed_campaign(
    acme, sales_bob, django_capture_on_commit_callbacks
):
    ProviderAccountFactory(org=acme, sign_name="千面")
    template = TemplateFactory(org=acme, body="今晚8点开播")
    _big_audience(acme, 600, 15)
    client = sales_bob.client()
    body = {
        "name": "智能节奏三成对照",
        "channel": "sms",
        "variants": [{"template": template.pk}],
        "send_timing": "best_hour",
        "untimed_pct": 80,
    }
    refused = client.post("/api/v1/campaigns", body, format="json")
    assert refused.status_code == 400 and "untimed_pct" in refused.json()["fields"]
    created = client.post("/api/v1/campaigns", {**body, "untimed_pct": 30}, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["untimed_pct"] == 30
    with time_machine.travel(beijing(9, 0), tick=False):
        assert client.post(f"/api/v1/campaigns/{created.json()['id']}/launch").status_code < 300
    rows = Delivery.objects.for_org(acme).filter(campaign_id=created.json()["id"])
    marks = dict(rows.values_list("contact_id", "timing"))
    untimed = {c for c, m in marks.items() if m == "untimed"}
    campaign_id = created.json()["id"]
    assert untimed == {
        c for c in marks if is_untimed(campaign_id=campaign_id, contact_id=c, pct=30)
    }
    assert abs(len(untimed) / len(marks) - 0.3) < 0.06
