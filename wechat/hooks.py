"""``GET/POST /hooks/wechat/{account_id}``: the official-account callback endpoint.

A thin adapter around ``wechat.callbacks``: the signature is checked before
anything else; after that WeChat always gets ``success`` or a valid reply (a 5xx would make
WeChat retry and finally tell the follower the account is out of service).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from wechat.callbacks import (
    SUCCESS,
    CallbackRefused,
    SignedQuery,
    decode_push,
    encode_reply,
    verify_fresh,
    verify_signature,
    wechat_message_handle,
)
from wechat.models import WeChatAccount, WeChatAccountKind

log = logging.getLogger(__name__)


def _text(body: str, status: int = 200) -> HttpResponse:
    return HttpResponse(body, status=status, content_type="text/plain; charset=utf-8")


@csrf_exempt
@require_http_methods(["GET", "POST"])
def wechat_callback(request, account_id: int):
    account = (
        WeChatAccount.unscoped.filter(
            pk=account_id, kind=WeChatAccountKind.OFFICIAL, is_active=True
        )
        .select_related("org")
        .first()
    )
    if account is None:
        return _text("not found", 404)
    q = request.GET
    query = SignedQuery(
        signature=q.get("signature", ""),
        timestamp=q.get("timestamp", ""),
        nonce=q.get("nonce", ""),
        msg_signature=q.get("msg_signature", ""),
        encrypt_type=q.get("encrypt_type", ""),
    )
    try:
        verify_signature(account=account, query=query)
    except CallbackRefused as refused:
        return _text(refused.reason, refused.status)
    if request.method == "GET":
        # URL verification when the callback is configured in WeChat's console.
        return _text(q.get("echostr", ""))
    declared = request.META.get("CONTENT_LENGTH") or "0"
    limit = settings.WECHAT_CALLBACK_MAX_BYTES
    if not declared.isdigit() or int(declared) > limit:
        return _text("body too large", 413)
    body = request.read(limit + 1)
    try:
        verify_fresh(account=account, query=query, body=body)
        message = decode_push(account=account, query=query, body=body)
    except CallbackRefused as refused:
        log.warning("wechat callback refused (account %s): %s", account.pk, refused.reason)
        return _text(refused.reason, refused.status)
    try:
        reply = wechat_message_handle(account=account, message=message)
    except Exception:
        log.exception("wechat callback failed (account %s)", account.pk)
        return _text(SUCCESS)
    if reply is None:
        return _text(SUCCESS)
    return HttpResponse(
        encode_reply(account=account, query=query, reply_xml=reply),
        content_type="application/xml; charset=utf-8",
    )
