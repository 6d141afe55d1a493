"""One error shape for the whole API: ``{"code", "message", "fields"}``.

Every exception that reaches DRF (validation, auth, parse, 404, Django ValidationError and
our own DomainError subclasses) is mapped here to a 4xx with that shape. A 500 is a bug.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

# The message of every 400 that names fields, from DRF's views and the ASGI fast paths alike.
INVALID_MESSAGE = _lazy("输入有误，请检查各字段")


class DomainError(Exception):
    """A business rule said no. Subclasses set code and status."""

    code = "invalid"
    status_code = status.HTTP_400_BAD_REQUEST
    default_message = ""

    def __init__(
        self, message: str | None = None, *, fields: dict | None = None, code: str | None = None
    ):
        self.message = message or str(self.default_message) or self.code
        self.fields = fields or {}
        if code:
            self.code = code
        super().__init__(self.message)


class Conflict(DomainError):
    code = "conflict"
    status_code = status.HTTP_409_CONFLICT


class Forbidden(DomainError):
    code = "forbidden"
    status_code = status.HTTP_403_FORBIDDEN


class NotFound(DomainError):
    code = "not_found"
    status_code = status.HTTP_404_NOT_FOUND


class RateLimited(DomainError):
    code = "rate_limited"
    status_code = status.HTTP_429_TOO_MANY_REQUESTS


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"code": code, "message": message, "fields": fields or {}}


def _flatten(detail) -> dict:
    """DRF's nested ErrorDetail structure → {"field": ["message", ...]} with plain strings."""
    if isinstance(detail, dict):
        return {str(k): _messages(v) for k, v in detail.items()}
    return {"non_field_errors": _messages(detail)}


def _messages(value):
    if isinstance(value, dict):
        return {str(k): _messages(v) for k, v in value.items()}
    if isinstance(value, list):
        if all(not isinstance(v, dict | list) for v in value):
            return [str(v) for v in value]
        return [_messages(v) for v in value]
    return [str(value)]


_CODES = {
    exceptions.ParseError: "bad_request",
    exceptions.AuthenticationFailed: "not_authenticated",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
}


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.message, exc.fields), status=exc.status_code)
    if isinstance(exc, OverflowError | DataError):
        # Safety net: a number no column can hold is bad input, not a server error. Input
        # serializers bound ids (core.fields.IdField) so this should not be reached.
        return Response(
            error_body("out_of_range", _("数值超出范围")), status=status.HTTP_400_BAD_REQUEST
        )
    if isinstance(exc, DjangoValidationError):
        fields = (
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
        exc = exceptions.ValidationError(fields)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(_("未找到"))
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body("invalid", str(INVALID_MESSAGE), _flatten(exc.detail))
        return response
    code = next((c for cls, c in _CODES.items() if isinstance(exc, cls)), "error")
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    message = str(detail) if not isinstance(detail, dict | list) else _("请求无效")
    response.data = error_body(code, message)
    return response


# Django's handlers for what no API view answered: JSON for API and hook callers, an HTML
# page in the product's style for a browser (``/live/999/`` is a page, not a payload).
_PAGES = {
    400: ("bad_request", _lazy("请求无效"), _lazy("这个请求无法处理，请检查链接是否完整。")),
    403: ("forbidden", _lazy("没有权限"), _lazy("你没有访问这个页面的权限。")),
    404: ("not_found", _lazy("页面不存在"), _lazy("链接可能已失效，或页面已被移除。")),
    500: ("server_error", _lazy("服务器开小差了"), _lazy("问题已记录，请稍后再试。")),
}
_JSON_MESSAGES = {
    400: _lazy("请求无效"),
    403: _lazy("没有权限"),
    404: _lazy("未找到"),
    500: _lazy("服务器错误"),
}


def wants_json(request) -> bool:
    """API and hook paths always get JSON; elsewhere a caller that asks for JSON and not
    HTML (``Accept: application/json``) does, and browsers get the page."""
    if request.path.startswith(("/api/", "/hooks/")):
        return True
    accept = request.META.get("HTTP_ACCEPT", "")
    return "json" in accept and "text/html" not in accept


def error_response(request, status_code: int, exc: DomainError | None = None):
    """The error for a browser (a page) or an API caller (the JSON shape); ``exc`` gives the
    code and message of a domain error raised by a page view (the WeChat OAuth flow)."""
    code, title, message = _PAGES.get(status_code) or _PAGES[500 if status_code >= 500 else 400]
    if exc is not None:
        code, message = exc.code, exc.message
    if wants_json(request):
        text = exc.message if exc is not None else str(_JSON_MESSAGES.get(status_code, message))
        return JsonResponse(error_body(code, text, exc.fields if exc else None), status=status_code)

    try:
        return render(
            request,
            "errors/error.html",
            {"status": status_code, "title": title, "message": message},
            status=status_code,
        )
    except Exception:  # noqa: BLE001 - the error page itself must never fail
        return HttpResponse(
            f"<!doctype html><meta charset=utf-8><title>{status_code}</title><h1>{title}</h1>",
            status=status_code,
        )


def handler_400(request, exception=None):
    return error_response(request, 400)


def handler_403(request, exception=None):
    return error_response(request, 403)


def handler_404(request, exception=None):
    return error_response(request, 404)


def handler_500(request):
    return error_response(request, 500)
