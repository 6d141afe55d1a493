"""JS-SDK share config: WeChat's share card shows the room, the link carries the sharer.

WeChat's JS-SDK signature is SHA1 over
``jsapi_ticket=…&noncestr=…&timestamp=…&url=…`` (keys sorted, the page URL without its
fragment); wechatpy's ``get_jsapi_signature`` computes it and the ticket is cached in the
shared cache like the access token.
"""

from __future__ import annotations

import secrets
import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from django.http import HttpRequest
from django.utils.translation import gettext as _
from wechatpy.client.api.jsapi import WeChatJSAPI
from wechatpy.exceptions import WeChatClientException

from core import links
from core.errors import DomainError
from core.models import Organization
from crm.models import Contact
from livecommerce.models import Room
from livecommerce.services.invites import invite_code_for
from wechat.client import wechat_client
from wechat.login import WeChatUnavailable, account_for_login
from wechat.models import WeChatAccountKind

JS_API_LIST = ["updateAppMessageShareData", "updateTimelineShareData", "onMenuShareAppMessage"]


def jssdk_signature(*, ticket: str, noncestr: str, timestamp: int | str, url: str) -> str:
    return WeChatJSAPI().get_jsapi_signature(noncestr, ticket, timestamp, url)


def invite_code_for_contact(contact_id: int, *, org: Organization) -> str:
    """The sharer's own invite code (the share graph lives with the live rooms)."""
    contact = Contact.objects.for_org(org).filter(pk=contact_id).first()
    return invite_code_for(contact=contact) if contact else ""


def _page_url(url: str, request: HttpRequest | None) -> str:
    """The URL WeChat signs: a page on the address being served only, fragment removed."""
    parts = urlsplit(url)
    if not links.is_own_url(url, request=request):
        raise DomainError(_("只能为本站页面签名"), fields={"url": [_("只能为本站页面签名")]})
    return urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))


def _share_link(page_url: str, invite: str) -> str:
    parts = urlsplit(page_url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("invite", "wechat_code")]
    if invite:
        query.append(("invite", invite))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def jssdk_config(
    *,
    org: Organization,
    url: str,
    contact_id: int | None,
    room_id: int | None = None,
    account_id: int | None = None,
    request: HttpRequest | None = None,
) -> dict:
    """Signed ``wx.config`` for a page of ours (on the address ``request`` came to) plus
    the share card data."""
    page = _page_url(url, request)
    account = account_for_login(org=org, kind=WeChatAccountKind.OFFICIAL, account_id=account_id)
    try:
        ticket = wechat_client(account).jsapi.get_jsapi_ticket()
    except (WeChatClientException, requests.RequestException):
        raise WeChatUnavailable(_("微信服务暂时不可用，请稍后重试")) from None
    timestamp = int(time.time())
    noncestr = secrets.token_urlsafe(12)
    share = {"title": org.name, "desc": "", "link": "", "imgUrl": ""}
    if room_id:
        room = Room.objects.for_org(org).filter(pk=room_id).first()
        if room is not None:
            share["title"] = room.title
            share["desc"] = (room.description or "")[:80]
            if room.cover:
                share["imgUrl"] = links.absolute_url(room.cover.url, request=request)
    invite = invite_code_for_contact(contact_id, org=org) if contact_id else ""
    share["link"] = _share_link(page, invite)
    return {
        "appId": account.appid,
        "timestamp": timestamp,
        "nonceStr": noncestr,
        "signature": jssdk_signature(
            ticket=ticket, noncestr=noncestr, timestamp=timestamp, url=page
        ),
        "jsApiList": JS_API_LIST,
        "share": share,
    }
