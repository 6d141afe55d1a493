"""Demo WeChat accounts (docs/wechat.md): official account id 1, token ``demo-wechat-token``, appid
``wxdemo0000000000``, plain-text mode; a demo mini-program; keyword replies. In the embedded
default every call they make goes to the in-process WeChat stub (docs/wechat.md)."""

from __future__ import annotations

from django.core.management.color import no_style
from django.db import connection

from wechat.accounts import wechat_account_create, wechat_account_find_by_appid
from wechat.models import WeChatAccount, WeChatKeywordReply

DEMO_OA_APPID = "wxdemo0000000000"
DEMO_OA_TOKEN = "demo-wechat-token"  # noqa: S105 - published demo value
DEMO_MP_APPID = "wxdemomp00000000"

KEYWORDS = [
    ("回放", "exact", "replay", "最新回放"),
    ("直播", "contains", "room", "直播间"),
    ("优惠券", "contains", "room", "优惠券在直播间领取，点这里进入"),
]


def seed(ctx) -> None:
    org = ctx.org
    oa = wechat_account_find_by_appid(org=org, appid=DEMO_OA_APPID)
    if oa is None:
        oa = wechat_account_create(
            org=org,
            name="千面演示服务号",
            appid=DEMO_OA_APPID,
            secret="demo-wechat-secret",  # noqa: S106
            token=DEMO_OA_TOKEN,
            encrypt_mode="plain",
            welcome_text="欢迎关注千面演示服务号！开播提醒、回放和直播间福利都会在这里通知你。",
        )
        if oa.pk != 1 and not WeChatAccount.unscoped.filter(pk=1).exists():
            # The demo account's id is fixed: its callback URL is /hooks/wechat/1 (docs/wechat.md).
            WeChatAccount.unscoped.filter(pk=oa.pk).update(id=1)
            oa = WeChatAccount.unscoped.get(pk=1)
            _reset_sequence()
    if wechat_account_find_by_appid(org=org, appid=DEMO_MP_APPID) is None:
        wechat_account_create(
            org=org,
            name="千面演示小程序",
            appid=DEMO_MP_APPID,
            secret="demo-mp-secret",  # noqa: S106
            kind="mp",
        )
    for keyword, match, action, text in KEYWORDS:
        WeChatKeywordReply.objects.for_org(org).get_or_create(
            org=org,
            account=oa,
            keyword=keyword,
            defaults={"match": match, "action": action, "text": text},
        )
    ctx.extra["wechat_account"] = oa


def _reset_sequence() -> None:
    statements = connection.ops.sequence_reset_sql(no_style(), [WeChatAccount])
    if statements:
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)
