"""Absolute links follow the address served (core/links.py): two ports, a proxy, and
SITE_URL outside a request. Every generated link is followed to the page it names."""

from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.core.exceptions import DisallowedHost
from django.test import Client, RequestFactory
from django.urls import resolve
from django.utils import timezone

from campaigns.demo import seed_org
from campaigns.models import ConsoleSms, Journey, ShortLink
from campaigns.services import journeys
from campaigns.services.campaigns import campaign_create, campaign_launch
from core import links
from crm.services.consent import consent_grant
from livecommerce import apis as livecommerce_apis
from livecommerce.models import ProductClip
from livecommerce.services.reservations import reservations_sweep, room_reserve
from livecommerce.services.rooms import room_end, room_go_live
from tests.campaigns.factories import ProviderAccountFactory, TemplateFactory, add_phone, beijing
from tests.factories import ContactFactory, ProductFactory, RoomFactory

pytestmark = pytest.mark.django_db

PORTS = ("127.0.0.1:8123", "localhost:8124")


def _get(url: str, **extra):
    """Follow an absolute link of ours with the test client, on the host:port it names."""
    parts = urlsplit(url)
    return Client().get(
        parts.path + (f"?{parts.query}" if parts.query else ""),
        headers={"host": parts.netloc},
        secure=parts.scheme == "https",
        **extra,
    )


def _request(host: str, **meta):
    return RequestFactory().get("/", headers={"host": host}, **meta)


# --- the helper ----------------------------------------------------------------------------


def test_outside_a_request_links_use_site_url(settings):
    settings.SITE_URL = "http://127.0.0.1:8123/"
    assert links.site_url() == "http://127.0.0.1:8123"
    assert links.absolute_reverse("live-room", args=[3]) == "http://127.0.0.1:8123/live/3/"
    assert (
        links.absolute_reverse("live-room", args=[3], query={"invite": "ab"})
        == "http://127.0.0.1:8123/live/3/?invite=ab"
    )
    # an absolute URL (a CDN, an official-account QR) is kept as it is
    assert links.absolute_url("https://cdn.example/x.png") == "https://cdn.example/x.png"


@pytest.mark.parametrize("host", PORTS)
def test_inside_a_request_links_follow_the_requests_host_and_port(host, settings):
    settings.SITE_URL = "http://127.0.0.1:8000"
    assert links.absolute_url("/live/1/", request=_request(host)) == f"http://{host}/live/1/"


def test_a_host_outside_allowed_hosts_never_makes_a_link(settings):
    with pytest.raises(DisallowedHost):
        links.site_url(_request("evil.example"))


def test_forwarded_headers_are_ignored_without_a_trusted_proxy(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "live.acme.cn"]
    request = _request(
        "127.0.0.1:8123", HTTP_X_FORWARDED_PROTO="https", HTTP_X_FORWARDED_HOST="live.acme.cn"
    )
    assert links.site_url(request) == "http://127.0.0.1:8123"


def test_behind_a_trusted_proxy_links_use_the_public_scheme_and_host(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "live.acme.cn"]
    request = _request(
        "127.0.0.1:8000", HTTP_X_FORWARDED_PROTO="https", HTTP_X_FORWARDED_HOST="live.acme.cn"
    )
    assert links.site_url(request) == "https://live.acme.cn"
    # the proxy's value is the last one: whatever the client put before it is ignored
    request = _request(
        "127.0.0.1:8000",
        HTTP_X_FORWARDED_PROTO="http, https",
        HTTP_X_FORWARDED_HOST="evil.example, live.acme.cn",
    )
    assert links.site_url(request) == "https://live.acme.cn"
    # a forwarded host outside ALLOWED_HOSTS is refused like any other
    with pytest.raises(DisallowedHost):
        links.site_url(_request("127.0.0.1:8000", HTTP_X_FORWARDED_HOST="evil.example"))


def test_is_own_url_compares_scheme_host_and_port():
    request = _request("127.0.0.1:8123")
    assert links.is_own_url("http://127.0.0.1:8123/live/1/?x=1", request=request)
    assert not links.is_own_url("http://127.0.0.1:8000/live/1/", request=request)
    assert not links.is_own_url("https://127.0.0.1:8123/live/1/", request=request)


# --- links made inside a request, at two ports ---------------------------------------------


@pytest.mark.parametrize("host", PORTS)
def test_poster_qr_links_to_the_room_on_the_port_it_was_asked_on(
    host, acme, viewer_dan, monkeypatch
):
    from livecommerce.services import posters

    room = RoomFactory(org=acme, streamer__org=acme, title="两个端口的直播")
    drawn = {}
    real = posters.poster_render

    def capture(**kwargs):
        drawn.update(kwargs)
        return real(**kwargs)

    # The invite-poster API imports the renderer at its module top: patch it where it is called.
    monkeypatch.setattr(livecommerce_apis, "poster_render", capture)
    response = viewer_dan.client().get(
        f"/api/v1/rooms/{room.pk}/invite-poster", headers={"host": host}
    )
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    link = drawn["link"]
    assert link == f"http://{host}/live/{room.pk}/?invite={response['X-Invite-Code']}"
    page = _get(link)
    assert page.status_code == 200 and "两个端口的直播" in page.content.decode()


