"""WeChat links follow the address served (core/links.py): the OAuth redirect_uri, the
JS-SDK signature URL and share link at two ports and on a live server, the welcome link."""

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.test import Client
from wechatpy import parse_message

from tests.factories import RoomFactory
from tests.wechat.callbacks import event_xml, push

pytestmark = pytest.mark.django_db

PORTS = ("127.0.0.1:8123", "localhost:8124")


def _redirect_uri(authorize_url: str) -> str:
    return parse_qs(urlsplit(authorize_url).query)["redirect_uri"][0]


@pytest.mark.parametrize("host", PORTS)
def test_oauth_redirect_uri_is_on_the_port_the_viewer_came_to(host, acme, oa, wechat_stub):
    room = RoomFactory(org=acme, streamer__org=acme, title="微信里看直播")
    browser = Client(headers={"host": host})
    start = browser.get("/wechat/oauth/start", {"org": "acme", "next": f"/live/{room.pk}/"})
    assert start.status_code == 302
    assert _redirect_uri(start["Location"]) == f"http://{host}/wechat/oauth/callback"
    # WeChat (the stub) sends the browser to that redirect_uri, which finishes the sign-in
    back = urlsplit(
        requests.get(start["Location"], allow_redirects=False, timeout=5).headers["Location"]
    )
    assert back.netloc == host
    done = browser.get(back.path, {k: v[0] for k, v in parse_qs(back.query).items()})
    assert done.status_code == 302
    page = browser.get(urlsplit(done["Location"]).path)
    assert page.status_code == 200 and "微信里看直播" in page.content.decode()


@pytest.mark.django_db(transaction=True)
def test_oauth_round_trip_on_a_live_server_comes_back_to_its_port(live_server, wechat_stub):
    from tests.factories import OrganizationFactory
    from tests.wechat.factories import official_account

    org = OrganizationFactory(slug="acme", name="Acme 品牌")
    official_account(org)
    room = RoomFactory(org=org, streamer__org=org, title="真端口直播")
    browser = requests.Session()
    start = browser.get(
        f"{live_server.url}/wechat/oauth/start",
        params={"org": "acme", "next": f"/live/{room.pk}/"},
        allow_redirects=False,
        timeout=10,
    )
    assert start.status_code == 302
    assert _redirect_uri(start.headers["Location"]) == f"{live_server.url}/wechat/oauth/callback"
    # the whole way: WeChat's page → our callback on the live server's port → the room page
    page = browser.get(start.headers["Location"], timeout=10)
    assert page.status_code == 200 and "真端口直播" in page.text
    assert page.url.startswith(f"{live_server.url}/live/{room.pk}/")


@pytest.mark.parametrize("host", PORTS)
def test_jssdk_signs_the_page_on_its_own_port_and_the_share_link_opens_it(
    host, acme, oa, viewer_dan, wechat_stub
):
    room = RoomFactory(org=acme, streamer__org=acme, title="分享卡片")
    page = f"http://{host}/live/{room.pk}/"
    response = viewer_dan.client().get(
        "/api/v1/wechat/jssdk-config", {"url": page, "room": room.pk}, headers={"host": host}
    )
    assert response.status_code == 200, response.json()
    share = urlsplit(response.json()["share"]["link"])
    assert share.netloc == host and share.path == f"/live/{room.pk}/"
    opened = Client().get(f"{share.path}?{share.query}", headers={"host": host})
    assert opened.status_code == 200 and "分享卡片" in opened.content.decode()
    # the page as served on the other port is not this request's page
    other = next(p for p in PORTS if p != host)
    refused = viewer_dan.client().get(
        "/api/v1/wechat/jssdk-config",
        {"url": f"http://{other}/live/{room.pk}/"},
        headers={"host": host},
    )
    assert refused.status_code == 400


def test_welcome_message_links_the_room_on_site_url(acme, oa, settings):
    settings.SITE_URL = "http://127.0.0.1:8123"
    room = RoomFactory(org=acme, streamer__org=acme, title="关注欢迎")
    reply = push(oa, event_xml("o-links-1", "subscribe", key=f"qrscene_room:{room.pk}"))
    link = parse_message(reply.content).content.split("：")[-1].strip()
    assert link == f"http://127.0.0.1:8123/live/{room.pk}/"
    page = Client().get(urlsplit(link).path, headers={"host": "127.0.0.1:8123"})
    assert page.status_code == 200 and "关注欢迎" in page.content.decode()
