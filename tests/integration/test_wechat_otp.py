"""Phone-binding limits under 200 parallel requests: a real uvicorn process, PostgreSQL,
Redis counters."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.core.cache import cache

from campaigns.demo import seed_org
from campaigns.models import ConsoleSms
from core.tokens import issue_viewer_token
from crm.models import ContactIdentity
from tests.factories import ContactFactory, OrganizationFactory
from tests.integration.wechat_server import app_server
from wechat.models import PhoneOtp
from wechat.otp import phone_code_send

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PARALLEL = 200


@pytest.fixture
def viewer():
    cache.clear()
    org = OrganizationFactory(slug="it-otp")
    seed_org(org)  # console SMS account + the service "otp" template
    contact = ContactFactory(org=org)
    token = issue_viewer_token(org_id=org.pk, contact_id=contact.pk, device="d")
    yield org, contact, {"Authorization": f"Token {token}"}
    cache.clear()


def burst(url: str, headers: dict, bodies: list[dict]) -> list[int]:
    """Fire every body at once (a barrier releases them together); return the statuses."""
    barrier = threading.Barrier(len(bodies))

    def one(body):
        barrier.wait()
        return requests.post(url, json=body, headers=headers, timeout=60).status_code

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(one, bodies))


def test_per_phone_limit_holds_under_200_parallel_sends(viewer):
    org, _contact, headers = viewer
    with app_server(RATE_OTP_SEND_PHONE="5/3600", RATE_OTP_SEND_IP="100000/3600") as url:
        statuses = burst(
            f"{url}/api/v1/viewer/phone/code", headers, [{"phone": "13812345678"}] * PARALLEL
        )
    assert statuses.count(202) == 5
    assert statuses.count(429) == PARALLEL - 5
    assert PhoneOtp.objects.for_org(org).count() == 5
    assert ConsoleSms.objects.for_org(org).count() == 5  # five texts actually went out


def test_per_ip_limit_holds_under_200_parallel_sends_to_different_phones(viewer):
    org, _contact, headers = viewer
    phones = [{"phone": f"1391234{i:04d}"} for i in range(PARALLEL)]
    with app_server(RATE_OTP_SEND_IP="20/3600") as url:
        statuses = burst(f"{url}/api/v1/viewer/phone/code", headers, phones)
    assert statuses.count(202) == 20
    assert statuses.count(429) == PARALLEL - 20
    assert PhoneOtp.objects.for_org(org).count() == 20


def test_per_org_limit_holds_under_200_parallel_sends(viewer):
    org, _contact, headers = viewer
    phones = [{"phone": f"1371234{i:04d}"} for i in range(PARALLEL)]
    with app_server(RATE_OTP_SEND_ORG="30/3600", RATE_OTP_SEND_IP="100000/3600") as url:
        statuses = burst(f"{url}/api/v1/viewer/phone/code", headers, phones)
    assert statuses.count(202) == 30
    assert PhoneOtp.objects.for_org(org).count() == 30


def test_five_attempts_hold_under_200_parallel_guesses(viewer):
    org, contact, headers = viewer
    phone_code_send(contact=contact, phone="13812345678", ip="10.0.0.1")
    text = ConsoleSms.objects.for_org(org).get().text
    code = re.search(r"验证码(\d{6})", text).group(1)
    wrong = [f"{(int(code) + i) % 10**6:06d}" for i in range(1, PARALLEL)]
    bodies = [{"phone": "13812345678", "code": c} for c in [*wrong, code]]
    with app_server(RATE_OTP_VERIFY_IP="100000/600") as url:
        statuses = burst(f"{url}/api/v1/viewer/phone/verify", headers, bodies)
    otp = PhoneOtp.objects.for_org(org).get()
    assert statuses.count(200) <= 1
    if statuses.count(200):
        # The right code may win a race before five wrong ones land: the code is used up then,
        # and the guesses after it spend no attempt.
        assert otp.consumed_at is not None and 1 <= otp.attempts <= 5
    else:
        assert otp.attempts == 5 and otp.consumed_at is None
    assert statuses.count(200) + statuses.count(400) == PARALLEL
    bound = ContactIdentity.objects.for_org(org).filter(kind="phone", contact=contact).count()
    assert bound == statuses.count(200)
