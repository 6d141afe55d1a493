from django.conf import settings


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
        from core import logs

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
        import time

        from core.metrics import HTTP_REQUESTS, HTTP_SECONDS

        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = (match.route or match.view_name) if match else "unmatched"
        HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        HTTP_SECONDS.labels(request.method, route).observe(time.perf_counter() - started)
        return response
