"""The coupon claim served in front of Django's handler (see core.asgi and docs/rooms.md, "Coupon claims").

Django 5.2's ASGI handler starts a thread per request, capping even an empty view near
1,100 req/s on two cores; this route verifies the signed viewer token (no database query)
and awaits the one claim service (``acoupon_claim``) directly. Same contract as the DRF
view at the same path: 201 receipt, 409 ``sold_out`` / ``limit_reached``, 403 not
released, 404 other organisation, 401 without a viewer token.
"""

from __future__ import annotations

import gc
import json
import logging
import re

from django.utils.translation import gettext as _

from core.errors import DomainError, error_body
from core.tokens import InvalidToken, ViewerClaims, parse_token_memoised

log = logging.getLogger(__name__)

MAX_BODY = 4096

# Everything imported so far (Django, apps, URLconf) lives as long as the process: moving
# it out of the collector's generations keeps full collections — tens of ms on a loaded
# box, paid by whichever claims are in flight — from walking it again and again.
gc.freeze()

_encoded_errors: dict[tuple[int, str, str], tuple[list, bytes]] = {}


def _encode(status: int, body: dict) -> tuple[list, bytes]:
    payload = json.dumps(body, ensure_ascii=False).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"),
    ]
    return headers, payload


async def _respond(send, status: int, body: dict) -> None:
    headers, payload = _encode(status, body)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _respond_error(send, exc: DomainError) -> None:
    # In a burst nearly every answer is the same sold_out / limit_reached body: encode once.
    key = (exc.status_code, exc.code, exc.message)
    encoded = None if exc.fields else _encoded_errors.get(key)
    if encoded is None:
        encoded = _encode(exc.status_code, error_body(exc.code, exc.message, exc.fields))
        if not exc.fields and len(_encoded_errors) < 1000:
            _encoded_errors[key] = encoded
    headers, payload = encoded
    await send({"type": "http.response.start", "status": exc.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _read_body(receive) -> bytes | None:
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if len(body) > MAX_BODY:
            return b"\x00"
        if not message.get("more_body"):
            return body


# DRF's IntegerField rule (the view at the same URL): "7", 7 and 7.0 are 7; 1.5, "1.5" and
# true are refused. A plain int() took 1.5 and true as clip 1.
_DECIMAL_TAIL = re.compile(r"\.0*\s*$")


def _integer(value) -> int:
    if isinstance(value, str) and len(value) > 1000:
        raise ValueError
    return int(_DECIMAL_TAIL.sub("", str(value)))


def _token(scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            parts = value.decode("latin-1").split()
            if len(parts) == 2 and parts[0].lower() in {"token", "bearer"}:
                return parts[1]
    return ""


async def coupon_claim_app(scope, receive, send) -> None:
    from livecommerce.services.coupons import acoupon_claim

    body = await _read_body(receive)
    if body is None:
        return
    try:
        claims = parse_token_memoised(_token(scope))
    except InvalidToken:
        await _respond(send, 401, error_body("not_authenticated", _("令牌无效或已过期")))
        return
    if not isinstance(claims, ViewerClaims):
        await _respond(send, 403, error_body("permission_denied", _("仅观众可以领券")))
        return
    clip_id = None
    if body.strip():
        try:
            data = json.loads(body)
            clip = data.get("clip") if isinstance(data, dict) else None
            clip_id = _integer(clip) if clip is not None else None
            if clip_id is not None and not 0 < clip_id < 2**62:
                raise ValueError
        except (ValueError, TypeError):
            fields = {"clip": [_("请输入合法的整数")]}
            await _respond(send, 400, error_body("invalid", _("参数有误"), fields))
            return
    try:
        coupon_id = int(scope["path_kwargs"]["coupon_id"])
        receipt = await acoupon_claim(
            org_id=claims.org_id,
            coupon_id=coupon_id,
            contact_id=claims.contact_id,
            clip_id=clip_id,
        )
    except DomainError as exc:
        await _respond_error(send, exc)
        return
    except Exception:  # a 500 is a bug, but it must still answer JSON
        log.exception("coupon claim failed")
        await _respond(send, 503, error_body("unavailable", _("服务繁忙，请重试")))
        return
    await _respond(send, 201, receipt.as_dict())
