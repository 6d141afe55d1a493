"""Every door checked, the ASGI side (issue 18): every WebSocket route of qianmian.routing
with every kind of caller (see test_doors.py), through a real uvicorn serving the project.
A route added to ``websocket_routes`` without a row in ``WS_DOORS`` fails the test; every
HTTP fast path in ``http_routes`` must shadow a resolver route that the door matrix checks.
"""

from __future__ import annotations

import re

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from core.models import Organization
from qianmian.routing import http_routes, websocket_routes
from tests.core.doors_table import DOORS
from tests.core.test_doors import CALLERS, FOREIGN, OWN, ROUTES, _fill, _org_world
from tests.livecommerce.hub_server import (  # noqa: F401 - hub_server_fixture is a fixture
    Client,
    hub_server_fixture,
    run,
)

pytestmark = pytest.mark.django_db(transaction=True)

# pattern -> answer per caller (anon viewer outsider streamer sales admin): "ok" (accepted,
# hello received) or the close code.
WS_DOORS = {
    r"/ws/rooms/(?P<room_id>[0-9]{1,18})/": "4401 ok 4404 ok ok ok",
    r"/ws/staff/": "4401 4401 ok ok ok ok",
}


@pytest.fixture(autouse=True)
def _sync_orm_in_tests(monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def test_the_table_covers_exactly_the_websocket_routes():
    assert set(WS_DOORS) == {pattern for pattern, _ in websocket_routes}


def test_every_http_fast_path_is_a_route_the_door_matrix_checks():
    for method, pattern, _ in http_routes:
        matched = [
            key
            for key, (route, _p) in ROUTES.items()
            if "<" in route and re.fullmatch(pattern, _fill(route, _any_ids(route)))
        ]
        assert matched, pattern
        assert all(method.lower() in DOORS[key] for key in matched), (pattern, matched)


def _any_ids(route: str) -> dict:
    return {"assignment_rule_id": 7} | dict.fromkeys(re.findall(r"<(?:\w+:)?(\w+)>", route), 7)


def test_every_websocket_door(hub_server):
    own = _org_world(Organization.objects.create(slug="doors-a", name=f"{OWN} org"), OWN)
    foreign = _org_world(
        Organization.objects.create(slug="doors-b", name=f"{FOREIGN} org"), FOREIGN
    )

    def token(name):
        if name == "anon":
            return ""
        if name == "outsider":
            return foreign["tokens"]["admin"]
        return own["tokens"][name]

    async def answer(url: str) -> tuple[str, str]:
        try:
            client = await Client.open(url, hello=False)
        except InvalidStatus as exc:
            return str(exc.response.status_code), ""
        try:
            first = await client.next(lambda e: True, timeout=5)
        except ConnectionClosed as exc:
            return str(exc.rcvd.code if exc.rcvd else None), ""
        await client.close()
        return ("ok" if first.get("type") == "hello" else str(first)), str(first)

    observed = {}
    for pattern, _ in websocket_routes:
        answers = []
        for name in CALLERS:
            path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: str(own["ids"][m.group(1)]), pattern)
            url = f"ws://127.0.0.1:{hub_server.port}{path}?token={token(name)}"
            status, hello = run(answer(url))
            answers.append(status)
            forbidden = OWN if name == "outsider" else FOREIGN
            assert forbidden not in hello, (pattern, name)
        observed[pattern] = " ".join(answers)
    assert observed == WS_DOORS
