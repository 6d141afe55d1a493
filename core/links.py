"""Absolute URLs: the one place that decides which address a link points at.

Inside a request a link follows the address the browser used (its scheme and host, the host
checked against ALLOWED_HOSTS), so ``make run PORT=8123`` or a phone on the LAN gets links it
can open. Behind TRUSTED_PROXY_COUNT > 0 reverse proxies, X-Forwarded-Proto and
X-Forwarded-Host are honoured (the host validated like any other); with no trusted proxy
they are client-supplied and ignored. Outside a request (tasks, SMS, reminders, management
commands) links use SITE_URL, which ``make run`` derives from HOST and PORT.

    site_url(request)                          "https://live.acme.cn"
    absolute_url("/live/3/", request=request)  "https://live.acme.cn/live/3/"
    absolute_reverse("live-room", args=[3], query={"invite": "ab12"})
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest
from django.http.request import split_domain_port, validate_host
from django.urls import reverse

__all__ = ["absolute_reverse", "absolute_url", "is_own_url", "site_url"]


def site_url(request: HttpRequest | None = None) -> str:
    """``scheme://host[:port]`` of the address serving ``request``, else SITE_URL.

    Raises DisallowedHost (Django answers 400) for a host outside ALLOWED_HOSTS."""
    if request is None:
        return settings.SITE_URL.rstrip("/")
    return f"{_scheme(request)}://{_host(request)}"


def absolute_url(path: str, *, request: HttpRequest | None = None) -> str:
    """``path`` ("/live/3/?x=1") on the serving address; an absolute URL is returned as is
    (a CDN or an official-account QR is already absolute)."""
    if urlsplit(path).scheme:
        return path
    if not path.startswith("/"):
        path = "/" + path
    return site_url(request) + path


def absolute_reverse(
    viewname: str,
    *,
    args: list | tuple | None = None,
    kwargs: dict | None = None,
    query: dict | None = None,
    request: HttpRequest | None = None,
) -> str:
    """``reverse()`` made absolute, with an optional query string."""
    path = reverse(viewname, args=args, kwargs=kwargs)
    if query:
        path += "?" + urlencode(query)
    return absolute_url(path, request=request)


def is_own_url(url: str, *, request: HttpRequest | None = None) -> bool:
    """Whether ``url`` is on the serving address (same scheme and host:port)."""
    page = urlsplit(url)
    site = urlsplit(site_url(request))
    return (page.scheme, page.netloc.lower()) == (site.scheme, site.netloc.lower())


def _forwarded(request: HttpRequest, header: str) -> str:
    """The value our outermost trusted proxy set (proxies append: ``client, proxy1, …``);
    "" without trusted proxies, where the header is whatever the client sent."""
    hops = settings.TRUSTED_PROXY_COUNT
    if hops <= 0:
        return ""
    values = [v.strip() for v in request.META.get(header, "").split(",") if v.strip()]
    if not values:
        return ""
    return values[-hops] if len(values) >= hops else values[0]


def _scheme(request: HttpRequest) -> str:
    proto = _forwarded(request, "HTTP_X_FORWARDED_PROTO").lower()
    if proto in ("http", "https"):
        return proto
    return "https" if request.is_secure() else "http"


def _host(request: HttpRequest) -> str:
    forwarded = _forwarded(request, "HTTP_X_FORWARDED_HOST")
    if forwarded:
        domain, _port = split_domain_port(forwarded)
        allowed = settings.ALLOWED_HOSTS
        if settings.DEBUG and not allowed:
            allowed = [".localhost", "127.0.0.1", "[::1]"]
        if domain and validate_host(domain, allowed):
            return forwarded.lower()
        raise DisallowedHost(f"Invalid X-Forwarded-Host header: {forwarded!r}")
    # get_host() validates against ALLOWED_HOSTS (and reads X-Forwarded-Host itself only
    # when USE_X_FORWARDED_HOST is set, which we never do: the rule above replaces it).
    return request.get_host().lower()
