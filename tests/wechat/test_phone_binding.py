"""Phone binding by SMS one-time code: limits, expiry, attempts, no enumeration."""

import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from campaigns.demo import seed_org
from campaigns.models import ConsoleSms
from core import pii
from core.tokens import parse_token
from crm.models import ContactIdentity
from tests.factories import ContactFactory
from wechat.models import PhoneOtp

pytestmark = pytest.mark.django_db

PHONE = "13812345678"


_capture = None


@pytest.fixture(autouse=True)
def _sms(acme, django_capture_on_commit_callbacks):
    """The org's console SMS account + service templates; outbox sends run at commit."""
    global _capture
    seed_org(acme)
    cache.clear()
    _capture = django_capture_on_commit_callbacks
    yield
    cache.clear()


def inbox() -> list[str]:
    return list(ConsoleSms.unscoped.order_by("id").values_list("text", flat=True))


def last_code() -> str:
    return re.search(r"验证码(\d{6})", inbox()[-1]).group(1)


def request_code(viewer, phone=PHONE):
    with _capture(execute=True):
        return viewer.client().post("/api/v1/viewer/phone/code", {"phone": phone}, format="json")


def verify(viewer, code, phone=PHONE):
    return viewer.client().post(
        "/api/v1/viewer/phone/verify", {"phone": phone, "code": code}, format="json"
    )


def test_code_by_sms_binds_the_phone_to_the_viewer(acme, viewer_dan):
    response = request_code(viewer_dan)
    assert response.status_code == 202
    assert response.json() == {"sent": True, "expires_in": 300}
    (sms,) = ConsoleSms.objects.for_org(acme)
    assert sms.phone_masked == "138****5678"
    code = last_code()
    # our own record keeps the code hashed only
    assert code not in str(list(PhoneOtp.unscoped.values()))

    bound = verify(viewer_dan, code)
    assert bound.status_code == 200, bound.json()
    assert bound.json()["contact_id"] == viewer_dan.contact.pk
    assert parse_token(bound.json()["token"]).contact_id == viewer_dan.contact.pk
    identity = ContactIdentity.objects.for_org(acme).get(kind="phone")
    assert identity.contact_id == viewer_dan.contact.pk
    assert identity.value_hash == pii.lookup_hash("phone", "13812345678")
    # single use
    assert verify(viewer_dan, code).status_code == 400


def test_five_wrong_guesses_burn_the_code(acme, viewer_dan):
    request_code(viewer_dan)
    code = last_code()
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(5):
        assert verify(viewer_dan, wrong).json()["code"] == "code_invalid"
    assert verify(viewer_dan, code).status_code == 400
    assert not ContactIdentity.objects.for_org(acme).filter(kind="phone").exists()


def test_code_expires_after_five_minutes(acme, viewer_dan):
    request_code(viewer_dan)
    PhoneOtp.objects.for_org(acme).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert verify(viewer_dan, last_code()).status_code == 400


def test_a_new_code_replaces_the_old_one(acme, viewer_dan):
    request_code(viewer_dan)
    old = last_code()
    request_code(viewer_dan)
    new = last_code()
    if old != new:
        assert verify(viewer_dan, old).status_code == 400
    assert verify(viewer_dan, new).status_code == 200


def test_per_phone_limit(acme, viewer_dan, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "otp_send_phone": "3/3600"}
    answers = [request_code(viewer_dan).status_code for _ in range(4)]
    assert answers == [202, 202, 202, 429]
    assert len(inbox()) == 3
    assert request_code(viewer_dan, phone="13912345678").status_code == 202


def test_per_ip_limit_spans_phones(acme, viewer_dan, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "otp_send_ip": "2/3600"}
    phones = ["13812345678", "13912345678", "13712345678"]
    assert [request_code(viewer_dan, phone=p).status_code for p in phones] == [202, 202, 429]


def test_per_org_limit(acme, viewer_dan, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "otp_send_org": "1/3600"}
    other_viewer_phone = "13912345678"
    assert request_code(viewer_dan).status_code == 202
    assert request_code(viewer_dan, phone=other_viewer_phone).status_code == 429


def test_no_account_enumeration(acme, viewer_dan):
    someone = ContactFactory(org=acme)
    ContactIdentity.objects.for_org(acme).create(
        org=acme,
        contact=someone,
        kind="phone",
        value_hash=pii.lookup_hash("phone", "13912345678"),
        value_encrypted=pii.encrypt("13912345678"),
    )
    taken = request_code(viewer_dan, phone="13912345678")
    free = request_code(viewer_dan, phone="13712345678")
    assert (taken.status_code, taken.json()) == (free.status_code, free.json())


@pytest.mark.parametrize("phone", ["123", "abcdefghijk", "+1 202 555 0100", "1381234567"])
def test_bad_phones_are_400(viewer_dan, phone):
    response = request_code(viewer_dan, phone=phone)
    assert response.status_code == 400 and "phone" in response.json()["fields"]


def test_staff_and_anonymous_cannot_use_it(sales_bob, anon):
    assert sales_bob.client().post("/api/v1/viewer/phone/code", {"phone": PHONE}).status_code == 403
    assert anon.post("/api/v1/viewer/phone/code", {"phone": PHONE}).status_code == 401


def test_org_without_an_sms_template_gets_a_clear_503(acme, viewer_dan):
    from campaigns.models import MessageTemplate

    MessageTemplate.objects.for_org(acme).filter(key="otp").delete()
    response = request_code(viewer_dan)
    assert response.status_code == 503 and response.json()["code"] == "sms_unavailable"
    assert not PhoneOtp.objects.for_org(acme).exists()


def test_binding_a_phone_someone_else_holds_merges_them_through_one_id(acme, viewer_dan):
    earlier = ContactFactory(org=acme, nickname="电话里的人")
    ContactIdentity.objects.for_org(acme).create(
        org=acme,
        contact=earlier,
        kind="phone",
        value_hash=pii.lookup_hash("phone", PHONE),
        value_encrypted=pii.encrypt(PHONE),
    )
    request_code(viewer_dan)
    bound = verify(viewer_dan, last_code())
    assert bound.status_code == 200
    assert bound.json()["contact_id"] == earlier.pk  # the surviving record
    assert parse_token(bound.json()["token"]).contact_id == earlier.pk
    viewer_dan.contact.refresh_from_db()
    assert viewer_dan.contact.merged_into_id == earlier.pk
