import time

import pytest
from django.core import signing
from django.test import override_settings

from core.tokens import InvalidToken, issue_viewer_token, parse_token, parse_token_memoised


@pytest.mark.django_db
class TestStaffSignIn:
    def test_valid_credentials_give_a_token_that_calls_the_api(self, anon, host_alice):
        response = anon.post(
            "/api/v1/auth/token", {"username": "alice", "password": "pw-123456"}, format="json"
        )
        assert response.status_code == 200
        assert response.json()["role"] == "streamer"
        anon.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
        me = anon.get("/api/v1/me")
        assert me.status_code == 200
        assert me.json()["username"] == "alice"
        assert me.json()["org"] == "acme"

    def test_wrong_password_is_a_400_with_the_error_shape(self, anon, host_alice):
        response = anon.post(
            "/api/v1/auth/token", {"username": "alice", "password": "nope"}, format="json"
        )
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_credentials"

    def test_missing_fields_name_each_field(self, anon):
        response = anon.post("/api/v1/auth/token", {}, format="json")
        body = response.json()
        assert response.status_code == 400
        assert body["code"] == "invalid"
        assert set(body["fields"]) == {"username", "password"}

    def test_bad_json_is_a_400_not_a_500(self, anon):
        response = anon.generic(
            "POST", "/api/v1/auth/token", "{bad json", content_type="application/json"
        )
        assert response.status_code == 400
        assert response.json()["code"] == "bad_request"

    def test_logout_revokes_every_token(self, host_alice):
        client = host_alice.client()
        assert client.post("/api/v1/auth/logout").status_code == 204
        response = client.get("/api/v1/me")
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"

    def test_unknown_authorization_scheme_is_refused(self, anon):
        anon.credentials(HTTP_AUTHORIZATION="Basic abc")
        assert anon.get("/api/v1/me").status_code == 401


@pytest.mark.django_db
class TestViewerTokens:
    def test_guest_session_creates_a_contact_and_a_token(self, anon, acme):
        response = anon.post(
            "/api/v1/viewer/session", {"org": "acme", "guest_name": "小王"}, format="json"
        )
        assert response.status_code == 201
        body = response.json()
        claims = parse_token(body["token"])
        assert claims.org_id == acme.pk
        assert claims.contact_id == body["contact_id"]

    def test_same_guest_id_returns_the_same_contact(self, anon, acme):
        first = anon.post(
            "/api/v1/viewer/session", {"org": "acme", "guest_name": "小王"}, format="json"
        ).json()
        again = anon.post(
            "/api/v1/viewer/session",
            {"org": "acme", "guest_name": "小王", "guest_id": first["guest_id"]},
            format="json",
        ).json()
        assert again["contact_id"] == first["contact_id"]

    def test_unknown_org_is_a_404(self, anon, acme):
        response = anon.post(
            "/api/v1/viewer/session", {"org": "nope", "guest_name": "x"}, format="json"
        )
        assert response.status_code == 404

    def test_org_without_guests_refuses_guest_sessions(self, anon, acme):
        acme.allow_guest_viewers = False
        acme.save()
        response = anon.post(
            "/api/v1/viewer/session", {"org": "acme", "guest_name": "x"}, format="json"
        )
        assert response.status_code == 403

    def test_missing_name_is_a_field_error(self, anon, acme):
        response = anon.post("/api/v1/viewer/session", {"org": "acme"}, format="json")
        assert response.status_code == 400
        assert "guest_name" in response.json()["fields"]

    def test_viewer_token_cannot_call_staff_endpoints(self, viewer_dan):
        client = viewer_dan.client()
        for path in ["/api/v1/me", "/api/v1/rooms", "/api/v1/products"]:
            response = client.get(path)
            assert response.status_code == 403, path
            assert response.json()["code"] == "permission_denied"

    def test_tampered_viewer_token_is_refused(self, viewer_dan, anon):
        payload, sig = viewer_dan.token.rsplit(":", 1)
        forged = payload + ":" + ("A" if sig[0] != "A" else "B") + sig[1:]
        with pytest.raises(InvalidToken):
            parse_token(forged)
        anon.credentials(HTTP_AUTHORIZATION=f"Token {forged}")
        assert anon.get("/api/v1/rooms").status_code == 401

    def test_viewer_token_with_swapped_contact_is_refused(self, acme, anon):
        token = issue_viewer_token(org_id=acme.pk, contact_id=1, device="d")
        body = token[2:].split(":")[0]
        data = signing.b64_decode(body.lstrip(".").encode())
        assert data  # the payload is only encoded, never trusted without the signature
        tampered = token.replace(
            body, signing.b64_encode(data.replace(b'"c":1', b'"c":2')).decode()
        )
        with pytest.raises(InvalidToken):
            parse_token(tampered)

    def test_expired_viewer_token_is_refused(self, acme, anon):
        token = issue_viewer_token(org_id=acme.pk, contact_id=1, device="d")
        with override_settings(VIEWER_TOKEN_MAX_AGE=1):
            time.sleep(2.1)
            with pytest.raises(InvalidToken):
                parse_token(token)
            anon.credentials(HTTP_AUTHORIZATION=f"Token {token}")
            assert anon.get("/api/v1/rooms").status_code == 401


def test_a_memoised_token_is_answered_from_memory_until_the_moment_it_expires(settings):
    import time_machine

    token = issue_viewer_token(org_id=1, contact_id=2, device="d")
    claims = parse_token_memoised(token)
    assert parse_token_memoised(token) is claims  # the second join/claim: from memory
    with time_machine.travel(time.time() + settings.VIEWER_TOKEN_MAX_AGE - 5, tick=False):
        assert parse_token_memoised(token) is claims
    expired = time_machine.travel(time.time() + settings.VIEWER_TOKEN_MAX_AGE + 5, tick=False)
    with expired, pytest.raises(InvalidToken):
        parse_token_memoised(token)
    with pytest.raises(InvalidToken):
        parse_token_memoised(token[:-2] + "xx")
