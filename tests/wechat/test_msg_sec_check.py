"""Mini-program viewers' chat passes WeChat's content check (msgSecCheck v2 through wechatpy,
against the stub) before it is shown: risky text refused, doubtful text held for review,
verdicts cached, an unreachable WeChat never blocks chat."""

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from livecommerce.models import ChatMessage, ChatStatus
from livecommerce.services.chat import ChatAuthor, ChatRejected, chat_post
from tests.factories import ContactFactory, RoomFactory
from wechat.security import forget_accounts

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh(settings):
    # The per-viewer chat rate (about one a second) is not what these tests are about.
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "chat_viewer": "1000/1"}
    cache.clear()
    forget_accounts()
    yield
    cache.clear()
    forget_accounts()


@pytest.fixture
def room(host_alice):
    return RoomFactory(streamer=host_alice.profile, status="live")


@pytest.fixture
def mp_viewer(acme, mp, wechat_stub):
    """A viewer signed in through the mini-program (wx.login code → code2session)."""
    response = APIClient().post(
        "/api/v1/viewer/session", {"org": "acme", "mp_code": "mp-sec-1"}, format="json"
    )
    assert response.status_code == 201, response.json()
    return response.json()["contact_id"]


def say(room, contact_id, text):
    return chat_post(
        room_id=room.pk,
        author=ChatAuthor(org_id=room.org_id, contact_id=contact_id, nickname="观众"),
        text=text,
    )


def test_risky_text_is_refused_and_the_verdict_is_cached(room, mp_viewer, wechat_stub):
    wechat_stub.set_content_verdict("代开发票", "risky")
    with pytest.raises(ChatRejected) as refused:
        say(room, mp_viewer, "代开发票加我")
    assert refused.value.code == "content_risky"
    assert not ChatMessage.unscoped.filter(room=room).exists()
    (check,) = wechat_stub.received("wxa/msg_sec_check")
    body = check.json()
    assert body["version"] == 2 and body["scene"] == 2 and body["content"] == "代开发票加我"
    assert body["openid"].startswith("m") and check.query["access_token"]
    with pytest.raises(ChatRejected):
        say(room, mp_viewer, "代开发票加我")
    assert len(wechat_stub.received("wxa/msg_sec_check")) == 1  # second verdict from cache


def test_clean_text_is_shown_and_doubtful_text_waits_for_review(room, mp_viewer, wechat_stub):
    wechat_stub.set_content_verdict("加我", "review")
    assert say(room, mp_viewer, "主播好").status == ChatStatus.VISIBLE
    assert say(room, mp_viewer, "想要的加我").status == ChatStatus.PENDING


def test_an_unreachable_wechat_lets_chat_through_and_asks_again_next_time(
    room, mp_viewer, wechat_stub
):
    wechat_stub.set_content_verdict("代开发票", "risky")
    wechat_stub.fail("wxa/msg_sec_check", 0, http_status=502)
    assert say(room, mp_viewer, "代开发票").status == ChatStatus.VISIBLE
    with pytest.raises(ChatRejected):
        say(room, mp_viewer, "代开发票")  # the outage's "pass" was not cached
    wechat_stub.fail("wxa/msg_sec_check", 45009, "reach max api daily quota limit")
    assert say(room, mp_viewer, "代开发票，第二次").status == ChatStatus.VISIBLE


def test_viewers_from_h5_or_as_guests_are_not_sent_to_wechat(acme, room, mp, wechat_stub):
    guest = ContactFactory(org=acme)
    assert say(room, guest.pk, "代开发票").status == ChatStatus.VISIBLE
    assert wechat_stub.received("wxa/msg_sec_check") == []


def test_staff_chat_is_not_checked(room, host_alice, mp, wechat_stub):
    message = chat_post(
        room_id=room.pk,
        author=ChatAuthor(org_id=room.org_id, user_id=host_alice.user.pk),
        text="欢迎来到直播间",
    )
    assert message.status == ChatStatus.VISIBLE
    assert wechat_stub.received("wxa/msg_sec_check") == []


def test_a_mini_program_viewers_nickname_is_checked_as_a_profile(acme, mp_viewer, wechat_stub):
    from core.tokens import issue_viewer_token

    wechat_stub.set_content_verdict("发票", "review")
    token = issue_viewer_token(org_id=acme.pk, contact_id=mp_viewer, device="d", nickname="")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    refused = client.post("/api/v1/viewer/nickname", {"nickname": "发票小王"}, format="json")
    assert refused.status_code == 400
    assert refused.json()["code"] == "content_risky"
    assert refused.json()["fields"]["nickname"] == ["昵称未通过内容安全检查，请换一个"]
    (check,) = wechat_stub.received("wxa/msg_sec_check")
    assert check.json()["scene"] == 1 and check.json()["content"] == "发票小王"
    named = client.post("/api/v1/viewer/nickname", {"nickname": "小王"}, format="json")
    assert named.status_code == 200 and named.json()["nickname"] == "小王"
