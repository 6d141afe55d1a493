"""Org admins manage WeChat accounts in Django admin; secrets never render back."""

import pytest

from tests.wechat.factories import official_account
from wechat.models import WeChatAccount

pytestmark = pytest.mark.django_db


def test_admin_creates_an_account_and_the_secret_is_never_shown(acme, admin_browser):
    response = admin_browser.post(
        "/admin/wechat/wechataccount/add/",
        {
            "kind": "oa",
            "name": "后台服务号",
            "appid": "wxadmin000000000001",
            "token": "tok",
            "encrypt_mode": "plain",
            "secret": "super-secret-value",
            "aes_key": "",
            "welcome_text": "",
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    account = WeChatAccount.objects.for_org(acme).get()
    assert account.secret() == "super-secret-value"
    page = admin_browser.get(f"/admin/wechat/wechataccount/{account.pk}/change/")
    assert page.status_code == 200
    assert b"super-secret-value" not in page.content
    assert account.secret_encrypted.encode() not in page.content


def test_admin_sees_only_their_org(acme, other_org, admin_browser):
    theirs = official_account(other_org, appid="wxother0000000001")
    page = admin_browser.get(f"/admin/wechat/wechataccount/{theirs.pk}/change/")
    assert page.status_code in (302, 404)
