"""H5 OAuth and mini-program login end to end over real HTTP: browser redirects, the stub as
WeChat, wechatpy's clients, PostgreSQL + Redis."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from core.tokens import parse_token
from crm.models import Contact
from tests.factories import OrganizationFactory
from tests.wechat.factories import mini_program, official_account
from wechat.stub import WeChatStub

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def stub(settings, live_server):
    settings.WECHAT_CACHE_PREFIX = f"wx-it-{uuid.uuid4().hex[:8]}"
    settings.SITE_URL = live_server.url
    with WeChatStub() as wechat:
        settings.WECHAT_API_BASE = wechat.base_url
        yield wechat


def test_h5_oauth_redirect_flow_end_to_end(live_server, stub):
    org = OrganizationFactory(slug="it-h5")
    account = official_account(org, appid="wxith500000000001")
    browser = requests.Session()  # follows redirects and keeps both sites' cookies
    landing = browser.get(
        f"{live_server.url}/wechat/oauth/start",
        params={"org": "it-h5", "scope": "snsapi_userinfo", "next": "/live/3/"},
        timeout=10,
        allow_redirects=True,
    )
    final = urlsplit(landing.url)
    assert final.path == "/live/3/"  # (the page itself belongs to the rooms issue)
    fragment = {k: v[0] for k, v in parse_qs(final.fragment).items()}
    assert fragment["wechat_account"] == str(account.pk)
    session = browser.post(
        f"{live_server.url}/api/v1/viewer/session",
        json={"org": "it-h5", "wechat_code": fragment["wechat_code"], "room": 3},
        timeout=10,
    )
    assert session.status_code == 201, session.text
    claims = parse_token(session.json()["token"])
    contact = Contact.objects.for_org(org).get(pk=claims.contact_id)
    assert contact.source == "room" and contact.nickname.startswith("微信用户")
    # the same browser comes back later: same person, same contact
    again = browser.get(
        f"{live_server.url}/wechat/oauth/start", params={"org": "it-h5"}, timeout=10
    )
    code = parse_qs(urlsplit(again.url).fragment)["wechat_code"][0]
    second = browser.post(
        f"{live_server.url}/api/v1/viewer/session",
        json={"org": "it-h5", "wechat_code": code},
        timeout=10,
    )
    assert second.json()["contact_id"] == contact.pk
    config = browser.get(
        f"{live_server.url}/api/v1/wechat/jssdk-config",
        params={"url": f"{live_server.url}/live/3/"},
        headers={"Authorization": f"Token {second.json()['token']}"},
        timeout=10,
    )
    assert config.status_code == 200 and config.json()["signature"]


def test_mini_program_login_end_to_end(live_server, stub):
    org = OrganizationFactory(slug="it-mp")
    mini_program(org, appid="wxitmp0000000001")
    session = requests.post(
        f"{live_server.url}/api/v1/viewer/session",
        json={"org": "it-mp", "mp_code": "wx-login-code"},
        timeout=10,
    )
    assert session.status_code == 201, session.text
    contact_id = parse_token(session.json()["token"]).contact_id
    assert Contact.objects.for_org(org).filter(pk=contact_id).exists()
    consent = requests.post(
        f"{live_server.url}/api/v1/viewer/mp-subscriptions",
        json={"results": {"TPL_LIVE": "accept"}},
        headers={"Authorization": f"Token {session.json()['token']}"},
        timeout=10,
    )
    assert consent.status_code == 201 and consent.json()["unused"] == {"TPL_LIVE": 1}
