import time

from django.conf import settings
from django.core.signals import setting_changed
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string

from core import logs
from core.metrics import HTTP_REQUESTS, HTTP_SECONDS

# The middleware of settings.MIDDLEWARE that put security headers on every answer. Answers
# made in front of Django's handler (the ASGI fast paths, livecommerce/fastpath.py) take
# theirs from security_headers(), which runs these same classes on a probe response, so the
# values (and any header a Django upgrade or a setting adds) can never drift apart.
SECURITY_HEADER_MIDDLEWARE = (
    "django.middleware.security.SecurityMiddleware",
    "core.middleware.ContentSecurityPolicyMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
)

_security_headers: dict[tuple[bool, str], tuple[tuple[bytes, bytes], ...]] = {}


class _ProbeRequest(HttpRequest):
    def __init__(self, *, secure: bool):
        super().__init__()
        self._secure = secure

    def _get_scheme(self) -> str:
        return "https" if self._secure else "http"


def security_headers(
    *, secure: bool, content_type: str = "application/json"
) -> tuple[tuple[bytes, bytes], ...]:
    """The headers Django's middleware adds to an answer of ``content_type`` (lower-case
    ASGI name/value pairs), for a request over HTTPS or not (HSTS is sent only over HTTPS).
    Computed once per settings: cleared when a test overrides a setting."""
    key = (secure, content_type)
    cached = _security_headers.get(key)
    if cached is not None:
        return cached
    request = _ProbeRequest(secure=secure)
    response = HttpResponse(content_type=content_type)
    bare = set(response.headers)
    # Responses travel back through the middleware in reverse order (Django's handler).
    for path in reversed(settings.MIDDLEWARE):
        if path not in SECURITY_HEADER_MIDDLEWARE:
            continue
        middleware = import_string(path)(lambda request, answer=response: answer)
        if hasattr(middleware, "process_response"):
            # Only the answer side: process_request would redirect (SECURE_SSL_REDIRECT).
            response = middleware.process_response(request, response)
        else:
            response = middleware(request)
    cached = tuple(
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in response.headers.items()
        if name not in bare
    )
    _security_headers[key] = cached
    return cached


def _forget_security_headers(**kwargs) -> None:
    _security_headers.clear()


setting_changed.connect(_forget_security_headers, dispatch_uid="core.security_headers")


class ContentSecurityPolicyMiddleware:
    """A strict CSP on every HTML response: chat text and names can never run as script."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        content_type = response.get("Content-Type", "")
        if content_type.startswith("text/html") and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = settings.CSP_POLICY
        response.setdefault("X-Content-Type-Options", "nosniff")
        return response


class RequestIdMiddleware:
    """Bind a request id for the logs (core.logs) and return it as ``X-Request-ID``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = logs.request_id_from(
            request.META.get("HTTP_X_REQUEST_ID", ""), trusted=settings.TRUSTED_PROXY_COUNT > 0
        )
        request.request_id = request_id
        token = logs.bind_request_id(request_id)
        try:
            response = self.get_response(request)
        finally:
            logs.unbind_request_id(token)
        response["X-Request-ID"] = request_id
        return response


class MetricsMiddleware:
    """Count and time every request Django answers (core.metrics), by route pattern — a
    bounded label set, unlike the path."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = (match.route or match.view_name) if match else "unmatched"
        HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        HTTP_SECONDS.labels(request.method, route).observe(time.perf_counter() - started)
        return response
