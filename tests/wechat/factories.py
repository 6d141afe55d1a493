"""Factories for the WeChat identity tests."""

from __future__ import annotations

from campaigns.wechat.accounts import wechat_account_create

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
