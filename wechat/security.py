"""WeChat content security for text viewers post from the mini-program (msgSecCheck v2).

A mini-program must have user text checked by WeChat before it is shown
(``wxa/msg_sec_check``, version 2, with the author's openid; WeChat knows only its own
mini-program users, so viewers who came by H5 or as guests are left to the organisation's
sensitive words). ``text_content_check`` is registered with ``core.content_checks`` for chat
(scene 2, comments) and nicknames (scene 1, profile):

- verdicts (``pass`` / ``review`` / ``risky``) are cached per mini-program and text for a
  day, so a repeated text ("想要", "1") costs WeChat nothing;
- when WeChat cannot be asked (no answer within ``WECHAT_HTTP_TIMEOUT``, an error code), the
  answer is ``pass`` and nothing is cached: a content-security outage never stops chat.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time

import requests
from django.conf import settings
from django.core.cache import cache
from wechatpy.exceptions import WeChatClientException

from core import pii
from crm.models import ContactIdentity, IdentityKind
from wechat.client import mp_client
from wechat.models import WeChatAccount, WeChatAccountKind

log = logging.getLogger(__name__)

VERDICTS = ("pass", "review", "risky")
VERDICT_TTL = 24 * 3600
# WeChat's scenes: 1 profile (资料), 2 comment (评论).
WECHAT_SCENES = {"profile": 1, "chat": 2}
_ACCOUNT_TTL = 60.0
_accounts: dict[int, tuple[float, WeChatAccount | None]] = {}
_accounts_lock = threading.Lock()


def _mini_program(org_id: int) -> WeChatAccount | None:
    """The organisation's mini-program account (cached a minute per process)."""
    with _accounts_lock:
        cached = _accounts.get(org_id)
        if cached and time.monotonic() - cached[0] < _ACCOUNT_TTL:
            return cached[1]
    account = (
        WeChatAccount.objects.for_org(org_id)
        .filter(kind=WeChatAccountKind.MINI_PROGRAM)
        .order_by("pk")
        .first()
    )
    with _accounts_lock:
        _accounts[org_id] = (time.monotonic(), account)
    return account


# contact id -> (when, openid or ""): chat is hot (hundreds of messages a second in a big
# room), one look-up per viewer a minute is enough.
_openids: dict[tuple[int, int], tuple[float, str]] = {}
_OPENIDS_MAX = 50_000


def _openid(account: WeChatAccount, contact_id: int) -> str:
    key = (account.pk, contact_id)
    with _accounts_lock:
        cached = _openids.get(key)
    if cached and time.monotonic() - cached[0] < _ACCOUNT_TTL:
        return cached[1]
    openid = _openid_from_db(account, contact_id)
    with _accounts_lock:
        if len(_openids) >= _OPENIDS_MAX:
            _openids.clear()
        _openids[key] = (time.monotonic(), openid)
    return openid


def _openid_from_db(account: WeChatAccount, contact_id: int) -> str:
    encrypted = (
        ContactIdentity.objects.for_org(account.org_id)
        .filter(contact_id=contact_id, kind=IdentityKind.OPENID, app_id=account.appid)
        .values_list("value_encrypted", flat=True)
        .first()
    )
    return pii.decrypt(encrypted) if encrypted else ""


def _cache_key(appid: str, scene: int, text: str) -> str:
    digest = hashlib.sha256(text.encode()).hexdigest()
    return f"{settings.WECHAT_CACHE_PREFIX}:msgsec:{appid}:{scene}:{digest}"


def msg_sec_check(*, account: WeChatAccount, openid: str, text: str, scene: int = 2) -> str:
    """WeChat's verdict on ``text`` by this mini-program user: pass, review or risky."""
    key = _cache_key(account.appid, scene, text)
    cached = cache.get(key)
    if cached in VERDICTS:
        return cached
    client = mp_client(account)
    try:
        answer = client.post(
            "wxa/msg_sec_check",
            data={"content": text, "version": 2, "scene": scene, "openid": openid},
            api_base_url=client.base,
        )
    except (WeChatClientException, requests.RequestException) as exc:
        log.warning("msgSecCheck unavailable for %s: %s", account.appid, exc)
        return "pass"
    verdict = (answer.get("result") or {}).get("suggest", "pass")
    if verdict not in VERDICTS:
        verdict = "pass"
    cache.set(key, verdict, VERDICT_TTL)
    return verdict


def text_content_check(*, org_id: int, contact_id: int, text: str, scene: str) -> str:
    account = _mini_program(org_id)
    if account is None:
        return "pass"
    openid = _openid(account, contact_id)
    if not openid:
        return "pass"  # not a mini-program viewer: WeChat cannot check for them
    return msg_sec_check(
        account=account, openid=openid, text=text, scene=WECHAT_SCENES.get(scene, 2)
    )


def forget_accounts() -> None:
    with _accounts_lock:
        _accounts.clear()
        _openids.clear()
