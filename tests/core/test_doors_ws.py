"""Every door checked, the ASGI side (issue 18): every WebSocket route of qianmian.routing
with every kind of caller (see test_doors.py), through a real uvicorn serving the project.
A route added to ``websocket_routes`` without a row in ``WS_DOORS`` fails the test; every
HTTP fast path in ``http_routes`` must shadow a resolver route that the door matrix checks.
"""

from __future__ import annotations

import json
import re

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from core.models import Organization
from qianmian.asgi import application
from qianmian.routing import http_routes, websocket_routes
from tests.core.doors_table import DOORS
from tests.core.test_doors import (
    CALLERS,
    FOREIGN,
    OWN,
    ROUTES,
    _fill,
    _mass_assignment,
    _org_world,
    assert_security_headers,
)
from tests.livecommerce.hub_server import (  # noqa: F401 - hub_server_fixture is a fixture
    Client,
    hub_server_fixture,
    run,
)
from tests.livecommerce.test_coupon_fastpath import _call

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


def test_every_http_fast_path_answers_each_caller_as_the_door_matrix_says():
    """The door matrix drives Django's handler, which the fast paths stand in front of: here
    the same callers, ids and mass-assigned body go through the ASGI application uvicorn
    serves. Each answer is the status the matrix expects at that route, with the security
    headers Django's middleware puts on its own answers."""
    own = _org_world(Organization.objects.create(slug="doors-a", name=f"{OWN} org"), OWN)
    foreign = _org_world(
        Organization.objects.create(slug="doors-b", name=f"{FOREIGN} org"), FOREIGN
    )
    body = json.dumps(_mass_assignment(own, foreign)).encode()
    for method, pattern, _app in http_routes:
        for key, (route, _p) in ROUTES.items():
            path = _fill(route, own["ids"])
            if "<" not in route or not re.fullmatch(pattern, path):
                continue
            answers = []
            for name in CALLERS:
                token = (
                    foreign["tokens"]["admin"] if name == "outsider" else own["tokens"].get(name)
                )
                answer = _call(application, path, token=token or "", body=body)
                assert_security_headers(answer.headers, (key, method, name, answer.status))
                answers.append(str(answer.status))
            assert " ".join(answers) == DOORS[key][method.lower()], key


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
