"""The coupon claim fast path's own answers (livecommerce/fastpath.py).

``POST /api/v1/coupons/{id}/claim`` is served by an ASGI route that the top-level router
(qianmian.asgi.application → core.asgi.Router) places in front of Django's handler, so the
DRF view at the same URL only runs when the route is bypassed. The contract tests elsewhere
drive the DRF view through Django's test client; these drive the real ASGI application the
way uvicorn hands it a request, and compare each refusal with what the DRF view (Django's
ASGI handler, the router's fallback) answers to the very same request.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import pytest
from asgiref.sync import async_to_sync
from django.core import signing
from django.utils import translation
from django.utils.datastructures import CaseInsensitiveMapping

from core.tokens import issue_staff_token, issue_viewer_token
from livecommerce.models import CouponClaim
from tests.core.test_doors import assert_security_headers
from tests.factories import ContactFactory, RoomFactory
from tests.livecommerce.factories import CouponFactory

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass
class Answer:
    status: int
    body: dict
    headers: dict

    @property
    def code(self) -> str:
        return self.body.get("code", "")


def _call(
    app, path: str, *, token: str = "", body: bytes = b"", chunks: int = 1, extra=()
) -> Answer:
    """One HTTP request through an ASGI app, as a server hands it over (body in ``chunks``,
    ``extra`` headers as (name, value) byte pairs)."""
    headers = [(b"host", b"testserver"), (b"content-type", b"application/json"), *extra]
    if token:
        headers.append((b"authorization", f"Token {token}".encode()))
    headers.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    size = max(1, -(-len(body) // chunks))
    parts = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    messages = [
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
        for i, part in enumerate(parts)
    ]
    sent: list[dict] = []

    async def receive():
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)  # the client stays connected
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    async def serve():
        await asyncio.wait_for(app(scope, receive, send), timeout=30)

    # async_to_sync from the test's thread: Django's thread-sensitive code (the DRF view, the
    # database claim) runs on this thread and its connection, as under a real server's
    # per-request handling, and no connection is left open in a worker thread.
    async_to_sync(serve)()
    start = next(m for m in sent if m["type"] == "http.response.start")
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Answer(
        status=start["status"],
        body=json.loads(payload) if payload else {},
        headers=CaseInsensitiveMapping({k.decode(): v.decode() for k, v in start["headers"]}),
    )


@pytest.fixture(autouse=True)
def _no_language_left_active():
    """A server starts each request with no language active (the default). A test-client
    request of an earlier test leaves its language active on this thread (LocaleMiddleware
    activates, never deactivates), and the fast path, which has no LocaleMiddleware, would
    answer in it while the view beside it negotiates afresh."""
    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture
def asgi():
    """(the application uvicorn serves, Django's handler behind its router)."""
    from qianmian.asgi import application, django_app

    return application, django_app


# What Django adds to an answer that is about its content or its request, not its security.
PER_ANSWER = {"content-type", "content-length", "content-language", "vary", "allow",
              "x-request-id"}  # fmt: skip


def _both(asgi, path: str, **kwargs) -> tuple[Answer, Answer]:
    """The same request to the fast path and to the DRF view behind it. Every security
    header the view's answer carries (Django's middleware) is on the fast path's, alike."""
    application, django_app = asgi
    fast = _call(application, path, **kwargs)
    drf = _call(django_app, path, **kwargs)
    security = {k.lower(): v for k, v in drf.headers.items() if k.lower() not in PER_ANSWER}
    assert {k: fast.headers.get(k) for k in security} == security, (fast.status, drf.status)
    assert_security_headers(fast.headers, (fast.status, fast.code))
    return fast, drf


def _expired_viewer_token(contact, monkeypatch, settings) -> str:
    signed_at = time.time() - settings.VIEWER_TOKEN_MAX_AGE - 60
    with monkeypatch.context() as patch:
        patch.setattr(signing.time, "time", lambda: signed_at)
        return issue_viewer_token(org_id=contact.org_id, contact_id=contact.pk, device="d")


@pytest.fixture
def setup(acme, other_org, host_alice):
    room = RoomFactory(org=acme, streamer=host_alice.profile)
    viewer = ContactFactory(org=acme)
    token = issue_viewer_token(org_id=acme.pk, contact_id=viewer.pk, device="dev-1")
    return {"room": room, "viewer": viewer, "token": token, "host": host_alice}


def _path(coupon) -> str:
    return f"/api/v1/coupons/{coupon.pk}/claim"


def test_the_fast_path_is_what_answers_at_that_url(asgi, setup):
    """The router sends the claim to the fast path: the DRF view adds headers the fast path
    never sends (Django's middleware), so the two are told apart by their answers."""
    coupon = CouponFactory(room=setup["room"], released=True)
    fast = _call(asgi[0], _path(coupon), token=setup["token"])
    assert fast.status == 201
    assert "x-request-id" not in fast.headers and fast.headers["cache-control"] == "no-store"
    assert_security_headers(fast.headers, fast.status)
    drf = _call(asgi[1], _path(coupon), token=setup["token"])
    assert (drf.status, drf.code) == (409, "limit_reached")
    assert "x-request-id" in drf.headers


def test_no_token_is_401_on_both(asgi, setup):
    coupon = CouponFactory(room=setup["room"], released=True)
    fast, drf = _both(asgi, _path(coupon))
    assert (fast.status, fast.code) == (401, "not_authenticated")
    assert (drf.status, drf.code) == (fast.status, fast.code)
    assert not CouponClaim.unscoped.exists()


def test_a_forged_token_is_401_on_both(asgi, setup):
    coupon = CouponFactory(room=setup["room"], released=True)
    fast, drf = _both(asgi, _path(coupon), token=setup["token"][:-3] + "xyz")
    assert (fast.status, fast.code) == (401, "not_authenticated")
    assert (drf.status, drf.code) == (fast.status, fast.code)


def test_an_expired_token_is_401_on_both(asgi, setup, monkeypatch, settings):
    coupon = CouponFactory(room=setup["room"], released=True)
    token = _expired_viewer_token(setup["viewer"], monkeypatch, settings)
    fast, drf = _both(asgi, _path(coupon), token=token)
    assert (fast.status, fast.code) == (401, "not_authenticated")
    assert (drf.status, drf.code) == (fast.status, fast.code)
    assert not CouponClaim.unscoped.exists()


def test_a_staff_token_is_403_on_both(asgi, setup):
    coupon = CouponFactory(room=setup["room"], released=True)
    staff = issue_staff_token(membership=setup["host"].membership)
    fast, drf = _both(asgi, _path(coupon), token=staff)
    assert (fast.status, fast.code) == (403, "permission_denied")
    assert (drf.status, drf.code) == (fast.status, fast.code)


def test_another_organisations_coupon_is_404_on_both(asgi, setup, other_org):
    coupon = CouponFactory(room=setup["room"], released=True)
    outsider = ContactFactory(org=other_org)
    token = issue_viewer_token(org_id=other_org.pk, contact_id=outsider.pk, device="d")
    fast, drf = _both(asgi, _path(coupon), token=token)
    assert (fast.status, fast.code) == (404, "not_found")
    assert (drf.status, drf.code) == (fast.status, fast.code)
    unknown = f"/api/v1/coupons/{coupon.pk + 1000}/claim"
    fast, drf = _both(asgi, unknown, token=setup["token"])
    assert (fast.status, fast.code) == (drf.status, drf.code) == (404, "not_found")
    assert not CouponClaim.unscoped.exists()


@pytest.mark.parametrize(
    "body",
    [
        b'{"clip": "abc"}',
        b'{"clip": 0}',
        b'{"clip": -3}',
        b'{"clip": 99999999999999999999}',
        b'{"clip": 1.5}',
        b'{"clip": "1.5"}',
        b'{"clip": true}',
        b'{"clip": [1]}',
    ],
    ids=["text", "zero", "negative", "too big", "fraction", "fraction text", "boolean", "list"],
)
def test_a_bad_body_is_400_naming_the_field_on_both(asgi, setup, body):
    coupon = CouponFactory(room=setup["room"], released=True)
    fast, drf = _both(asgi, _path(coupon), token=setup["token"], body=body)
    assert (fast.status, fast.code) == (400, "invalid")
    assert (drf.status, drf.code) == (fast.status, fast.code)
    assert set(fast.body["fields"]) == set(drf.body["fields"]) == {"clip"}
    assert not CouponClaim.unscoped.exists()


def test_fields_the_view_does_not_take_are_refused_alike_on_both(asgi, setup, other_org):
    """A mass-assigned ``contact`` or ``org`` is refused by name (the view's strict input),
    never ignored into a claim."""
    coupon = CouponFactory(room=setup["room"], released=True)
    body = json.dumps({"clip": 1, "contact": 1, "org": other_org.pk}).encode()
    fast, drf = _both(asgi, _path(coupon), token=setup["token"], body=body)
    assert (fast.status, fast.code) == (drf.status, drf.code) == (400, "invalid")
    assert fast.body == drf.body
    assert set(fast.body["fields"]) == {"contact", "org"}
    assert not CouponClaim.unscoped.exists()


def test_a_failure_answers_503_with_the_security_headers(asgi, setup, monkeypatch):
    from livecommerce.services import coupons

    async def broken(**kwargs):
        raise ConnectionError("database gone")

    monkeypatch.setattr(coupons, "acoupon_claim", broken)
    coupon = CouponFactory(room=setup["room"], released=True)
    fast = _call(asgi[0], _path(coupon), token=setup["token"])
    assert (fast.status, fast.code) == (503, "unavailable")
    assert_security_headers(fast.headers, fast.status)


def test_hsts_is_sent_over_https_only_on_both(asgi, setup, settings):
    """Behind the TLS proxy (SECURE_PROXY_SSL_HEADER) Django adds HSTS; so does the fast
    path, by Django's own rule for whether the request was secure."""
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    coupon = CouponFactory(room=setup["room"], released=True)
    https = ((b"x-forwarded-proto", b"https"),)
    fast, drf = _both(asgi, _path(coupon), token=setup["token"], extra=https)
    assert fast.status == 201
    assert fast.headers["strict-transport-security"] == "max-age=3600"
    fast, drf = _both(asgi, _path(coupon), token=setup["token"])
    assert fast.status == drf.status == 409
    assert "strict-transport-security" not in fast.headers


def test_with_hsts_the_fast_path_builds_no_request_and_sends_djangos_headers(
    asgi, setup, settings, monkeypatch
):
    """With HSTS configured the fast path decides "over HTTPS?" from the scope alone: no
    Django request object per answer, every security header of the DRF view's answer
    (``_both``), HSTS over HTTPS and none over plain HTTP."""
    from livecommerce import fastpath

    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    def no_request(*args, **kwargs):
        raise AssertionError("the fast path built a Django request")

    monkeypatch.setattr(fastpath, "ASGIRequest", no_request)
    coupon = CouponFactory(room=setup["room"], released=True)
    https = ((b"x-forwarded-proto", b"https"),)
    fast, drf = _both(asgi, _path(coupon), token=setup["token"], extra=https)
    assert fast.status == 201
    assert fast.headers["strict-transport-security"] == "max-age=3600"
    fast, drf = _both(asgi, _path(coupon), token=setup["token"])
    assert fast.status == drf.status == 409
    assert "strict-transport-security" not in fast.headers


@pytest.mark.parametrize(
    ("proxy", "scheme", "headers"),
    [
        (None, "http", []),
        (None, "https", []),
        (None, None, [(b"x-forwarded-proto", b"https")]),
        (("HTTP_X_FORWARDED_PROTO", "https"), "http", [(b"x-forwarded-proto", b"https")]),
        (("HTTP_X_FORWARDED_PROTO", "https"), "https", [(b"x-forwarded-proto", b"http")]),
        (("HTTP_X_FORWARDED_PROTO", "https"), "https", []),
        (("HTTP_X_FORWARDED_PROTO", "https"), "http", [(b"x-forwarded-proto", b" https , http")]),
        (("HTTP_X_FORWARDED_PROTO", "https"), "http", [(b"x-forwarded-proto", b"http, https")]),
        (
            ("HTTP_X_FORWARDED_PROTO", "https"),
            "http",
            [(b"x-forwarded-proto", b"https"), (b"x-forwarded-proto", b"http")],
        ),
        (("HTTP_X_FORWARDED_PROTO", "https"), "http", [(b"x_forwarded_proto", b"https")]),
        (("HTTP_X_FORWARDED_PROTO", "https"), "http", [(b"X-Forwarded-Proto", b"https")]),
        (("HTTP_X_FORWARDED_SSL", "on"), "http", [(b"x-forwarded-ssl", b"on")]),
        (("CONTENT_TYPE", "https"), "http", [(b"content-type", b"https")]),
    ],
)
def test_is_secure_is_djangos_rule(settings, proxy, scheme, headers):
    import io

    from django.core.handlers.asgi import ASGIRequest

    from livecommerce.fastpath import is_secure

    settings.SECURE_PROXY_SSL_HEADER = proxy
    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    if scheme:
        scope["scheme"] = scheme
    assert is_secure(scope) == ASGIRequest(scope, io.BytesIO()).is_secure()


def test_a_body_that_is_not_json_is_400_on_both(asgi, setup):
    coupon = CouponFactory(room=setup["room"], released=True)
    fast, drf = _both(asgi, _path(coupon), token=setup["token"], body=b"{not json")
    assert fast.status == drf.status == 400
    assert not CouponClaim.unscoped.exists()


def test_an_oversized_body_is_refused_without_a_claim(asgi, setup):
    coupon = CouponFactory(room=setup["room"], released=True)
    body = json.dumps({"clip": 1, "pad": "x" * 5000}).encode()
    fast = _call(asgi[0], _path(coupon), token=setup["token"], body=body, chunks=3)
    assert (fast.status, fast.code) == (400, "invalid")
    assert not CouponClaim.unscoped.exists()


def test_a_coupon_not_released_is_403_on_both(asgi, setup):
    coupon = CouponFactory(room=setup["room"], released_at=None)
    fast, drf = _both(asgi, _path(coupon), token=setup["token"])
    assert (fast.status, fast.code) == (403, "coupon_not_released")
    assert (drf.status, drf.code) == (fast.status, fast.code)
    assert fast.body["message"] == drf.body["message"]


def test_an_expired_coupon_is_refused_alike_on_both(asgi, setup):
    from datetime import timedelta

    from django.utils import timezone

    coupon = CouponFactory(
        room=setup["room"], released=True, valid_until=timezone.now() - timedelta(minutes=1)
    )
    fast, drf = _both(asgi, _path(coupon), token=setup["token"])
    assert fast.status in (403, 409, 410)
    assert (drf.status, drf.code) == (fast.status, fast.code)
    assert not CouponClaim.unscoped.exists()


def test_sold_out_and_limit_reached_are_409_on_both(asgi, setup, acme):
    coupon = CouponFactory(room=setup["room"], released=True, stock=1)
    first = _call(asgi[0], _path(coupon), token=setup["token"])
    assert first.status == 201
    fast, drf = _both(asgi, _path(coupon), token=setup["token"])
    assert (fast.status, fast.code) == (409, "limit_reached")
    assert (drf.status, drf.code) == (fast.status, fast.code)
    other = ContactFactory(org=acme)
    token = issue_viewer_token(org_id=acme.pk, contact_id=other.pk, device="dev-2")
    fast, drf = _both(asgi, _path(coupon), token=token)
    assert (fast.status, fast.code) == (409, "sold_out")
    assert (drf.status, drf.code) == (fast.status, fast.code)
    assert fast.body["message"] == drf.body["message"]
    assert CouponClaim.unscoped.filter(coupon=coupon).count() == 1
