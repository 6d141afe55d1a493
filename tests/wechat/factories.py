"""Factories for the WeChat identity tests."""

from __future__ import annotations

from core import pii
from crm.models import ContactIdentity
from tests.factories import ContactFactory
from wechat.accounts import wechat_account_create
from wechat.models import WeChatFollower

DEMO_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


def official_account(org, *, appid="wxacme0000000001", **kwargs):
    kwargs.setdefault("token", "acme-token")
    kwargs.setdefault("name", "Acme 服务号")
    kwargs.setdefault("secret", "acme-secret")
    return wechat_account_create(org=org, appid=appid, **kwargs)


def mini_program(org, *, appid="wxacmemp00000001", **kwargs):
    kwargs.setdefault("name", "Acme 小程序")
    kwargs.setdefault("secret", "acme-mp-secret")
    return wechat_account_create(org=org, appid=appid, kind="mp", **kwargs)


def wechat_follower(org, oa, openid, *, subscribed=True):
    """A contact known by its openid who follows (or followed) the official account."""
    contact = ContactFactory(org=org)
    ContactIdentity.unscoped.create(
        org=org,
        contact=contact,
        kind="openid",
        app_id=oa.appid,
        value_hash=pii.lookup_hash("openid", openid),
        value_encrypted=pii.encrypt(openid),
    )
    WeChatFollower.unscoped.create(
        org=org,
        account=oa,
        contact=contact,
        openid_hash=pii.lookup_hash("openid", openid),
        openid_encrypted=pii.encrypt(openid),
        subscribed=subscribed,
    )
    return contact
