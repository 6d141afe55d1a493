import pytest
from django.test import RequestFactory, override_settings

from core.ratelimit import client_ip


@pytest.mark.django_db
def test_auth_token_is_rate_limited_per_ip(anon, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "auth_token_ip": "3/60"}
    codes = [
        anon.post(
            "/api/v1/auth/token", {"username": "x", "password": "y"}, format="json"
        ).status_code
        for _ in range(5)
    ]
    assert codes[:3] == [400, 400, 400]
    assert codes[3:] == [429, 429]
    body = anon.post("/api/v1/auth/token", {"username": "x", "password": "y"}, format="json").json()
    assert body["code"] == "rate_limited"


def test_client_ip_ignores_forwarded_for_unless_a_proxy_is_trusted():
    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="1.1.1.1, 9.9.9.9"
    )
    assert client_ip(request) == "10.0.0.1"
    with override_settings(TRUSTED_PROXY_COUNT=1):
        assert (
            client_ip(request) == "9.9.9.9"
        )  # the address our nginx saw, not the spoofable left part
