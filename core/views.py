from django.conf import settings
from django.http import Http404, HttpResponse
from django.shortcuts import render

from core.metrics import render as render_metrics
from core.ratelimit import client_ip


def home(request):
    """Landing page linking the product's pages and the API docs."""
    return render(request, "home.html")


def metrics(request):
    """Prometheus exposition (core.metrics) for the addresses in METRICS_ALLOWED_IPS."""

    if client_ip(request) not in settings.METRICS_ALLOWED_IPS:
        raise Http404
    body, content_type = render_metrics()
    return HttpResponse(body, content_type=content_type)