def test_clip_poster_links_to_the_clip_page(acme, viewer_dan, monkeypatch):
    room = RoomFactory(org=acme, streamer__org=acme)
    clip = ProductClip.unscoped.create(
        org=acme,
        room=room,
        product=ProductFactory(org=acme),
        pinned_at=timezone.now(),
        start_s=0,
        end_s=30,
    )
    drawn = {}
    monkeypatch.setattr(livecommerce_apis, "poster_render", lambda **kw: drawn.update(kw) or b"png")
    response = viewer_dan.client().get(
        f"/api/v1/rooms/{room.pk}/invite-poster",
        {"clip": clip.pk},
        headers={"host": "127.0.0.1:8123"},
    )
    assert response.status_code == 200
    parts = urlsplit(drawn["link"])
    assert parts.netloc == "127.0.0.1:8123"
    assert resolve(parts.path).url_name == "live-clip"
    assert _get(drawn["link"]).status_code == 200


@pytest.mark.parametrize("host", PORTS)
def test_hls_play_url_given_as_a_path_is_made_absolute_on_the_viewers_address(
    host, acme, viewer_dan, settings
):
    settings.MEDIA_HLS_URL = "/hls"
    room = RoomFactory(org=acme, streamer__org=acme)
    state = viewer_dan.client().get(f"/api/v1/rooms/{room.pk}/public", headers={"host": host})
    assert state.status_code == 200, state.content
    assert state.json()["play_url"] == f"http://{host}/hls/{room.stream_key}.m3u8"


# --- links made outside a request: SITE_URL, followed -----------------------------------------


@pytest.fixture
def demo(acme, settings):
    settings.SITE_URL = "http://127.0.0.1:8123"
    seed_org(acme)
    return acme


def _reserved_viewer(org, phone):
    contact = ContactFactory(org=org)
    add_phone(contact, phone)
    consent_grant(contact=contact, purpose="sms_marketing", source="test")
    return contact


def _link_in(text: str) -> str:
    return next(word for word in text.replace("：", " ").split() if word.startswith("http"))


@pytest.fixture
def spring_room(demo):
    return RoomFactory(org=demo, streamer__org=demo, title="春季上新", scheduled_start=beijing(14))


def _reserve(room, contact, django_capture_on_commit_callbacks):
    with (
        time_machine.travel(beijing(13), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        room_reserve(room=room, contact=contact)


def test_reservation_reminder_link_opens_the_live_page(
    demo, spring_room, django_capture_on_commit_callbacks
):
    _reserve(spring_room, _reserved_viewer(demo, "13600000011"), django_capture_on_commit_callbacks)
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
    reminder = _link_in(ConsoleSms.objects.for_org(demo).get().text)
    assert reminder == f"http://127.0.0.1:8123/live/{spring_room.pk}/"
    page = _get(reminder)
    assert page.status_code == 200 and "春季上新" in page.content.decode()


def test_replay_link_opens_the_replay_page(demo, spring_room, django_capture_on_commit_callbacks):
    Journey.objects.for_org(demo).filter(key="replay_link").update(holdout_pct=0)
    _reserve(spring_room, _reserved_viewer(demo, "13600000012"), django_capture_on_commit_callbacks)
    with time_machine.travel(beijing(14), tick=False):
        room_go_live(room=spring_room)
    with time_machine.travel(beijing(15), tick=False):
        room_end(room=spring_room)
    with (
        time_machine.travel(beijing(15, 31), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        journeys.memberships_run_due()
    replay = _link_in(ConsoleSms.objects.for_org(demo).get().text)
    assert replay == f"http://127.0.0.1:8123/live/{spring_room.pk}/replay/"
    page = _get(replay)
    assert page.status_code == 200 and "春季上新" in page.content.decode()


def test_sms_short_links_use_site_url_and_redirect_to_the_campaign_target(
    acme, settings, django_capture_on_commit_callbacks
):
    from campaigns.models import MessagingPolicy

    settings.SITE_URL = "http://127.0.0.1:8123"
    account = ProviderAccountFactory(org=acme)
    MessagingPolicy.objects.for_org(acme).create(org=acme, cap_per_day=5, cap_per_week=10)
    template = TemplateFactory(
        org=acme, provider_account=account, body="上新 {link}", param_names=["link"]
    )
    room = RoomFactory(org=acme, streamer__org=acme, title="短链直播")
    _reserved_viewer(acme, "13300000021")
    with time_machine.travel(beijing(10), tick=False):
        campaign = campaign_create(
            org=acme,
            name="短链",
            channel="sms",
            variants=[{"template": template}],
            link_url=f"/live/{room.pk}/",
        )
        with django_capture_on_commit_callbacks(execute=True):
            campaign_launch(campaign=campaign)
    link = ShortLink.objects.for_org(acme).get()
    sent = _link_in(ConsoleSms.objects.for_org(acme).get().text)
    assert sent == f"http://127.0.0.1:8123/t/{link.code}"
    hop = _get(sent)
    assert hop.status_code == 302 and hop["Location"] == f"/live/{room.pk}/"
    page = _get(f"http://127.0.0.1:8123{hop['Location']}")
    assert page.status_code == 200 and "短链直播" in page.content.decode()


def test_link_query_strings_survive(settings):
    settings.SITE_URL = "http://127.0.0.1:8123"
    link = links.absolute_reverse("live-room", args=[5], query={"invite": "a b&c"})
    assert parse_qs(urlsplit(link).query) == {"invite": ["a b&c"]}
