"""`make prod` for real: the runner on private PostgreSQL and Redis (never the machine's own),
driven through its nginx, then stopped with nothing left behind.

One layout serves the whole module (starting it costs migrations + seed + five processes),
so the tests run in file order and the shutdown test comes last.
"""

from __future__ import annotations

import asyncio
import shutil

import pytest

from tests.livecommerce.hub_server import Client
from tests.support.prod import ProdLayout
from tests.support.services import private_postgres, private_redis

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not shutil.which("nginx") and not __import__("os").path.exists(
        "/usr/sbin/nginx"), reason="nginx is installed by `make system-deps`"),
]  # fmt: skip

AUTH_BUDGET = 5


@pytest.fixture(scope="module")
def prod(tmp_path_factory):
    with private_postgres() as pg, private_redis() as redis:
        layout = ProdLayout(
            var_dir=tmp_path_factory.mktemp("prod") / "var",
            database_url=pg.url,
            redis_url=redis.url,
            RATE_AUTH_TOKEN_IP=f"{AUTH_BUDGET}/60",
        )
        try:
            layout.start()
            yield layout
        finally:
            layout.kill_everything()


@pytest.fixture(scope="module")
def demo(prod):
    """The seeded demo through the API: the host's token, the demo room started, a coupon."""
    status, body = prod.request(
        "POST", "/api/v1/auth/token", {"username": "host", "password": "demo12345"}
    )
    assert status == 200, body
    host = body["token"]
    status, rooms = prod.request("GET", "/api/v1/rooms", token=host)
    assert status == 200, rooms
    room = next(r for r in rooms["results"] if r["status"] in ("scheduled", "live"))
    if room["status"] == "scheduled":
        status, body = prod.request("POST", f"/api/v1/rooms/{room['id']}/start", token=host)
        assert status == 200, body
    status, coupons = prod.request("GET", f"/api/v1/rooms/{room['id']}/coupons", token=host)
    assert status == 200, coupons
    coupon = next(c for c in coupons if c["released_at"] and c["remaining"] > 0)
    return {"host": host, "room": room["id"], "coupon": coupon["id"]}


def _viewer(prod, name: str) -> str:
    status, body = prod.request(
        "POST", "/api/v1/viewer/session", {"org": "demo", "guest_name": name}
    )
    assert status == 201, body
    return body["token"]


def test_health_through_nginx_reports_every_part_it_really_uses(prod):
    status, body = prod.request("GET", "/api/v1/health")
    assert status == 200, body
    assert body == {
        "database": "ok",
        "cache": "ok",
        "hub": "ok",
        "claims": "ok",
        "send_limiter": "ok",
        "broker": "ok",
        "worker": "ok",
        "beat": "ok",
        "status": "ok",
    }
    print(f"make prod healthy after {prod.started_in:.1f} s")


def test_static_files_and_pages_come_through_nginx(prod):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", prod.port, timeout=10)
    conn.request("GET", "/static/vendor/hls.min.js")
    response = conn.getresponse()
    response.read()
    assert response.status == 200
    assert response.getheader("Server") == "nginx"  # nginx served it, not Django
    conn.request("GET", "/media/crm/jobs/anything.csv")
    response = conn.getresponse()
    response.read()
    assert response.status == 404  # lead exports never leave through nginx
    conn.close()
    assert prod.request("GET", "/")[0] == 200


def test_two_clients_behind_nginx_get_two_rate_limit_buckets(prod, demo):
    wrong = {"username": "nobody", "password": "wrong-password"}
    codes = [prod.request("POST", "/api/v1/auth/token", wrong)[0] for _ in range(AUTH_BUDGET)]
    # The demo fixture's sign-in spent one of 127.0.0.1's attempts.
    assert codes[-1] == 429 and 429 not in codes[: AUTH_BUDGET - 2], codes
    # A second client (another loopback address) has its own bucket...
    assert prod.request("POST", "/api/v1/auth/token", wrong, source="127.0.0.2")[0] == 400
    # ...and the first cannot leave its bucket by claiming another address itself.
    spoofed = {"X-Forwarded-For": "203.0.113.50"}
    assert prod.request("POST", "/api/v1/auth/token", wrong, headers=spoofed)[0] == 429


def test_a_chat_and_a_coupon_claim_go_through_nginx(prod, demo):
    room, port = demo["room"], prod.port
    dan, eve = _viewer(prod, "Dan"), _viewer(prod, "Eve")

    async def scenario():
        url = f"ws://127.0.0.1:{port}/ws/rooms/{room}/?token="
        speaker = await Client.open(url + dan)
        listener = await Client.open(url + eve)
        await speaker.send({"type": "chat", "text": "从nginx进来的弹幕"})
        event = await listener.next(lambda e: e.get("text") == "从nginx进来的弹幕", timeout=15)
        await speaker.close()
        await listener.close()
        return event

    event = asyncio.run(scenario())
    assert event["type"] == "chat" and event["seq"] > 0
    status, body = prod.request("POST", f"/api/v1/coupons/{demo['coupon']}/claim", {}, token=dan)
    assert status in (200, 201), body
    again = prod.request("POST", f"/api/v1/coupons/{demo['coupon']}/claim", {}, token=dan)
    assert again[0] == 409 or again[0] >= 400, again  # one per viewer
    status, state = prod.request("GET", f"/api/v1/rooms/{room}/state", token=eve)
    assert status == 200
    assert any(m["text"] == "从nginx进来的弹幕" for m in state["chat"])


def test_sigterm_stops_every_process_it_started(prod):
    code, left = prod.stop()
    assert code == 0, prod.tail()
    assert not left, f"left behind: {left}"
