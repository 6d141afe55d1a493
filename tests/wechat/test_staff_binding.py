"""扫码绑定微信: a staff member scans a one-time QR code of the official account and WeChat's
push (signed like WeChat signs it) binds their openid to their StaffContact — never a lead."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from wechatpy import parse_message

from campaigns.models import StaffContact, StaffWeChatBind
from core import pii
from core.models import AuditLog
from crm.models import Contact, ContactIdentity, Event
from tests.wechat.callbacks import event_xml, push, signed_query
from tests.wechat.factories import official_account, wechat_follower
from wechat.models import WeChatFollower, WeChatQrScene
from wechat.windows import follower_is_subscribed

pytestmark = pytest.mark.django_db

BOB_OPENID = "o-bob-personal-wechat-000001"
ERIN_OPENID = "o-erin-personal-wechat-00001"


def _start(actor, **body):
    answer = actor.client().post("/api/v1/staff-contact/wechat-bind", body, format="json")
    assert answer.status_code == 201, answer.content
    return answer.json()


def _scene(wechat_stub) -> str:
    """The scene string of the last QR code created at WeChat: what a scan echoes back."""
    return wechat_stub.received("cgi-bin/qrcode/create")[-1].json()["action_info"]["scene"][
        "scene_str"
    ]


def _scan_as_new_follower(oa, openid, scene, *, create_time=1700000000):
    return push(oa, event_xml(openid, "subscribe", key=f"qrscene_{scene}", create_time=create_time))


def _scan_as_follower(oa, openid, scene, *, create_time=1700000001):
    return push(oa, event_xml(openid, "SCAN", key=scene, create_time=create_time))


def _reply_text(response) -> str:
    assert response.status_code == 200
    return parse_message(response.content).content


def _bound_openid(org, user) -> str:
    row = StaffContact.objects.for_org(org).filter(user=user).first()
    return pii.decrypt(row.openid_encrypted) if row and row.openid_encrypted else ""


def test_a_new_follower_scanning_their_code_is_bound_and_never_becomes_a_lead(
    acme, oa, sales_bob, wechat_stub
):
    started = _start(sales_bob)
    assert started["status"] == "pending" and started["wechat_account"] == oa.pk
    assert started["image"].startswith("data:image/png;base64,")
    assert started["expires_in"] == 600
    created = wechat_stub.received("cgi-bin/qrcode/create")[-1].json()
    assert created["action_name"] == "QR_STR_SCENE" and created["expire_seconds"] == 600
    scene = _scene(wechat_stub)
    assert scene.startswith("staff-bind:") and len(scene) <= 64
    # Only the keyed hash of the code is stored.
    code = scene.removeprefix("staff-bind:")
    assert not StaffWeChatBind.objects.for_org(acme).filter(code_hash=code).exists()

    reply = _scan_as_new_follower(oa, BOB_OPENID, scene)

    assert "已绑定" in _reply_text(reply)
    row = StaffContact.objects.for_org(acme).get(user=sales_bob.user)
    assert row.wechat_account_id == oa.pk
    assert BOB_OPENID not in row.openid_encrypted
    assert pii.decrypt(row.openid_encrypted) == BOB_OPENID
    assert row.openid_hash == pii.lookup_hash("openid", BOB_OPENID)
    assert row.openid_masked == "o-bo****0001"
    # A staff member is not a lead: no contact, identity, event or consent.
    assert not Contact.objects.for_org(acme).exists()
    assert not ContactIdentity.objects.for_org(acme).exists()
    assert not Event.objects.for_org(acme).exists()
    follower = WeChatFollower.objects.for_org(acme).get()
    assert follower.contact_id is None and follower.scene == "staff-bind"
    assert follower_is_subscribed(account=oa, openid=BOB_OPENID)
    audit = AuditLog.objects.for_org(acme).get(action="staff_contact.wechat_bind")
    assert audit.actor_id == sales_bob.user.pk and audit.target_id == str(row.pk)
    # The QR code is used up: its row is gone.
    assert not WeChatQrScene.objects.for_org(acme).filter(scene=scene).exists()

    status = sales_bob.client().get(f"/api/v1/staff-contact/wechat-bind/{started['id']}").json()
    assert status["status"] == "bound"
    assert status["contact"]["has_openid"] and status["contact"]["follows_account"]
    assert status["contact"]["openid_masked"] == "o-bo****0001"


def test_an_existing_follower_scanning_their_code_is_bound_too(acme, oa, sales_bob, wechat_stub):
    # Bob followed the account before, as a viewer: that contact stays, no new one appears.
    earlier = wechat_follower(acme, oa, BOB_OPENID)
    started = _start(sales_bob)

    reply = _scan_as_follower(oa, BOB_OPENID, _scene(wechat_stub))

    assert "已绑定" in _reply_text(reply)
    assert _bound_openid(acme, sales_bob.user) == BOB_OPENID
    assert list(Contact.objects.for_org(acme).values_list("pk", flat=True)) == [earlier.pk]
    assert WeChatFollower.objects.for_org(acme).get().contact_id == earlier.pk
    status = sales_bob.client().get(f"/api/v1/staff-contact/wechat-bind/{started['id']}").json()
    assert status["status"] == "bound" and status["contact"]["follows_account"]


def test_a_scan_by_a_follower_we_never_saw_records_them_as_following(
    acme, oa, sales_bob, wechat_stub
):
    _start(sales_bob)
    _scan_as_follower(oa, BOB_OPENID, _scene(wechat_stub))
    assert follower_is_subscribed(account=oa, openid=BOB_OPENID)
    assert not Contact.objects.for_org(acme).exists()


def test_a_push_wechat_retries_binds_once_and_answers_the_same(acme, oa, sales_bob, wechat_stub):
    _start(sales_bob)
    body = event_xml(BOB_OPENID, "subscribe", key=f"qrscene_{_scene(wechat_stub)}")
    replies = {_reply_text(push(oa, body)) for _ in range(3)}
    assert len(replies) == 1 and "已绑定" in replies.pop()
    assert AuditLog.objects.for_org(acme).filter(action="staff_contact.wechat_bind").count() == 1


def test_an_expired_code_binds_nothing(acme, oa, sales_bob, wechat_stub):
    started = _start(sales_bob)
    scene = _scene(wechat_stub)
    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        reply = _scan_as_new_follower(oa, BOB_OPENID, scene)
        status = sales_bob.client().get(f"/api/v1/staff-contact/wechat-bind/{started['id']}")
    assert "失效" in _reply_text(reply)
    assert _bound_openid(acme, sales_bob.user) == ""
    assert status.json()["status"] == "expired"
    assert not AuditLog.objects.for_org(acme).filter(action="staff_contact.wechat_bind").exists()


def test_a_used_code_binds_nobody_else(acme, oa, sales_bob, wechat_stub):
    _start(sales_bob)
    scene = _scene(wechat_stub)
    _scan_as_new_follower(oa, BOB_OPENID, scene)

    someone_else = _scan_as_new_follower(oa, "o-shoulder-surfer-000000001", scene, create_time=5)

    assert "失效" in _reply_text(someone_else)
    assert _bound_openid(acme, sales_bob.user) == BOB_OPENID
    assert AuditLog.objects.for_org(acme).filter(action="staff_contact.wechat_bind").count() == 1


def test_a_new_code_voids_the_previous_one(acme, oa, sales_bob, wechat_stub):
    _start(sales_bob)
    first = _scene(wechat_stub)
    _start(sales_bob)
    assert "失效" in _reply_text(_scan_as_new_follower(oa, BOB_OPENID, first))
    assert _bound_openid(acme, sales_bob.user) == ""
    assert StaffWeChatBind.objects.for_org(acme).count() == 1


def test_another_organisations_code_does_nothing_on_our_account(
    acme, oa, sales_bob, other_org, outsider_erin, wechat_stub
):
    official_account(other_org, appid="wxother0000000001", token="other-token")
    _start(outsider_erin)
    erins_scene = _scene(wechat_stub)

    reply = _scan_as_new_follower(oa, ERIN_OPENID, erins_scene)

    assert "失效" in _reply_text(reply)
    assert not StaffContact.objects.for_org(other_org).exists()
    assert not StaffContact.objects.for_org(acme).exists()
    assert not Contact.unscoped.exists()
    assert StaffWeChatBind.objects.for_org(other_org).get().used_at is None


def test_a_forged_push_is_refused_before_any_logic(acme, oa, sales_bob, wechat_stub):
    _start(sales_bob)
    body = event_xml(BOB_OPENID, "subscribe", key=f"qrscene_{_scene(wechat_stub)}")
    response = push(oa, body, query=signed_query("not-the-token"))
    assert response.status_code == 403
    assert _bound_openid(acme, sales_bob.user) == ""
    assert StaffWeChatBind.objects.for_org(acme).get().used_at is None


def test_unbind_clears_the_wechat_contact_point_and_keeps_the_phone(
    acme, oa, sales_bob, wechat_stub
):
    sales_bob.client().put("/api/v1/staff-contact", {"phone": "13900000001"}, format="json")
    _start(sales_bob)
    _scan_as_new_follower(oa, BOB_OPENID, _scene(wechat_stub))

    answer = sales_bob.client().delete("/api/v1/staff-contact/wechat-bind")

    assert answer.status_code == 200
    assert answer.json() == {
        "phone": "139****0001",
        "wechat_account": None,
        "has_openid": False,
        "openid_masked": "",
        "follows_account": False,
    }
    row = StaffContact.objects.for_org(acme).get(user=sales_bob.user)
    assert (row.openid_encrypted, row.openid_hash, row.wechat_account_id) == ("", "", None)
    assert pii.decrypt(row.phone_encrypted) == "13900000001"
    unbind = AuditLog.objects.for_org(acme).get(action="staff_contact.wechat_unbind")
    assert unbind.actor_id == sales_bob.user.pk


def test_start_and_status_are_the_callers_own_and_tenant_scoped(
    acme, oa, sales_bob, admin_carol, other_org, outsider_erin, wechat_stub
):
    started = _start(sales_bob)
    carol = admin_carol.client().get(f"/api/v1/staff-contact/wechat-bind/{started['id']}")
    erin = outsider_erin.client().get(f"/api/v1/staff-contact/wechat-bind/{started['id']}")
    assert carol.status_code == 404 and erin.status_code == 404
    # Another organisation's account, a bad id, an org without an official account.
    theirs = official_account(other_org, appid="wxother0000000001")
    wrong = sales_bob.client().post(
        "/api/v1/staff-contact/wechat-bind", {"wechat_account": theirs.pk}, format="json"
    )
    assert wrong.status_code == 404 and "wechat_account" in wrong.json()["fields"]
    bad = sales_bob.client().post(
        "/api/v1/staff-contact/wechat-bind", {"wechat_account": "x"}, format="json"
    )
    assert bad.status_code == 400 and "wechat_account" in bad.json()["fields"]
    theirs.delete()
    none = outsider_erin.client().post("/api/v1/staff-contact/wechat-bind", {}, format="json")
    assert none.status_code == 404 and "wechat_account" in none.json()["fields"]


def test_wechat_down_at_start_is_503_and_makes_no_code(acme, oa, sales_bob, wechat_stub):
    wechat_stub.fail("cgi-bin/qrcode/create", 45009, "api freq out of limit")
    answer = sales_bob.client().post("/api/v1/staff-contact/wechat-bind", {}, format="json")
    assert answer.status_code == 503 and answer.json()["code"] == "wechat_unavailable"
    assert not StaffWeChatBind.objects.for_org(acme).exists()


def test_binding_codes_never_leave_through_the_shared_qr_api(acme, oa, sales_bob, wechat_stub):
    _start(sales_bob)
    scene = _scene(wechat_stub)
    qr = WeChatQrScene.objects.for_org(acme).get(scene=scene)
    # Another sales member could otherwise fetch Bob's code and bind their own WeChat to him.
    image = sales_bob.client().get(f"/api/v1/wechat/qrcodes/{qr.pk}/image")
    assert image.status_code == 404
    made = sales_bob.client().post("/api/v1/wechat/qrcodes", {"scene": scene}, format="json")
    assert made.status_code == 400 and "scene" in made.json()["fields"]
