"""Viewer sign-in through WeChat with the real wechatpy clients against the stub."""

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.test import Client
from rest_framework.test import APIClient

from core import pii
from core.tokens import ViewerClaims, parse_token
from crm.models import Contact, ContactIdentity
from wechat.stub import StubUser, openid_for_code

pytestmark = pytest.mark.django_db


def start_session(**body):
    return APIClient().post("/api/v1/viewer/session", {"org": "acme", **body}, format="json")


def test_h5_oauth_code_signs_the_viewer_in_and_creates_the_contact(acme, oa, wechat_stub):
    wechat_stub.register_code(
        "code-h5-1",
        StubUser(openid="o-h5-1", nickname="阿花", sex=2, province="上海", city="上海"),
    )
    response = start_session(wechat_code="code-h5-1", room=5)
    assert response.status_code == 201, response.json()
    claims = parse_token(response.json()["token"])
    assert isinstance(claims, ViewerClaims)
    contact = Contact.objects.for_org(acme).get(pk=response.json()["contact_id"])
    assert claims.contact_id == contact.pk and claims.room_id == 5
    assert (contact.nickname, contact.gender, contact.city) == ("阿花", "female", "上海")
    assert contact.source == "room" and contact.source_detail == {"room": 5}
    identity = ContactIdentity.objects.for_org(acme).get(contact=contact)
    assert (identity.kind, identity.app_id) == ("openid", "wxacme0000000001")
    assert identity.value_hash == pii.lookup_hash("openid", "o-h5-1")
    # the exchange really went through wechatpy's OAuth client to the stub
    (exchange,) = wechat_stub.received("sns/oauth2/access_token")
    assert exchange.query["code"] == "code-h5-1"
    assert exchange.query["secret"] == "acme-secret"


def test_second_login_of_the_same_person_reuses_the_contact(acme, oa, wechat_stub):
    user = StubUser(openid="o-h5-2", nickname="小李")
    wechat_stub.register_code("c1", user)
    wechat_stub.register_code("c2", user)
    first = start_session(wechat_code="c1").json()["contact_id"]
    second = start_session(wechat_code="c2").json()["contact_id"]
    assert first == second
    assert Contact.objects.for_org(acme).count() == 1


def test_invite_on_login_attributes_the_new_viewer(acme, oa, wechat_stub):
    response = start_session(wechat_code="any-code", invite="INV9", room=3)
    contact = Contact.objects.for_org(acme).get(pk=response.json()["contact_id"])
    assert contact.source == "invite"
    assert contact.source_detail == {"room": 3, "invite": "INV9"}


def test_rejected_code_is_a_400_with_the_field(acme, oa, wechat_stub):
    wechat_stub.fail("sns/oauth2/access_token", 40163, "code been used")
    response = start_session(wechat_code="used")
    assert response.status_code == 400
    assert response.json()["code"] == "wechat_code_invalid"
    assert "wechat_code" in response.json()["fields"]
    assert not Contact.objects.for_org(acme).exists()


def test_wechat_down_is_a_503_not_a_500(acme, oa, wechat_stub):
    wechat_stub.fail("sns/oauth2/access_token", 0, http_status=502)
    response = start_session(wechat_code="x")
    assert response.status_code == 503
    assert response.json()["code"] == "wechat_unavailable"


def test_org_without_an_official_account_says_so(acme, wechat_stub):
    response = start_session(wechat_code="x")
    assert response.status_code == 404
    assert "wechat_code" in response.json()["fields"]


def test_guest_path_is_unchanged(acme):
    response = start_session(guest_name="游客小王")
    assert response.status_code == 201
    assert response.json()["guest_id"]


def test_mini_program_login_through_code2session(acme, mp, wechat_stub):
    response = start_session(mp_code="mp-code-1")
    assert response.status_code == 201, response.json()
    contact = Contact.objects.for_org(acme).get(pk=response.json()["contact_id"])
    identity = ContactIdentity.objects.for_org(acme).get(contact=contact)
    expected = openid_for_code("wxacmemp00000001", "mp-code-1", prefix="m")
    assert identity.value_hash == pii.lookup_hash("openid", expected)
    assert identity.app_id == "wxacmemp00000001"
    assert wechat_stub.received("sns/jscode2session")[0].query["js_code"] == "mp-code-1"


