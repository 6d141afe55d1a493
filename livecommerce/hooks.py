"""Media-server callbacks: /hooks/media/nginx-rtmp/{event} and /hooks/media/tencent.

Authentication comes first (shared secret / signature): a forged callback is refused
before any business logic runs.
"""

from __future__ import annotations

import json

from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from core.errors import DomainError
from livecommerce.media import callbacks, nginx_rtmp, tencent

MAX_BODY = 64 * 1024


@csrf_exempt
@require_POST
def nginx_rtmp_hook(request, event: str):
    if not nginx_rtmp.secret_ok(request.GET.get("secret", "")):
        return HttpResponse("forbidden", status=403, content_type="text/plain")
    try:
        nginx_rtmp.handle(event, request.POST.dict())
    except (callbacks.Rejected, DomainError) as exc:
        return HttpResponse(f"rejected: {exc}", status=403, content_type="text/plain")
    return HttpResponse("ok", content_type="text/plain")


@csrf_exempt
@require_POST
def tencent_hook(request):
    if len(request.body) > MAX_BODY:
        return JsonResponse({"code": 413}, status=413)
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return JsonResponse({"code": 400}, status=400)
    if not isinstance(body, dict) or not tencent.signature_ok(body):
        return JsonResponse({"code": 403}, status=403)
    try:
        tencent.handle(body)
    except (callbacks.Rejected, DomainError):
        return JsonResponse({"code": 409}, status=409)
    return JsonResponse({"code": 0})
