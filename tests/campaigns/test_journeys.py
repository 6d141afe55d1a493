"""The shipped journeys, driven by the events and hooks that feed them."""

import pytest
import time_machine

from campaigns.demo import seed_org
from campaigns.models import ConsoleSms, Journey, JourneyMembership, JourneyStepLog
from campaigns.services import journeys
from crm.models import Notification
from crm.services.consent import consent_grant
from crm.services.events import event_record
from livecommerce.services.reservations import reservations_sweep, room_reserve
from livecommerce.services.rooms import room_end, room_go_live
from tests.campaigns.factories import add_phone, beijing
from tests.factories import ContactFactory, RoomFactory, StreamerProfileFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(acme):
    seed_org(acme)
    return acme


@pytest.fixture
def room(acme):
    start = beijing(14)
    return RoomFactory(
        org=acme, streamer=StreamerProfileFactory(org=acme), title="春季上新", scheduled_start=start
    )


def _viewer(acme, phone):
    contact = ContactFactory(org=acme)
    add_phone(contact, phone)
    consent_grant(contact=contact, purpose="sms_marketing", source="test")
    return contact


def test_reservation_reminder_goes_out_10_minutes_before_start(
    demo, room, django_capture_on_commit_callbacks
):
    viewer = _viewer(demo, "13600000001")
    with (
        time_machine.travel(beijing(13), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        room_reserve(room=room, contact=viewer)
    # The rooms' sweep hands the reservation over 15 minutes before start …
    with (
        time_machine.travel(beijing(13, 46), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert reservations_sweep() == 1
        membership = JourneyMembership.objects.for_org(demo).get(
            journey__key="reservation_reminder"
        )
        assert membership.due_at == beijing(13, 50)
        assert ConsoleSms.objects.for_org(demo).count() == 0
    # … and the reminder leaves at 13:50, ten minutes before the 14:00 start.
    with (
        time_machine.travel(beijing(13, 50, 5), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert journeys.memberships_run_due() >= 1
    sms = ConsoleSms.objects.for_org(demo).get()
    assert "春季上新" in sms.text and "14:00" in sms.text
    assert "拒收" not in sms.text  # a service message: no marketing suffix needed


def test_replay_link_goes_to_those_who_reserved_but_did_not_come(
    demo, room, django_capture_on_commit_callbacks
):
    came, missed = _viewer(demo, "13600000002"), _viewer(demo, "13600000003")
    journey = Journey.objects.for_org(demo).get(key="replay_link")
    journey.holdout_pct = 0
    journey.save()
    with (
        time_machine.travel(beijing(13), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        room_reserve(room=room, contact=came)
        room_reserve(room=room, contact=missed)
    with time_machine.travel(beijing(14), tick=False):
        room_go_live(room=room)
        with django_capture_on_commit_callbacks(execute=True):
            event_record(contact=came, type="room.join", room_id=room.pk)
    with time_machine.travel(beijing(15), tick=False):
        room_end(room=room)
    with (
        time_machine.travel(beijing(15, 31), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        journeys.memberships_run_due()
    sms = ConsoleSms.objects.for_org(demo).get()
    assert sms.phone_masked == "136****0003"
    assert "回放" in sms.text and sms.text.endswith("拒收请回复R")  # marketing: suffix
    outcomes = dict(
        JourneyStepLog.objects.for_org(demo)
        .filter(journey=journey, step_index=1)
        .values_list("membership__contact_id", "outcome")
    )
    assert outcomes == {came.pk: "exited", missed.pk: "passed"}


def test_a_replayed_event_enters_nobody_twice(demo, room, django_capture_on_commit_callbacks):
    viewer = _viewer(demo, "13600000004")
    with django_capture_on_commit_callbacks(execute=True):
        room_reserve(room=room, contact=viewer)
        room_reserve(room=room, contact=viewer)
        event_record(contact=viewer, type="room.reserve", room_id=room.pk, props={})
    assert JourneyMembership.objects.for_org(demo).filter(journey__key="replay_link").count() == 1


def test_hot_lead_notifies_the_owner(demo, sales_bob, django_capture_on_commit_callbacks):
    lead = ContactFactory(org=demo, owner=sales_bob.user, grade="A", score=90)
    with django_capture_on_commit_callbacks(execute=True):
        journeys._on_grade_changed(lead, "B", "A")
    note = Notification.objects.for_org(demo).get(user=sales_bob.user)
    assert note.kind == "journey" and note.data["contact"] == lead.pk


def test_journey_list_shows_per_step_counts(
    demo, room, sales_bob, django_capture_on_commit_callbacks
):
    viewer = _viewer(demo, "13600000005")
    with django_capture_on_commit_callbacks(execute=True):
        room_reserve(room=room, contact=viewer)
    body = sales_bob.client().get("/api/v1/journeys").json()
    keys = {j["key"] for j in body}
    assert {"reservation_reminder", "replay_link", "coupon_expiry", "hot_lead"} <= keys
    replay = next(j for j in body if j["key"] == "replay_link")
    assert sum(replay["members"].values()) == 1


def test_assign_owner_step_uses_the_crm_round_robin_and_is_audited(
    demo, sales_bob, django_capture_on_commit_callbacks
):
    from core.models import AuditLog

    journey = Journey.objects.for_org(demo).create(
        org=demo,
        key="assign_new_buyers",
        name="新买家分配",
        trigger_event="order",
        steps=[{"type": "assign_owner"}],
    )
    lead = ContactFactory(org=demo)
    with django_capture_on_commit_callbacks(execute=True):
        journeys.journey_enter(journey=journey, contact=lead, key="order:1", context={})
    lead.refresh_from_db()
    assert lead.owner_id == sales_bob.user.pk
    audit = AuditLog.objects.for_org(demo).get(action="lead.owner_change", target_id=str(lead.pk))
    assert audit.detail["to"] == sales_bob.user.pk and audit.detail["reason"] == "round_robin"
    step = JourneyStepLog.objects.for_org(demo).get(membership__journey=journey)
    assert step.outcome == "assigned"
