"""Official-account callbacks: signature first, safe XML, each push once, fast answers."""

import time

import pytest
from django.test import Client
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto

from crm.models import Contact, Event
from crm.selectors import consent_granted
from livecommerce.models import RoomStatus
from tests.factories import RoomFactory
from tests.wechat.callbacks import event_xml, push, sign, signed_query, text_xml
from tests.wechat.factories import DEMO_AES_KEY, official_account
from wechat.models import WeChatFollower, WeChatInboundMessage, WeChatKeywordReply
from wechat.windows import (
    follower_is_subscribed,
    service_window_open,
    service_window_reserve,
)

pytestmark = pytest.mark.django_db

OPENID = "o-viewer-0000000000000000001"


def test_echostr_check_answers_the_echo_for_a_valid_signature(oa):
    query = signed_query(oa.token)
    response = Client().get(f"/hooks/wechat/{oa.pk}", {**query, "echostr": "4242abc"})
    assert response.status_code == 200
    assert response.content == b"4242abc"


def test_echostr_with_a_forged_signature_is_403(oa):
    query = {**signed_query(oa.token), "signature": "0" * 40, "echostr": "x"}
    assert Client().get(f"/hooks/wechat/{oa.pk}", query).status_code == 403


def test_forged_post_is_refused_before_any_business_logic(oa, django_assert_max_num_queries):
    query = {**signed_query("not-the-token")}
    with django_assert_max_num_queries(1):  # the account look-up, nothing else
        response = push(oa, event_xml(OPENID, "subscribe", key="qrscene_room:1"), query=query)
    assert response.status_code == 403
    assert not WeChatInboundMessage.unscoped.exists()
    assert not Contact.unscoped.exists()


def test_stale_timestamp_is_refused(oa):
    query = signed_query(oa.token, timestamp=str(int(time.time()) - 3600))
    assert push(oa, text_xml(OPENID, "hi"), query=query).status_code == 403


def test_captured_nonce_replayed_with_another_body_is_refused(oa):
    query = signed_query(oa.token)
    assert push(oa, text_xml(OPENID, "hi", msg_id=1), query=query).status_code == 200
    assert push(oa, text_xml(OPENID, "hi", msg_id=1), query=query).status_code == 200
    forged = push(oa, event_xml("o-attacker", "unsubscribe"), query=query)
    assert forged.status_code == 403


def test_subscribe_via_room_scene_pushed_three_times_makes_one_lead_and_one_event(acme, oa):
    room = RoomFactory(org=acme, streamer__org=acme)
    body = event_xml(OPENID, "subscribe", key=f"qrscene_room:{room.pk}")
    replies = [push(oa, body) for _ in range(3)]

    assert {r.status_code for r in replies} == {200}
    for reply in replies:  # every copy gets the welcome with the room link
        message = parse_message(reply.content)
        assert f"/live/{room.pk}/" in message.content
    contacts = Contact.objects.for_org(acme)
    assert contacts.count() == 1
    lead = contacts.get()
    assert lead.source == "room"
    assert lead.source_detail["room"] == room.pk
    events = Event.objects.for_org(acme).filter(type="oa.subscribe")
    assert events.count() == 1
    assert events.get().room_id == room.pk
    assert follower_is_subscribed(account=oa, openid=OPENID)
    # following is consent to WeChat service notices (recorded in the CRM ledger), not marketing
    assert consent_granted(lead, "wechat_service")
    assert not consent_granted(lead, "wechat_marketing")


@pytest.mark.parametrize(
    ("scene", "source", "detail"),
    [("invite:INV42", "invite", {"invite": "INV42"}), ("campaign:7", "campaign", {"campaign": 7})],
)
def test_subscribe_scene_attributes_the_source(acme, oa, scene, source, detail):
    push(oa, event_xml(OPENID, "subscribe", key=f"qrscene_{scene}"))
    lead = Contact.objects.for_org(acme).get()
    assert lead.source == source
    assert detail.items() <= lead.source_detail.items()


def test_plain_subscribe_without_scene_still_creates_the_lead(acme, oa):
    response = push(oa, event_xml(OPENID, "subscribe"))
    assert "欢迎关注" in parse_message(response.content).content
    assert Contact.objects.for_org(acme).count() == 1


