"""No phone number or openid in clear in the logs or in error bodies (issue 18).

Drives the flows that handle them — the phone code request and its verification (right,
wrong, malformed), WeChat H5 sign-in through the stub (accepted, refused, WeChat down), the
mini-program phone binding and an erroring request — with every logger captured at DEBUG,
then scans every record (message, arguments, exception text) and every response body.
"""

from __future__ import annotations

import logging
import re

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from campaigns.demo import seed_org
from campaigns.models import ConsoleSms
from wechat.stub import StubUser

pytestmark = pytest.mark.django_db

PHONE = "13812345678"
OTHER_PHONE = "13987654321"
OPENID = "oQmLogScanOpenid0001"
OPENID_REFUSED = "oQmLogScanOpenid0002"
SECRETS = (PHONE, OTHER_PHONE, OPENID, OPENID_REFUSED)


@pytest.fixture
def every_log(caplog):
    """caplog's handler on every logger, including those that do not propagate."""
    caplog.set_level(logging.DEBUG)
    attached = []
    for logger in [logging.getLogger(n) for n in list(logging.root.manager.loggerDict)]:
        if isinstance(logger, logging.Logger) and not logger.propagate:
            logger.addHandler(caplog.handler)
            attached.append((logger, logger.level))
            logger.setLevel(logging.DEBUG)
    yield caplog
    for logger, level in attached:
        logger.removeHandler(caplog.handler)
        logger.setLevel(level)


def _record_text(record: logging.LogRecord) -> str:
    parts = [str(record.msg), repr(record.args)]
    try:
        parts.append(record.getMessage())
    except (TypeError, ValueError) as exc:  # a bad format string is not this test's subject
        parts.append(repr(exc))
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    parts.extend(str(v) for k, v in vars(record).items() if k not in logging.LogRecord.__dict__)
    return "\n".join(parts)


def test_no_phone_or_openid_in_clear_in_logs_or_error_bodies(
    acme, oa, wechat_stub, every_log, django_capture_on_commit_callbacks
):
    seed_org(acme)
    cache.clear()
    bodies: list[tuple[str, int, str]] = []

    def keep(label, response):
        bodies.append((label, response.status_code, response.content.decode("utf-8", "replace")))
        return response

    # WeChat H5 sign-in: accepted, then refused, then WeChat down.
    wechat_stub.register_code("log-code-1", StubUser(openid=OPENID, nickname="日志"))
    anon = APIClient()
    signed_in = keep(
        "oauth",
        anon.post(
            "/api/v1/viewer/session", {"org": "acme", "wechat_code": "log-code-1"}, format="json"
        ),
    )
    assert signed_in.status_code == 201, signed_in.content
    viewer = APIClient()
    viewer.credentials(HTTP_AUTHORIZATION=f"Token {signed_in.json()['token']}")
    wechat_stub.fail("sns/oauth2/access_token", 40163, "code been used " + OPENID_REFUSED)
    keep(
        "oauth refused",
        anon.post("/api/v1/viewer/session", {"org": "acme", "wechat_code": "used"}, format="json"),
    )
    wechat_stub.fail("sns/oauth2/access_token", 0, http_status=502)
    keep(
        "oauth down",
        anon.post("/api/v1/viewer/session", {"org": "acme", "wechat_code": "x"}, format="json"),
    )

    # Phone binding by SMS code: requested, guessed wrong, malformed, then bound.
    with django_capture_on_commit_callbacks(execute=True):
        requested = keep(
            "code", viewer.post("/api/v1/viewer/phone/code", {"phone": PHONE}, format="json")
        )
    assert requested.status_code == 202, requested.content
    keep(
        "wrong code",
        viewer.post(
            "/api/v1/viewer/phone/verify", {"phone": PHONE, "code": "000000"}, format="json"
        ),
    )
    keep(
        "malformed",
        viewer.post("/api/v1/viewer/phone/code", {"phone": PHONE + "9"}, format="json"),
    )
    keep(
        "no code for this phone",
        viewer.post(
            "/api/v1/viewer/phone/verify", {"phone": OTHER_PHONE, "code": "123456"}, format="json"
        ),
    )
    text = ConsoleSms.unscoped.order_by("id").last().text
    code = re.search(r"验证码(\d{6})", text).group(1)
    bound = keep(
        "verify",
        viewer.post("/api/v1/viewer/phone/verify", {"phone": PHONE, "code": code}, format="json"),
    )
    assert bound.status_code == 200, bound.content

    # Rate limit reached with a phone in the body (429), and a bad JSON body (400).
    for _ in range(6):
        keep("again", viewer.post("/api/v1/viewer/phone/code", {"phone": PHONE}, format="json"))
    keep(
        "bad json",
        viewer.post(
            "/api/v1/viewer/phone/code",
            data=f'{{"phone": "{PHONE}"',
            content_type="application/json",
        ),
    )

    assert len(every_log.records) > 0
    leaks = [
        (record.name, record.levelname, secret, _record_text(record)[:300])
        for record in every_log.records
        for secret in SECRETS
        if secret in _record_text(record)
    ]
    assert leaks == []
    error_bodies = [
        (label, status, secret)
        for label, status, body in bodies
        for secret in SECRETS
        if status >= 400 and secret in body
    ]
    assert error_bodies == []
