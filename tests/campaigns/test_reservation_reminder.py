"""A reservation says honestly whether it can be reminded, and a guest who gave a phone gets
the reminder (issue 15).

Before: a guest was told 已预约，开播前提醒你 while their reminder was suppressed ``no_address``
— the page never asked for a phone. Now POST /api/v1/rooms/{id}/reserve answers
``reminder.deliverable`` from the reminder journey and the one send policy; the reminder goes
through the real Tencent Cloud SDK to the local stub, with a link that opens the room.
"""

import pytest
import time_machine
from django.conf import settings

from campaigns.demo import seed_org
from campaigns.models import Delivery, MessageTemplate, Provider
from campaigns.services import journeys
from crm.services.identity import identity_attach
from livecommerce.services.reservations import reservations_sweep
from tests.campaigns.factories import ProviderAccountFactory, beijing
from tests.campaigns.test_message_links import follow
from tests.factories import RoomFactory, StreamerProfileFactory

pytestmark = pytest.mark.django_db

PHONE = "13800001234"


@pytest.fixture
def demo(acme, tencent_stub):
    """The shipped reminder journey on a Tencent account pointed at the local stub."""
    seed_org(acme)
    tencent = ProviderAccountFactory(
        org=acme,
        provider=Provider.TENCENT,
        endpoint=tencent_stub.endpoint,
        sign_name="千面",
        is_default=True,
    )
    MessageTemplate.objects.for_org(acme).filter(key="reservation_reminder").update(
        provider_account=tencent, provider_template_id="3000001"
    )
    return acme


@pytest.fixture
def room(demo):
    return RoomFactory(
        org=demo,
        streamer=StreamerProfileFactory(org=demo),
        title="春季上新",
        scheduled_start=beijing(14),
    )


def _reserve(client, room, body=None):
    return client.post(f"/api/v1/rooms/{room.pk}/reserve", body or {}, format="json")


def test_a_guest_without_a_phone_is_told_the_truth(room, viewer_dan):
    with time_machine.travel(beijing(13), tick=True):
        answer = _reserve(viewer_dan.client(), room)
    assert answer.status_code == 201
    reminder = answer.json()["reminder"]
    assert reminder["deliverable"] is False
    assert reminder["reason"] == "no_address"
    assert "提醒你" not in reminder["message"].split("。")[0]  # no promise first
    assert "手机号" in reminder["message"]


def test_sms_needs_a_verified_phone_and_consent(room, viewer_dan):
    client = viewer_dan.client()
    with time_machine.travel(beijing(13), tick=True):
        no_consent = _reserve(client, room, {"remind": "sms", "phone": PHONE})
        assert no_consent.status_code == 400
        assert "sms_consent" in no_consent.json()["fields"]
        unverified = _reserve(client, room, {"remind": "sms", "phone": PHONE, "sms_consent": True})
        assert unverified.status_code == 400
        assert unverified.json()["code"] == "phone_not_verified"


def test_a_wechat_choice_is_not_promised_while_reminders_go_by_sms_only(room, viewer_dan):
    with time_machine.travel(beijing(13), tick=True):
        answer = _reserve(viewer_dan.client(), room, {"remind": "mp_subscribe"})
    assert answer.status_code == 201
    assert answer.json()["reminder"]["deliverable"] is False
    assert answer.json()["reminder"]["reason"] == "channel_unavailable"


def test_no_reminder_journey_no_promise(demo, room, viewer_dan):
    from campaigns.models import Journey

    Journey.objects.for_org(demo).filter(key="reservation_reminder").update(is_active=False)
    identity_attach(contact=viewer_dan.contact, kind="phone", value=PHONE)
    with time_machine.travel(beijing(13), tick=True):
        answer = _reserve(viewer_dan.client(), room, {})
    assert answer.json()["reminder"]["deliverable"] is False
    assert answer.json()["reminder"]["reason"] == "no_reminder_journey"


def test_a_guest_who_gave_a_phone_gets_the_reminder_through_tencent_with_a_working_link(
    demo, room, viewer_dan, tencent_stub, anon, django_capture_on_commit_callbacks
):
    # The page's phone step verified the number (SMS code) and bound it: One-ID.
    identity_attach(contact=viewer_dan.contact, kind="phone", value=PHONE)
    client = viewer_dan.client()
    with (
        time_machine.travel(beijing(13), tick=True),
        django_capture_on_commit_callbacks(execute=True),
    ):
        answer = _reserve(client, room, {"remind": "sms", "phone": PHONE, "sms_consent": True})
    assert answer.status_code == 201, answer.json()
    reminder = answer.json()["reminder"]
    assert reminder == {
        "deliverable": True,
        "channel": "sms",
        "to": "138****1234",
        "reason": "",
        "message": "已预约，开播前短信提醒你（138****1234）",
    }
    with time_machine.travel(beijing(13), tick=True):
        again = client.get(f"/api/v1/rooms/{room.pk}/reserve")
    assert again.status_code == 200 and again.json()["reminder"] == reminder
    # The rooms' sweep hands the reservation to the reminder journey; it sends at T-10 min.
    with (
        time_machine.travel(beijing(13, 46), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert reservations_sweep() == 1
    with (
        time_machine.travel(beijing(13, 50, 5), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        journeys.memberships_run_due()
    assert tencent_stub.received == {PHONE: 1}
    message = tencent_stub.messages[0]
    assert message["template"] == "3000001"
    room_title, start, link = message["params"]
    assert (room_title, start) == ("春季上新", "14:00")
    assert link.startswith(settings.SITE_URL)
    page = follow(anon, link)
    assert page.status_code == 200 and "春季上新" in page.content.decode()
    row = Delivery.objects.for_org(demo).get(key__startswith="journey:")
    assert (row.message_class, row.status) == ("service", "sent")