def test_unsubscribe_stops_wechat_sends_and_is_recorded(acme, oa):
    push(oa, event_xml(OPENID, "subscribe", create_time=1700000000))
    response = push(oa, event_xml(OPENID, "unsubscribe", create_time=1700000100))
    assert response.content == b"success"
    assert not follower_is_subscribed(account=oa, openid=OPENID)
    assert Event.objects.for_org(acme).filter(type="oa.unsubscribe").count() == 1
    follower = WeChatFollower.objects.for_org(acme).get()
    assert follower.unsubscribed_at is not None


def test_safe_mode_round_trip_with_wechat_crypto(acme):
    account = official_account(
        acme, appid="wxsafe0000000001", encrypt_mode="safe", aes_key=DEMO_AES_KEY
    )
    WeChatKeywordReply.objects.for_org(acme).create(
        org=acme, account=account, keyword="你好", text="你好呀"
    )
    crypto = WeChatCrypto(account.token, DEMO_AES_KEY, "wxsafe0000000001")
    timestamp, nonce = str(int(time.time())), "n0nce"
    encrypted = crypto.encrypt_message(text_xml(OPENID, "你好"), nonce, timestamp)
    # WeChat sends only ToUserName + Encrypt in the body and the msg_signature in the URL.
    envelope = parse_message_envelope(encrypted)
    query = {
        "signature": sign(account.token, timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
        "encrypt_type": "aes",
        "msg_signature": envelope["MsgSignature"],
    }
    body = f"<xml><ToUserName><![CDATA[gh_acme]]></ToUserName><Encrypt><![CDATA[{envelope['Encrypt']}]]></Encrypt></xml>"
    response = push(account, body, query=query)
    assert response.status_code == 200
    reply_env = parse_message_envelope(response.content.decode())
    reply = parse_message(
        crypto.decrypt_message(
            response.content, reply_env["MsgSignature"], reply_env["TimeStamp"], reply_env["Nonce"]
        )
    )
    assert reply.content == "你好呀"


def test_safe_mode_with_a_bad_msg_signature_is_403(acme):
    account = official_account(
        acme, appid="wxsafe0000000002", encrypt_mode="safe", aes_key=DEMO_AES_KEY
    )
    crypto = WeChatCrypto(account.token, DEMO_AES_KEY, "wxsafe0000000002")
    timestamp, nonce = str(int(time.time())), "n0nce2"
    envelope = parse_message_envelope(
        crypto.encrypt_message(text_xml(OPENID, "x"), nonce, timestamp)
    )
    query = {**signed_query(account.token, timestamp=timestamp, nonce=nonce), "encrypt_type": "aes",
             "msg_signature": "f" * 40}  # fmt: skip
    body = f"<xml><Encrypt><![CDATA[{envelope['Encrypt']}]]></Encrypt></xml>"
    assert push(account, body, query=query).status_code == 403


def parse_message_envelope(xml: str) -> dict:
    import xmltodict

    return xmltodict.parse(xml)["xml"]


XXE = """<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&xxe;</Content><MsgId>9</MsgId></xml>"""

BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    + "]><xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>1"
    "</CreateTime><MsgType>text</MsgType><Content>&lol9;</Content><MsgId>10</MsgId></xml>"
)


@pytest.mark.parametrize("payload", [XXE, BILLION_LAUGHS], ids=["xxe", "billion-laughs"])
def test_entity_payloads_are_refused_fast_without_expansion(oa, payload):
    started = time.perf_counter()
    response = push(oa, payload)
    assert time.perf_counter() - started < 0.5
    assert response.status_code == 400
    assert b"passwd" not in response.content and b"lol" not in response.content
    assert not WeChatInboundMessage.unscoped.exists()


def test_oversize_body_is_refused(oa, settings):
    settings.WECHAT_CALLBACK_MAX_BYTES = 4096
    body = text_xml(OPENID, "长" * 5000)
    response = push(oa, body)
    assert response.status_code == 413
    assert not WeChatInboundMessage.unscoped.exists()


def test_garbage_body_gets_a_4xx_not_a_500(oa):
    assert push(oa, b"\x00\xffnot xml").status_code == 400


def test_unknown_or_other_kind_account_is_404(acme, mp):
    assert Client().get(f"/hooks/wechat/{mp.pk}", signed_query("x")).status_code == 404
    assert Client().get("/hooks/wechat/999999", signed_query("x")).status_code == 404


