"""The coupon claim served in front of Django's handler (see core.asgi and docs/rooms.md, "Coupon claims").

Django 5.2's ASGI handler starts a thread per request, capping even an empty view near
1,100 req/s on two cores; this route verifies the signed viewer token (no database query)
and awaits the one claim service (``acoupon_claim``) directly. Same contract as the DRF
view at the same path: 201 receipt, 409 ``sold_out`` / ``limit_reached``, 403 not
released, 404 other organisation, 401 without a viewer token.
"""

from __future__ import annotations

import gc
import io
import json
import logging
import re

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.utils.translation import gettext as _

from core.auth import TokenAuthentication
from core.errors import INVALID_MESSAGE, DomainError, error_body
from core.middleware import security_headers
from core.serializers import UNKNOWN
from core.tokens import InvalidToken, ViewerClaims, parse_token_memoised
from livecommerce.services import coupons

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
    ]
    return headers, payload


def _security(scope) -> tuple[tuple[bytes, bytes], ...]:
    """The security headers Django's middleware would add to this answer (one source:
    core.middleware.security_headers, computed once per settings). Whether the request came
    over HTTPS (HSTS) is Django's own rule, SECURE_PROXY_SSL_HEADER included, read only when
    it matters (``is_secure``)."""
    plain = security_headers(secure=False)
    over_tls = security_headers(secure=True)
    if plain == over_tls:
        return plain
    return over_tls if is_secure(scope) else plain


def is_secure(scope) -> bool:
    """``ASGIRequest(scope, …).is_secure()`` without building a request (it copies every
    header into META; with HSTS configured it ran on every answer): Django's
    ``HttpRequest.scheme`` — the proxy's header when SECURE_PROXY_SSL_HEADER names one and the
    request has it (first value of repeated ones, as ASGIRequest joins them with ","), else
    the ASGI scope's scheme (django/http/request.py, django/core/handlers/asgi.py)."""
    proxy = settings.SECURE_PROXY_SSL_HEADER
    if proxy:
        meta_name, secure_value = proxy
        if not meta_name.startswith("HTTP_"):
            # Not a plain request header (CONTENT_TYPE, a server variable): Django's request.
            return ASGIRequest(scope, io.BytesIO()).is_secure()
        values = [
            value
            for name, value in scope.get("headers", ())
            # ASGIRequest skips names with "_" (spoofing between "_" and "-").
            if b"_" not in name
            and "HTTP_" + name.decode("latin1").upper().replace("-", "_") == meta_name
        ]
        if values:
            first = values[0].decode("latin1").split(",", 1)[0]
            return first.strip() == secure_value
    return (scope.get("scheme") or "http") == "https"


# A 401 names the scheme to authenticate with (RFC 9110 §11.6.1), as the DRF view does.
_CHALLENGE = (b"www-authenticate", TokenAuthentication().authenticate_header(None).encode())


async def _respond(send, scope, status: int, body: dict) -> None:
    headers, payload = _encode(status, body)
    headers = [*headers, *_security(scope)]
    if status == 401:
        headers.append(_CHALLENGE)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _respond_error(send, scope, exc: DomainError) -> None:
    # In a burst nearly every answer is the same sold_out / limit_reached body: encode once.
    key = (exc.status_code, exc.code, exc.message)
    encoded = None if exc.fields else _encoded_errors.get(key)
    if encoded is None:
        encoded = _encode(exc.status_code, error_body(exc.code, exc.message, exc.fields))
        if not exc.fields and len(_encoded_errors) < 1000:
            _encoded_errors[key] = encoded
    headers, payload = encoded
    headers = [*headers, *_security(scope)]
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
    body = await _read_body(receive)
    if body is None:
        return
    try:
        claims = parse_token_memoised(_token(scope))
    except InvalidToken:
        await _respond(send, scope, 401, error_body("not_authenticated", _("令牌无效或已过期")))
        return
    if not isinstance(claims, ViewerClaims):
        await _respond(send, scope, 403, error_body("permission_denied", _("仅观众可以领券")))
        return
    clip_id = None
    if body.strip():
        fields = {}
        try:
            data = json.loads(body)
        except ValueError:
            data = None
            fields["clip"] = [_("请输入合法的整数")]
        if isinstance(data, dict):
            # The view's InputSerializer is strict (core/serializers.py): any other field,
            # e.g. a mass-assigned ``contact`` or ``org``, is refused, never ignored.
            fields |= {name: [str(UNKNOWN)] for name in data if name != "clip"}
            try:
                clip = data.get("clip")
                clip_id = _integer(clip) if clip is not None else None
                if clip_id is not None and not 0 < clip_id < 2**62:
                    raise ValueError
            except (ValueError, TypeError):
                fields["clip"] = [_("请输入合法的整数")]
        if fields:
            await _respond(send, scope, 400, error_body("invalid", str(INVALID_MESSAGE), fields))
            return
    try:
        coupon_id = int(scope["path_kwargs"]["coupon_id"])
        receipt = await coupons.acoupon_claim(
            org_id=claims.org_id,
            coupon_id=coupon_id,
            contact_id=claims.contact_id,
            clip_id=clip_id,
        )
    except DomainError as exc:
        await _respond_error(send, scope, exc)
        return
    except Exception:  # a 500 is a bug, but it must still answer JSON
        log.exception("coupon claim failed")
        await _respond(send, scope, 503, error_body("unavailable", _("服务繁忙，请重试")))
        return
    await _respond(send, scope, 201, receipt.as_dict())
