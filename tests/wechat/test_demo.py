"""The demo official account (docs/wechat.md, "The stub") answers callbacks out of the box."""

import pytest
from django.core.management import call_command
from wechatpy import parse_message

from tests.wechat.callbacks import push, text_xml
from wechat.models import WeChatAccount


@pytest.mark.django_db
def test_demo_official_account_is_spec_account_one_and_answers_keywords():
    call_command("seed_demo")
    call_command("seed_demo")  # idempotent
    account = WeChatAccount.unscoped.get(pk=1)
    assert (account.appid, account.token, account.encrypt_mode) == (
        "wxdemo0000000000",
        "demo-wechat-token",
        "plain",
    )
    assert WeChatAccount.unscoped.count() == 2  # + the demo mini-program
    reply = parse_message(push(account, text_xml("o-demo-viewer", "直播")).content)
    assert "/live/" in reply.content
