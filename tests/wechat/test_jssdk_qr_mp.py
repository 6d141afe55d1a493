"""JS-SDK share config, parametric QR codes, mini-program subscribe consents, accounts API."""

import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.factories import RoomFactory
from wechat.models import WeChatAccount
from wechat.mp import mp_consent_use
from wechat.share import invite_code_for_contact, jssdk_signature

pytestmark = pytest.mark.django_db


def test_jssdk_signature_matches_wechats_documented_example():
    # JS-SDK documentation, appendix 1 (签名算法) example values and result.
    signature = jssdk_signature(
        ticket="sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg",
        noncestr="Wm3WZYTPz0wzccnW",
        timestamp=1414587457,
        url="http://mp.weixin.qq.com?params=value",
    )
    assert signature == "0f9de62fce790f9a083d5c99e95740ceb90c27ed"


def test_jssdk_config_is_signed_and_the_share_link_carries_the_sharer(
    acme, oa, viewer_dan, wechat_stub, settings
):
    # The page is signed for the address the viewer is on (core/links.py), not SITE_URL.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "live.acme.cn"]
    room = RoomFactory(org=acme, streamer__org=acme, title="周五护肤专场")
    page = f"https://live.acme.cn/live/{room.pk}/?invite=someone-else#frag"
    response = viewer_dan.client().get(
        "/api/v1/wechat/jssdk-config",
        {"url": page, "room": room.pk},
        secure=True,
        headers={"host": "live.acme.cn"},
    )
    assert response.status_code == 200, response.json()
    config = response.json()
    ticket = "stub-jsapi-wxacme0000000001"
    signed_url = page.split("#")[0]
    raw = (
        f"jsapi_ticket={ticket}&noncestr={config['nonceStr']}"
        f"&timestamp={config['timestamp']}&url={signed_url}"
    )
    assert config["signature"] == hashlib.sha1(raw.encode()).hexdigest()  # noqa: S324
    assert config["appId"] == "wxacme0000000001"
    share = config["share"]
    assert share["title"] == "周五护肤专场"
    invite = parse_qs(urlsplit(share["link"]).query)["invite"]
    assert invite == [invite_code_for_contact(viewer_dan.contact.pk, org=acme)]
    # the ticket is cached: a second config does not fetch another
    viewer_dan.client().get(
        "/api/v1/wechat/jssdk-config", {"url": page}, secure=True, headers={"host": "live.acme.cn"}
    )
    assert len(wechat_stub.received("cgi-bin/ticket/getticket")) == 1


def test_jssdk_config_refuses_foreign_pages_and_anonymous_callers(oa, viewer_dan, anon, settings):
    settings.SITE_URL = "http://testserver"  # the request's host decides, never SITE_URL
    response = viewer_dan.client().get(
        "/api/v1/wechat/jssdk-config", {"url": "https://evil.example/x"}
    )
    assert response.status_code == 400 and "url" in response.json()["fields"]
    # the same path on another port or scheme is not the page being served either
    for other in ("http://testserver:8000/live/1/", "https://testserver/live/1/"):
        response = viewer_dan.client().get("/api/v1/wechat/jssdk-config", {"url": other})
        assert response.status_code == 400, other
    assert (
        anon.get("/api/v1/wechat/jssdk-config", {"url": "https://live.acme.cn/"}).status_code == 401
    )


def test_qr_code_is_created_once_and_cached(acme, oa, sales_bob, wechat_stub):
    client = sales_bob.client()
    first = client.post("/api/v1/wechat/qrcodes", {"scene": "room:12"}, format="json")
    again = client.post("/api/v1/wechat/qrcodes", {"scene": "room:12"}, format="json")
    assert first.status_code == 201, first.json()
    assert first.json()["id"] == again.json()["id"]
    assert first.json()["kind"] == "temporary" and first.json()["expires_at"]
    (created,) = wechat_stub.received("cgi-bin/qrcode/create")
    assert created.json()["action_info"]["scene"]["scene_str"] == "room:12"
    image = client.get(first.json()["image_path"])
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    permanent = client.post(
        "/api/v1/wechat/qrcodes", {"scene": "invite:abc", "permanent": True}, format="json"
    )
    assert permanent.json()["kind"] == "permanent" and permanent.json()["expires_at"] is None


def test_qr_code_scene_is_validated_and_other_orgs_see_404(
    acme, oa, sales_bob, outsider_erin, wechat_stub
):
    bad = sales_bob.client().post("/api/v1/wechat/qrcodes", {"scene": "<script>"}, format="json")
    assert bad.status_code == 400 and "scene" in bad.json()["fields"]
    made = sales_bob.client().post("/api/v1/wechat/qrcodes", {"scene": "campaign:3"}, format="json")
    image = outsider_erin.client().get(made.json()["image_path"])
    assert image.status_code == 404


def test_mp_subscription_choices_record_one_shot_consents(acme, mp, viewer_dan):
    response = viewer_dan.client().post(
        "/api/v1/viewer/mp-subscriptions",
        {"results": {"TPL_LIVE": "accept", "TPL_COUPON": "reject"}},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["unused"] == {"TPL_LIVE": 1, "TPL_COUPON": 0}
    contact = viewer_dan.contact
    assert mp_consent_use(account=mp, contact=contact, template_id="TPL_LIVE")
    assert not mp_consent_use(account=mp, contact=contact, template_id="TPL_LIVE")
    assert not mp_consent_use(account=mp, contact=contact, template_id="TPL_COUPON")


def test_mp_subscription_input_is_validated(acme, mp, viewer_dan, sales_bob):
    bad = viewer_dan.client().post(
        "/api/v1/viewer/mp-subscriptions", {"results": {"T": "maybe"}}, format="json"
    )
    assert bad.status_code == 400 and "results" in bad.json()["fields"]
    staff = sales_bob.client().post(
        "/api/v1/viewer/mp-subscriptions", {"results": {"T": "accept"}}, format="json"
    )
    assert staff.status_code == 403


def test_admin_registers_accounts_and_never_gets_secrets_back(
    admin_carol, sales_bob, outsider_erin
):
    body = {
        "name": "品牌服务号",
        "appid": "wxabcdef0123456789",
        "secret": "s3cr3t-value",
        "token": "tok123",
        "encrypt_mode": "safe",
        "aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    }
    created = admin_carol.client().post("/api/v1/wechat/accounts", body, format="json")
    assert created.status_code == 201, created.json()
    text = created.content.decode()
    assert "s3cr3t-value" not in text and "ABCDEFG" not in text
    assert created.json()["has_secret"] and created.json()["has_aes_key"]
    assert created.json()["callback_path"] == f"/hooks/wechat/{created.json()['id']}"
    duplicate = admin_carol.client().post("/api/v1/wechat/accounts", body, format="json")
    assert duplicate.status_code == 409
    assert sales_bob.client().get("/api/v1/wechat/accounts").status_code == 403
    detail = f"/api/v1/wechat/accounts/{created.json()['id']}"
    assert outsider_erin.client().patch(detail, {"name": "x"}, format="json").status_code == 404
    patched = admin_carol.client().patch(detail, {"secret": "new-secret"}, format="json")
    assert patched.status_code == 200
    assert WeChatAccount.unscoped.get(pk=created.json()["id"]).secret() == "new-secret"
    bad = admin_carol.client().post(
        "/api/v1/wechat/accounts",
        {**body, "appid": "wxabcdef0123456780", "aes_key": "short"},
        format="json",
    )
    assert bad.status_code == 400 and "aes_key" in bad.json()["fields"]
