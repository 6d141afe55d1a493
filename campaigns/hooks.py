"""Provider callbacks (receipts, uplink replies) and tracked short links.

Each SMS provider account has a ``webhook_token``; the callback URL configured at the
provider is ``/hooks/sms/<provider>/receipts?token=<webhook_token>`` (the providers do not
sign SMS callbacks). A forged or missing token is refused before any business logic runs.
The console backend's hooks also accept a staff token of the organisation (``Authorization:
Token …``) so the demo can post ``{"phone", "text"}`` / ``{"delivery", "status"}`` by hand.
"""

from __future__ import annotations

import hmac
import json

from django.db import transaction
from django.db.models import F
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from rest_framework.exceptions import AuthenticationFailed

from campaigns.models import Delivery, Provider, ProviderAccount, ShortLink
from campaigns.services import receipts
from core.auth import authenticate_token
from crm.models import Contact
from crm.services.events import event_record

MAX_BODY = 1024 * 1024
PROVIDERS = (Provider.CONSOLE, Provider.TENCENT, Provider.ALIYUN)


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"code": code, "message": message, "fields": {}}, status=status)


def _account(request, provider: str) -> ProviderAccount | None:
    token = request.GET.get("token") or request.headers.get("X-Qm-Webhook-Token") or ""
    if token:
        account = ProviderAccount.unscoped.filter(provider=provider, webhook_token=token).first()
        if account and hmac.compare_digest(account.webhook_token, token):
            return account
    if provider == Provider.CONSOLE and request.headers.get("Authorization"):
        try:
            raw = request.headers["Authorization"].split()[-1]
            _user, claims = authenticate_token(raw)
        except (AuthenticationFailed, IndexError):
            return None
        org_id = getattr(claims, "org_id", None)
        if org_id and not hasattr(claims, "contact_id"):
            return (
                ProviderAccount.unscoped.filter(org_id=org_id, provider=Provider.CONSOLE)
                .order_by("-is_default", "id")
                .first()
            )
    return None


def _body(request):
    if len(request.body) > MAX_BODY:
        raise ValueError("body too large")
    data = json.loads(request.body or b"null")
    return data


def _ack(provider: str) -> JsonResponse:
    if provider == Provider.TENCENT:
        return JsonResponse({"result": 0, "errmsg": "OK"})
    if provider == Provider.ALIYUN:
        return JsonResponse({"code": 0, "msg": "成功"})
    return JsonResponse({"ok": True})


def _guard(request, provider: str):
    if provider not in PROVIDERS:
        raise Http404
    account = _account(request, provider)
    if account is None:
        return None, _error(403, "invalid_webhook_token", "回调令牌无效")
    try:
        data = _body(request)
    except (ValueError, UnicodeDecodeError):
        return None, _error(400, "bad_request", "请求体不是有效的 JSON")
    return (account, data), None


@csrf_exempt
@require_POST
def sms_receipts(request, provider: str):
    guarded, error = _guard(request, provider)
    if error:
        return error
    account, data = guarded
    items = data if isinstance(data, list) else [data]
    settled = 0
    with transaction.atomic():
        for item in items:
            if not isinstance(item, dict):
                return _error(400, "bad_request", "回执格式错误")
            if provider == Provider.TENCENT:
                settled += receipts.receipt_apply(
                    org=account.org,
                    phone=str(item.get("mobile", "")),
                    delivered=item.get("report_status") == "SUCCESS",
                    provider_message_id=str(item.get("sid", "")),
                    batch_key=str(item.get("ext", "")),
                    error=str(item.get("errmsg", "")),
                )
            elif provider == Provider.ALIYUN:
                settled += receipts.receipt_apply(
                    org=account.org,
                    phone=str(item.get("phone_number", "")),
                    delivered=bool(item.get("success")),
                    provider_message_id=str(item.get("biz_id", "")),
                    batch_key=str(item.get("out_id", "")),
                    error=str(item.get("err_code", "")),
                )
            else:
                try:
                    delivery_id = int(item.get("delivery"))
                except (TypeError, ValueError):
                    return _error(400, "bad_request", "delivery 必须是发送记录ID")
                status = item.get("status")
                if status not in ("delivered", "failed"):
                    return _error(400, "bad_request", "status 必须是 delivered 或 failed")
                settled += receipts.receipt_apply(
                    org=account.org, delivery_id=delivery_id, delivered=status == "delivered"
                )
    response = _ack(provider)
    response["X-Settled"] = str(settled)
    return response


@csrf_exempt
@require_POST
def sms_replies(request, provider: str):
    guarded, error = _guard(request, provider)
    if error:
        return error
    account, data = guarded
    items = data if isinstance(data, list) else [data]
    with transaction.atomic():
        for item in items:
            if not isinstance(item, dict):
                return _error(400, "bad_request", "上行格式错误")
            if provider == Provider.TENCENT:
                phone, text = item.get("mobile"), item.get("text")
                sign = item.get("sign") or account.sign_name
            elif provider == Provider.ALIYUN:
                phone, text = item.get("phone_number"), item.get("content")
                sign = item.get("sign_name") or account.sign_name
            else:
                phone, text, sign = item.get("phone"), item.get("text"), account.sign_name
            if not isinstance(phone, str | int) or not isinstance(text, str) or not str(phone):
                return _error(400, "bad_request", "需要 phone 和 text")
            receipts.sms_reply_record(
                org=account.org,
                provider=provider,
                phone=str(phone)[-11:],
                text=text,
                sign_name=str(sign)[:32],
            )
    return _ack(provider)


@require_GET
def short_link(request, code: str):
    """Redirect to the target and record the click once per delivery."""
    link = ShortLink.unscoped.select_related("delivery").filter(code=code).first()
    if link is None:
        raise Http404
    now = timezone.now()
    with transaction.atomic():
        ShortLink.unscoped.filter(pk=link.pk).update(clicks=F("clicks") + 1)
        first = Delivery.unscoped.filter(pk=link.delivery_id, clicked_at__isnull=True).update(
            clicked_at=now
        )
        delivery = link.delivery
        if first and delivery.contact_id:
            contact = Contact.unscoped.filter(pk=delivery.contact_id).first()
            if contact:
                event_record(
                    contact=contact,
                    type="message.clicked",
                    props={"delivery": delivery.pk, "campaign": delivery.campaign_id},
                    key=f"clicked:{delivery.pk}",
                )
    return HttpResponseRedirect(link.target_url)