def test_keyword_reply_links_the_latest_replay(acme, oa):
    room = RoomFactory(org=acme, streamer__org=acme, status=RoomStatus.ENDED, title="上周专场")
    WeChatKeywordReply.objects.for_org(acme).create(
        org=acme, account=oa, keyword="回放", action="replay"
    )
    WeChatKeywordReply.objects.for_org(acme).create(
        org=acme, account=oa, keyword="优惠", match="contains", text="优惠券在直播间领取"
    )
    reply = parse_message(push(oa, text_xml(OPENID, "回放", msg_id=1)).content)
    assert "上周专场" in reply.content and f"/live/{room.pk}/" in reply.content
    reply = parse_message(push(oa, text_xml(OPENID, "有优惠吗", msg_id=2)).content)
    assert reply.content == "优惠券在直播间领取"
    assert push(oa, text_xml(OPENID, "随便聊聊", msg_id=3)).content == b"success"


def test_every_inbound_message_refreshes_the_48_hour_window(oa):
    assert not service_window_open(account=oa, openid=OPENID)
    push(oa, text_xml(OPENID, "在吗", msg_id=11))
    assert service_window_open(account=oa, openid=OPENID)
    sent = [service_window_reserve(account=oa, openid=OPENID) for _ in range(6)]
    assert sent == [True] * 5 + [False]  # at most 5 per window
    push(oa, text_xml(OPENID, "再问一下", msg_id=12))  # a new message re-opens it
    assert service_window_reserve(account=oa, openid=OPENID)


def test_after_a_follow_only_three_messages_go_out_in_the_first_minute(oa):
    push(oa, event_xml(OPENID, "subscribe"))
    sent = [service_window_reserve(account=oa, openid=OPENID) for _ in range(4)]
    assert sent == [True, True, True, False]


def test_window_closes_after_48_hours(oa):
    from datetime import timedelta

    from django.utils import timezone

    push(oa, text_xml(OPENID, "在吗", msg_id=21))
    later = timezone.now() + timedelta(hours=48, minutes=1)
    assert not service_window_open(account=oa, openid=OPENID, now=later)
    assert not service_window_reserve(account=oa, openid=OPENID, now=later)


def test_profile_fetch_runs_after_the_answer_not_inside_it(
    acme, oa, wechat_stub, django_capture_on_commit_callbacks
):
    from wechat.stub import StubUser

    wechat_stub.register_user(
        StubUser(openid=OPENID, nickname="小红", sex=2, province="浙江", city="杭州", unionid="u-1")
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = push(oa, event_xml(OPENID, "subscribe"))
    assert response.status_code == 200
    assert wechat_stub.requests == []  # nothing called WeChat while WeChat waited
    for callback in callbacks:
        callback()
    lead = Contact.objects.for_org(acme).get()
    assert (lead.nickname, lead.gender, lead.city) == ("小红", "female", "杭州")
    assert lead.identities.filter(kind="unionid").count() == 1


def test_subscribe_through_an_inviters_qr_credits_the_inviter(acme, oa, viewer_dan):
    from livecommerce.models import Invite
    from livecommerce.services.invites import invite_code_for

    code = invite_code_for(contact=viewer_dan.contact)
    push(oa, event_xml(OPENID, "subscribe", key=f"qrscene_invite:{code}"))
    invite = Invite.objects.for_org(acme).get()
    assert invite.inviter_id == viewer_dan.contact.pk
    assert Contact.objects.for_org(acme).get(pk=invite.invitee_id).source == "invite"


def test_old_dedupe_records_are_swept(acme, oa):
    from datetime import timedelta

    from django.utils import timezone

    from wechat.tasks import wechat_inbound_sweep

    push(oa, text_xml(OPENID, "一", msg_id=31))
    push(oa, text_xml(OPENID, "二", msg_id=32))
    records = WeChatInboundMessage.objects.for_org(acme)
    oldest = records.order_by("id").first()
    records.filter(pk=oldest.pk).update(created_at=timezone.now() - timedelta(days=8))
    assert wechat_inbound_sweep() == 1
    assert WeChatInboundMessage.objects.for_org(acme).count() == 1
