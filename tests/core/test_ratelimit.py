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


def test_client_ip_is_none_for_a_unix_socket_peer_without_a_proxy_header():
    # uvicorn on a Unix socket gives Django no peer address: NULL in audit rows, never a
    # made-up string that an inet column would refuse.
    assert client_ip(RequestFactory().get("/", REMOTE_ADDR="")) is None
    with override_settings(TRUSTED_PROXY_COUNT=1):
        request = RequestFactory().get("/", REMOTE_ADDR="", HTTP_X_FORWARDED_FOR="203.0.113.9")
        assert client_ip(request) == "203.0.113.9"
        # Fewer entries than trusted hops: fall back to the peer, here unknown.
        assert client_ip(RequestFactory().get("/", REMOTE_ADDR="")) is None


def test_client_ip_refuses_a_forwarded_value_that_is_not_an_address():
    with override_settings(TRUSTED_PROXY_COUNT=1):
        request = RequestFactory().get("/", REMOTE_ADDR="", HTTP_X_FORWARDED_FOR="1.1.1.1, evil")
        assert client_ip(request) is None
        request = RequestFactory().get("/", HTTP_X_FORWARDED_FOR="2001:db8::1")
        assert client_ip(request) == "2001:db8::1"


@pytest.mark.django_db
def test_crm_audit_rows_record_the_address_nginx_forwarded(acme, admin_carol, settings):
    from core.models import AuditLog
    from crm.services.contacts import contact_get_or_create_by_identity

    lead, _ = contact_get_or_create_by_identity(
        org=acme, kind="phone", value="13812345678", defaults={"nickname": "Lead"}
    )
    settings.TRUSTED_PROXY_COUNT = 1
    response = admin_carol.client().get(
        f"/api/v1/leads/{lead.pk}",
        HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.7",
        REMOTE_ADDR="",
    )
    assert response.status_code == 200
    audit = AuditLog.objects.for_org(acme).get(action="pii.reveal")
    assert audit.ip == "198.51.100.7"  # nginx's entry, not the client's spoofed one
