"""Building signed WeChat pushes the way WeChat's servers do (shared by the callback tests)."""

from __future__ import annotations

import hashlib
import secrets
import time

from django.test import Client


def sign(token: str, timestamp: str, nonce: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()  # noqa: S324


def signed_query(token: str, *, timestamp: str | None = None, nonce: str | None = None) -> dict:
    timestamp = timestamp or str(int(time.time()))
    nonce = nonce or secrets.token_hex(5)
    return {"signature": sign(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}


def event_xml(openid: str, event: str, *, key: str = "", create_time: int = 1700000000) -> str:
    return (
        "<xml><ToUserName><![CDATA[gh_acme]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[{event}]]></Event><EventKey><![CDATA[{key}]]></EventKey>"
        "<Ticket><![CDATA[t]]></Ticket></xml>"
    )


def text_xml(openid: str, content: str, *, msg_id: int = 1, create_time: int = 1700000000) -> str:
    return (
        "<xml><ToUserName><![CDATA[gh_acme]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    )


def push(account, body: str | bytes, *, query: dict | None = None, client=None):
    """POST a push to the account's callback URL with a valid signature."""
    query = query or signed_query(account.token)
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    data = body.encode() if isinstance(body, str) else body
    return (client or Client()).post(
        f"/hooks/wechat/{account.pk}?{qs}", data=data, content_type="text/xml"
    )
