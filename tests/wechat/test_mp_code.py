"""The viewer's mini-program code for a room: wxacode.getUnlimited through wechatpy (the stub),
scene r=<room>&i=<invite>[&c=<clip>] that miniprogram/utils/scene.js reads back."""

import pytest
from django.core.cache import cache

from livecommerce.models import InviteCode
from tests.factories import RoomFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear():
    cache.clear()
    yield
    cache.clear()


def test_a_viewer_gets_a_png_code_carrying_room_and_invite(
    acme, mp, wechat_stub, viewer_dan, host_alice
):
    room = RoomFactory(streamer=host_alice.profile)
    response = viewer_dan.client().get(f"/api/v1/rooms/{room.pk}/mp-code")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png" and response.content.startswith(b"\x89PNG")
    code = InviteCode.objects.for_org(acme).get(contact=viewer_dan.contact).code
    assert response["X-Mp-Scene"] == f"r={room.pk}&i={code}"
    (call,) = wechat_stub.received("wxa/getwxacodeunlimit")
    assert call.json()["scene"] == f"r={room.pk}&i={code}"
    assert call.json()["page"] == "pages/index/index"
    # the same code again comes from the cache
    viewer_dan.client().get(f"/api/v1/rooms/{room.pk}/mp-code")
    assert len(wechat_stub.received("wxa/getwxacodeunlimit")) == 1


def test_an_unpublished_entry_page_is_a_clear_409_and_other_orgs_rooms_404(
    acme, other_org, mp, wechat_stub, viewer_dan, host_alice
):
    room = RoomFactory(streamer=host_alice.profile)
    wechat_stub.state.mp_pages = {"pages/room/room"}
    refused = viewer_dan.client().get(f"/api/v1/rooms/{room.pk}/mp-code")
    assert refused.status_code == 409 and refused.json()["code"] == "mp_code_unavailable"
    foreign = RoomFactory(org=other_org)
    assert viewer_dan.client().get(f"/api/v1/rooms/{foreign.pk}/mp-code").status_code == 404
