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
