"""A PostgreSQL restart under a running server: the pooled connections it cut are replaced
when next borrowed, so the first requests after the restart answer as before.

The server runs on the suite's own private PostgreSQL (tests/support/services.py), which
this test stops and starts; the machine's own PostgreSQL is never touched.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.support.servers import served_app
from tests.support.services import private_postgres

pytestmark = pytest.mark.integration


def _request(base: str, method: str, path: str, body=None, token: str = "") -> tuple[int, dict]:
    request = urllib.request.Request(  # noqa: S310 - the test's own server
        f"{base}{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"}
        | ({"Authorization": f"Token {token}"} if token else {}),
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as answer:  # noqa: S310
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as answer:
        return answer.code, json.loads(answer.read() or b"{}")


def _health(base: str) -> tuple[int, dict]:
    return _request(base, "GET", "/api/v1/health")


def test_the_first_requests_after_a_postgresql_restart_answer_200(tmp_path):
    """GET /api/v1/health runs a query on a pooled connection (the health report's
    ``database`` part; no table needed, so no migrations). The pool holds 2 connections
    (DB_POOL_MIN) that the restart cuts; each of the first requests after it borrows one."""
    with private_postgres() as pg:
        env = {
            "DATABASE_URL": pg.url,
            "DB_POOL_MIN": "2",
            "DB_POOL_MAX": "4",
            "DB_POOL_TIMEOUT": "3",
        }
        with served_app(tmp_path, env=env, seed=False, migrate=False) as base:
            for _ in range(4):  # every pooled connection has been used once
                assert _health(base)[0] == 200, _health(base)
            pg.stop()
            status, body = _health(base)
            assert status == 503 and body["database"].startswith("error"), body
            pg.start()
            answers = [_health(base) for _ in range(4)]
            assert [(status, body["database"]) for status, body in answers] == [(200, "ok")] * 4


def test_coupon_claims_on_the_pg_backend_answer_201_right_after_a_postgresql_restart(tmp_path):
    """The claims' own async pool (COUPON_CLAIM_BACKEND=pg, livecommerce/services/coupons/
    pool.py) holds 2 connections after the first claim; the restart cuts them. The next
    viewers' claims, through the fast path, are each granted: none answers 503."""
    with private_postgres() as pg:
        env = {"DATABASE_URL": pg.url, "COUPON_CLAIM_BACKEND": "pg", "DB_POOL_TIMEOUT": "3"}
        with served_app(tmp_path, env=env) as base:
            auth = {"username": "host", "password": "demo12345"}
            host = _request(base, "POST", "/api/v1/auth/token", auth)[1]["token"]
            rooms = _request(base, "GET", "/api/v1/rooms", token=host)[1]["results"]
            room = next(r for r in rooms if r["status"] in ("scheduled", "live"))
            if room["status"] == "scheduled":
                assert (
                    _request(base, "POST", f"/api/v1/rooms/{room['id']}/start", token=host)[0]
                    == 200
                )
            coupons = _request(base, "GET", f"/api/v1/rooms/{room['id']}/coupons", token=host)[1]
            coupon = next(c for c in coupons if c["released_at"] and c["remaining"] >= 5)

            def claim(name: str) -> int:
                session = {"org": "demo", "guest_name": name}
                viewer = _request(base, "POST", "/api/v1/viewer/session", session)[1]["token"]
                path = f"/api/v1/coupons/{coupon['id']}/claim"
                return _request(base, "POST", path, {}, token=viewer)[0]

            assert [claim("先到"), claim("再来")] == [201, 201]  # the pool holds 2 now
            pg.stop()
            pg.start()
            assert [claim(f"重启后{i}") for i in range(3)] == [201, 201, 201]
