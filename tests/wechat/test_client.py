"""The client factory: wechatpy pointed at the stub, one shared token, refreshed once."""

import threading

import pytest

from core import pii
from wechat.client import mp_client, wechat_client
from wechat.models import WeChatAccount


def test_credentials_are_encrypted_at_rest(oa):
    row = WeChatAccount.unscoped.values().get(pk=oa.pk)
    assert "wxacme0000000001" not in str(row)
    assert "acme-secret" not in str(row)
    assert pii.decrypt(row["secret_encrypted"]) == "acme-secret"
    assert WeChatAccount.unscoped.get(pk=oa.pk).appid == "wxacme0000000001"


def test_client_fetches_one_token_and_reuses_it_across_clients(wechat_stub, oa):
    first = wechat_client(oa).qrcode.create(
        {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": "room:1"}}}
    )
    second = wechat_client(oa).qrcode.create(
        {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": "room:2"}}}
    )
    assert first["ticket"] != second["ticket"]
    assert wechat_stub.state.token_fetches == 1
    (token_call,) = wechat_stub.received("cgi-bin/token")
    assert token_call.query["appid"] == "wxacme0000000001"
    assert token_call.query["secret"] == "acme-secret"


def test_token_is_refreshed_once_under_concurrency(wechat_stub, oa):
    wechat_stub.state.token_delay = 0.3  # a slow token endpoint widens the race
    errors = []

    def call():
        try:
            wechat_client(oa).jsapi.get_ticket()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert wechat_stub.state.token_fetches == 1
    assert len(wechat_stub.received("cgi-bin/ticket/getticket")) == 12


def test_expired_token_is_refetched_and_the_call_retried(wechat_stub, oa):
    wechat_client(oa).jsapi.get_ticket()
    wechat_stub.expire_tokens()
    result = wechat_client(oa).jsapi.get_ticket()
    assert result["ticket"] == "stub-jsapi-wxacme0000000001"
    assert wechat_stub.state.token_fetches == 2


def test_mini_program_code_to_session_goes_to_the_stub(wechat_stub, mp):
    session = mp_client(mp).wxa.code_to_session("code-1")
    assert session["openid"].startswith("m")
    assert wechat_stub.received("sns/jscode2session")[0].query["js_code"] == "code-1"


def test_injected_errors_surface_as_wechatpy_exceptions(wechat_stub, oa):
    from wechatpy.exceptions import WeChatClientException

    wechat_stub.fail("cgi-bin/message/custom/send", 45015, "response out of time limit")
    with pytest.raises(WeChatClientException) as caught:
        wechat_client(oa).message.send_text("o-someone", "hi")
    assert caught.value.errcode == 45015
