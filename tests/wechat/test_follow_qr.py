"""Official-account QR codes in the host console and on invite posters."""

import io

import pytest
from PIL import Image

from livecommerce.services.invites import invite_code_for
from tests.factories import RoomFactory
from tests.wechat.factories import official_account
from wechat.models import WeChatQrScene

pytestmark = pytest.mark.django_db


def _png(content: bytes) -> Image.Image:
    assert content.startswith(b"\x89PNG")
    return Image.open(io.BytesIO(content))


def test_console_shows_the_rooms_follow_qr_created_once(host_alice, oa, wechat_stub):
    room = RoomFactory(streamer=host_alice.profile)
    url = f"/api/v1/rooms/{room.pk}/follow-qr"
    first = host_alice.client().get(url)
    again = host_alice.client().get(url)
    assert first.status_code == 200 and first["Content-Type"] == "image/png"
    _png(first.content)
    assert again.content == first.content
    (created,) = wechat_stub.received("cgi-bin/qrcode/create")
    assert created.json()["action_info"]["scene"]["scene_str"] == f"room:{room.pk}"


def test_follow_qr_is_404_for_another_org_and_without_an_account(
    host_alice, outsider_erin, viewer_dan, wechat_stub
):
    room = RoomFactory(streamer=host_alice.profile)
    url = f"/api/v1/rooms/{room.pk}/follow-qr"
    missing = host_alice.client().get(url)
    assert missing.status_code == 404 and missing.json()["code"] == "wechat_account_missing"
    official_account(host_alice.membership.org)
    assert outsider_erin.client().get(url).status_code == 404
    assert viewer_dan.client().get(url).status_code == 403
    assert not WeChatQrScene.unscoped.exists()


def test_poster_qr_follows_the_account_with_the_inviters_scene(
    host_alice, oa, viewer_dan, wechat_stub
):
    room = RoomFactory(streamer=host_alice.profile)
    response = viewer_dan.client().get(f"/api/v1/rooms/{room.pk}/invite-poster")
    assert response.status_code == 200 and response["X-Poster-QR"] == "follow"
    assert _png(response.content).size == (750, 1200)
    code = invite_code_for(contact=viewer_dan.contact)
    scene = WeChatQrScene.unscoped.get()
    assert scene.scene == f"invite:{code}" and scene.org_id == room.org_id


def test_poster_keeps_the_invite_link_without_an_account_or_when_wechat_fails(
    host_alice, viewer_dan, wechat_stub
):
    room = RoomFactory(streamer=host_alice.profile)
    url = f"/api/v1/rooms/{room.pk}/invite-poster"
    plain = viewer_dan.client().get(url)
    assert plain.status_code == 200 and plain["X-Poster-QR"] == "link"
    _png(plain.content)
    official_account(host_alice.membership.org)
    wechat_stub.fail("cgi-bin/qrcode/create", 45009, "api freq out of limit")
    failed = viewer_dan.client().get(url)
    assert failed.status_code == 200 and failed["X-Poster-QR"] == "link"
    assert _png(failed.content).size == (750, 1200)
    assert not WeChatQrScene.unscoped.exists()