def test_unionid_joins_mini_program_and_official_account_logins(acme, oa, mp, wechat_stub):
    wechat_stub.register_code("h5", StubUser(openid="o-oa", unionid="union-1", nickname="同一人"))
    wechat_stub.register_code("mp", StubUser(openid="m-mp", unionid="union-1"))
    first = start_session(wechat_code="h5").json()["contact_id"]
    second = start_session(mp_code="mp").json()["contact_id"]
    assert first == second
    kinds = sorted(ContactIdentity.objects.for_org(acme).values_list("kind", flat=True))
    assert kinds == ["openid", "openid", "unionid"]


def test_outsider_org_codes_never_reach_this_org(acme, other_org, oa, wechat_stub):
    response = APIClient().post(
        "/api/v1/viewer/session",
        {"org": "other", "wechat_code": "x", "wechat_account": oa.pk},
        format="json",
    )
    assert response.status_code == 404  # acme's account is not other's
    assert not Contact.unscoped.exists()


# --- the H5 redirect flow ---------------------------------------------------------------------


def test_oauth_redirect_flow_binds_state_to_the_browser_session(acme, oa, wechat_stub):
    browser = Client()
    start = browser.get(
        "/wechat/oauth/start", {"org": "acme", "scope": "snsapi_userinfo", "next": "/live/7/?x=1"}
    )
    assert start.status_code == 302
    authorize = start["Location"]
    assert authorize.startswith(wechat_stub.base_url + "connect/oauth2/authorize?appid=wxacme")
    assert "scope=snsapi_userinfo" in authorize
    # WeChat's page (the stub) agrees and sends the browser back with code + state
    back = requests.get(authorize, allow_redirects=False, timeout=5)
    callback = urlsplit(back.headers["Location"])
    assert callback.path == "/wechat/oauth/callback"
    params = {k: v[0] for k, v in parse_qs(callback.query).items()}

    # another browser (no session) presenting the same state is refused
    assert Client().get("/wechat/oauth/callback", params).status_code == 400

    page = browser.get("/wechat/oauth/callback", params)
    assert page.status_code == 302
    target = urlsplit(page["Location"])
    assert target.path == "/live/7/" and target.query == "x=1"
    fragment = {k: v[0] for k, v in parse_qs(target.fragment).items()}
    assert fragment["org"] == "acme" and fragment["wechat_account"] == str(oa.pk)

    session = start_session(wechat_code=fragment["wechat_code"])
    assert session.status_code == 201
    # the state is single use
    assert browser.get("/wechat/oauth/callback", params).status_code == 400


def test_oauth_start_never_redirects_off_site(acme, oa, wechat_stub):
    browser = Client()
    start = browser.get("/wechat/oauth/start", {"org": "acme", "next": "https://evil.example/"})
    state = parse_qs(urlsplit(start["Location"]).query)["state"][0]
    page = browser.get("/wechat/oauth/callback", {"code": "c", "state": state})
    assert page["Location"].startswith("/#wechat_code=")


def test_oauth_start_validates_scope_and_org(acme, oa, wechat_stub):
    assert Client().get("/wechat/oauth/start", {"org": "acme", "scope": "all"}).status_code == 400
    assert Client().get("/wechat/oauth/start", {"org": "nope"}).status_code == 404


def test_wechat_login_with_an_invite_code_credits_the_inviter(acme, oa, viewer_dan, wechat_stub):
    from livecommerce.models import Invite
    from livecommerce.services.invites import invite_code_for

    code = invite_code_for(contact=viewer_dan.contact)
    response = start_session(wechat_code="invited-code", invite=code)
    invite = Invite.objects.for_org(acme).get()
    assert invite.inviter_id == viewer_dan.contact.pk
    assert invite.invitee_id == response.json()["contact_id"]
    assert invite.flagged == ""


def test_oauth_start_for_an_org_without_official_account_goes_back_to_the_page(acme):
    response = Client().get("/wechat/oauth/start", {"org": "acme", "next": "/live/4/?invite=ab"})
    assert response.status_code == 302 and response["Location"] == "/live/4/?invite=ab"
