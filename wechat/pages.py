"""The H5 OAuth redirect flow (browser navigations, not API calls). See login.py."""

from __future__ import annotations

from django.http import HttpResponseRedirect
from django.views.decorators.http import require_GET

from core.errors import DomainError, NotFound, error_response
from core.models import Organization
from wechat.login import safe_next, wechat_oauth_begin, wechat_oauth_finish


def _error(request, exc: DomainError):
    """These are browser navigations: a page in the product's style (JSON if asked for)."""
    return error_response(request, exc.status_code, exc)


@require_GET
def oauth_start(request):
    """``/wechat/oauth/start?org=demo&scope=snsapi_base|snsapi_userinfo&next=/live/1/``"""

    org = Organization.objects.filter(slug=request.GET.get("org", ""), is_active=True).first()
    if org is None:
        return error_response(request, 404)
    account = request.GET.get("account", "")
    try:
        url = wechat_oauth_begin(
            session=request.session,
            request=request,
            org=org,
            scope=request.GET.get("scope", "snsapi_base"),
            next_url=request.GET.get("next", "/"),
            account_id=int(account) if account.isdigit() else None,
        )
    except NotFound:
        # No official account: back to the page, which carries on as a guest.
        return HttpResponseRedirect(safe_next(request.GET.get("next", "/")))
    except DomainError as exc:
        return _error(request, exc)
    return HttpResponseRedirect(url)


@require_GET
def oauth_callback(request):
    """WeChat sends the browser back here with ``code`` and our ``state``."""

    try:
        url = wechat_oauth_finish(
            session=request.session,
            code=request.GET.get("code", "")[:128],
            state=request.GET.get("state", "")[:64],
        )
    except DomainError as exc:
        return _error(request, exc)
    return HttpResponseRedirect(url)
