"""Every link a message carries is followed: 200, the right page (issue 15).

Before: the reservation reminder and the replay link pointed at ``/rooms/<id>/`` — a 404 (the
page is ``/live/<id>/``). Links are now built by ``core.links.absolute_reverse`` only.
"""

import re
from urllib.parse import urlsplit

import pytest
import time_machine
from django.conf import settings

from campaigns.demo import seed_org
from campaigns.models import ConsoleSms, Journey
from campaigns.services import journeys
from campaigns.services.campaigns import campaign_create, campaign_launch
from campaigns.services.sending import deliveries_send_due
from core.links import absolute_reverse
from crm.services.consent import consent_grant
from crm.services.events import event_record
from livecommerce.services.reservations import reservations_sweep, room_reserve
from livecommerce.services.rooms import room_end, room_go_live
from tests.campaigns.factories import TemplateFactory, add_phone, beijing
from tests.factories import ContactFactory, RoomFactory, StreamerProfileFactory

pytestmark = pytest.mark.django_db

URL = re.compile(r"https?://[^\s，。、）)」]+")


def links_in(text: str) -> list[str]:
    return URL.findall(text)


def follow(client, url: str, *, hops: int = 3):
    """GET a message's link as a phone would: same site, redirects followed."""
    assert url.startswith(settings.SITE_URL.rstrip("/") + "/"), url
    for _ in range(hops):
        parts = urlsplit(url)
        response = client.get(parts.path + (f"?{parts.query}" if parts.query else ""))
        if response.status_code not in (301, 302):
            return response
        url = response["Location"]
        if url.startswith("/"):
            url = settings.SITE_URL.rstrip("/") + url
    raise AssertionError(f"too many redirects: {url}")


@pytest.fixture
def demo(acme):
    seed_org(acme)
    return acme


@pytest.fixture
def room(acme):
    return RoomFactory(
        org=acme,
        streamer=StreamerProfileFactory(org=acme),
        title="春季上新",
        scheduled_start=beijing(14),
    )


def _viewer(acme, phone):
    contact = ContactFactory(org=acme)
    add_phone(contact, phone)
    consent_grant(contact=contact, purpose="sms_marketing", source="test")
    return contact


def test_the_reservation_reminder_links_to_the_live_room_page(
    demo, room, anon, django_capture_on_commit_callbacks
):
    viewer = _viewer(demo, "13600000011")
    with (
        time_machine.travel(beijing(13), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        room_reserve(room=room, contact=viewer)
    with (
        time_machine.travel(beijing(13, 46), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        reservations_sweep()
    with (
        time_machine.travel(beijing(13, 50, 5), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        journeys.memberships_run_due()
    text = ConsoleSms.objects.for_org(demo).get().text
    [link] = links_in(text)
    assert link == absolute_reverse("live-room", args=[room.pk])
    assert urlsplit(link).path == f"/live/{room.pk}/"
    page = follow(anon, link)
    assert page.status_code == 200
    assert "春季上新" in page.content.decode()


def test_the_replay_link_opens_the_replay_page(
    demo, room, anon, django_capture_on_commit_callbacks
):
    missed = _viewer(demo, "13600000012")
    journey = Journey.objects.for_org(demo).get(key="replay_link")
    journey.holdout_pct = 0
    journey.save()
    with (
        time_machine.travel(beijing(13), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        room_reserve(room=room, contact=missed)
    with time_machine.travel(beijing(14), tick=False):
        room_go_live(room=room)
    with time_machine.travel(beijing(15), tick=False):
        room_end(room=room)
    with (
        time_machine.travel(beijing(15, 31), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        journeys.memberships_run_due()
    text = ConsoleSms.objects.for_org(demo).get().text
    [link] = links_in(text)
    assert urlsplit(link).path == f"/live/{room.pk}/replay/"
    page = follow(anon, link)
    assert page.status_code == 200
    assert "春季上新" in page.content.decode()


def test_a_campaigns_short_link_redirects_to_its_page_and_counts_the_click(
    demo, room, anon, daytime, django_capture_on_commit_callbacks
):
    viewer = _viewer(demo, "13600000013")
    event_record(contact=viewer, type="follow", props={})
    template = TemplateFactory(org=demo, body="{nickname}您好，春季上新今晚开播：{link}")
    target = absolute_reverse("live-room", args=[room.pk])
    campaign = campaign_create(
        org=demo, name="上新", channel="sms", variants=[{"template": template}], link_url=target
    )
    with django_capture_on_commit_callbacks(execute=True):
        campaign_launch(campaign=campaign)
    deliveries_send_due()
    text = ConsoleSms.objects.for_org(demo).get().text
    [link] = links_in(text)
    assert urlsplit(link).path.startswith("/t/")
    first = anon.get(urlsplit(link).path)
    assert first.status_code == 302 and first["Location"] == target
    page = follow(anon, link)
    assert page.status_code == 200
    assert "春季上新" in page.content.decode()
    from campaigns.models import ShortLink

    assert ShortLink.objects.for_org(demo).get().clicks == 2
