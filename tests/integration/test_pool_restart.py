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


def _health(base: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{base}/api/v1/health", timeout=15) as answer:  # noqa: S310
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as answer:
        return answer.code, json.loads(answer.read())


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
