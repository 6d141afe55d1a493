"""Sign-in lockout (issue 18): per account and per address, atomic cache counters, audited."""

import pytest
from rest_framework.test import APIClient

from core.models import AuditLog

pytestmark = pytest.mark.django_db


def sign_in(username, password, ip="10.0.0.1"):
    return APIClient(REMOTE_ADDR=ip).post(
        "/api/v1/auth/token", {"username": username, "password": password}, format="json"
    )


def test_an_account_locks_after_repeated_failures_even_with_the_right_password(
    admin_carol, settings
):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "auth_fail_account": "3/900"}
    for n in range(3):  # from three addresses: the account's own counter
        assert sign_in("carol", "wrong", ip=f"10.0.0.{n + 1}").status_code == 400
    locked = sign_in("carol", "pw-123456", ip="10.0.0.9")
    assert locked.status_code == 429 and locked.json()["code"] == "sign_in_locked"
    assert sign_in("bob-unrelated", "x", ip="10.0.0.9").status_code == 400  # others go on
    actions = list(
        AuditLog.objects.for_org(admin_carol.membership.org_id)
        .order_by("id")
        .values_list("action", "ip", "target_id")
    )
    uid = str(admin_carol.user.pk)
    assert actions == [
        ("auth.sign_in_failed", "10.0.0.1", uid),
        ("auth.sign_in_failed", "10.0.0.2", uid),
        ("auth.sign_in_locked", "10.0.0.3", uid),
    ]


def test_an_address_locks_across_accounts(admin_carol, sales_bob, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "auth_fail_ip": "4/900"}
    for n in range(4):
        assert sign_in(f"nobody{n}", "wrong").status_code == 400
    assert sign_in("bob", "pw-123456").status_code == 429
    assert sign_in("bob", "pw-123456", ip="10.0.0.2").status_code == 200


def test_a_good_sign_in_below_the_limit_still_works(admin_carol):
    assert sign_in("carol", "wrong").status_code == 400
    response = sign_in("carol", "pw-123456")
    assert response.status_code == 200 and response.json()["role"] == "admin"


def test_sign_out_revokes_the_token(admin_carol):
    token = sign_in("carol", "pw-123456").json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/me").status_code == 200
    assert client.post("/api/v1/auth/logout").status_code == 204
    assert client.get("/api/v1/me").status_code == 401
