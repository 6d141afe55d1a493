"""A real uvicorn serving the project's ASGI app in a thread, and a small test client.

The fast tier shares the in-memory SQLite test database with the server thread, so tests
using it need ``@pytest.mark.django_db(transaction=True)``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
import uvicorn
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from core.tokens import issue_viewer_token
from tests.factories import ContactFactory
from tests.support.servers import free_port


class HubServer:
    def __init__(self):
        from qianmian.asgi import application

        self.port = free_port()
        config = uvicorn.Config(
            application,
            host="127.0.0.1",
            port=self.port,
            lifespan="on",
            ws="core.websocket:WebSocketProtocol",
            log_level="warning",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> HubServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)

    def url(self, room_id: int, token: str) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/rooms/{room_id}/?token={token}"

    def staff_url(self, token: str) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/staff/?token={token}"


@pytest.fixture(name="hub_server")
def hub_server_fixture(transactional_db, settings):
    settings.REALTIME_TICK_MS = 50  # quick tests; the protocol is the same at 200 ms
    server = HubServer().start()
    yield server
    server.stop()
    from livecommerce.realtime.crm import buffer

    buffer.flush()


class Client:
    """A WebSocket client that unpacks batches and keeps every event it saw."""

    def __init__(self, ws):
        self.ws = ws
        self.events: list[dict] = []
        self.close_code: int | None = None

    @classmethod
    async def open(cls, url: str, *, hello: bool = True, **kwargs) -> Client:
        client = cls(await connect(url, compression=None, **kwargs))
        if hello:
            first = await client.next(lambda e: True, timeout=5)
            assert first["type"] == "hello", first
            client.events.clear()
        return client

    async def send(self, obj) -> None:
        await self.ws.send(obj if isinstance(obj, str) else json.dumps(obj))

    async def _read(self, timeout: float) -> list[dict]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        data = json.loads(raw)
        batch = data["events"] if data.get("type") == "batch" else [data]
        self.events.extend(batch)
        return batch

    async def next(self, pred, timeout: float = 5.0) -> dict:
        """The next event (from now on) matching ``pred``."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no matching event")
            for event in await self._read(left):
                if pred(event):
                    return event

    async def until(self, condition, timeout: float = 5.0) -> list[dict]:
        """Read until ``condition(self.events)`` holds (checked before each read too): events
        that come in any order, or in different frames, are waited for together."""
        deadline = time.monotonic() + timeout
        while not condition(self.events):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"events seen: {self.events}")
            try:
                await self._read(left)
            except TimeoutError:
                continue
        return self.events

    async def collect(self, seconds: float) -> list[dict]:
        """Everything received during ``seconds``."""
        got = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                got.extend(await self._read(left))
            except TimeoutError:
                break
            except ConnectionClosed as exc:
                self.close_code = exc.rcvd.code if exc.rcvd else None
                break
        return got

    async def closed_with(self, timeout: float = 5.0) -> int | None:
        try:
            while True:
                await self._read(timeout)
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else None

    async def close(self) -> None:
        await self.ws.close()


def applied(events) -> list[dict]:
    """What ws.js applies: events with a seq newer than the last applied one (no seq: all).

    On a socket that asked to resume, ws.js holds everything up to the server's ``resumed``
    notice and applies it in seq order: a live frame may overtake the resume answer.
    """
    flat = []
    for event in events:
        flat.extend(event["events"] if event.get("type") == "batch" else [event])
    ends = [i for i, e in enumerate(flat) if e.get("code") == "resumed"]
    if ends:
        head = sorted(flat[: ends[0]], key=lambda e: e.get("seq") or 0)
        flat = head + flat[ends[0] + 1 :]
    last = 0
    out = []
    for event in flat:
        seq = event.get("seq")
        if seq is None:
            out.append(event)
        elif seq > last:
            last = seq
            out.append(event)
    return out


def chat_texts(events) -> list[str]:
    return [e["text"] for e in events if e.get("type") == "chat"]


def run(coro):
    return asyncio.run(coro)


def viewer(org, name: str, device: str | None = None):
    contact = ContactFactory(org=org, nickname=name)
    token = issue_viewer_token(
        org_id=org.pk, contact_id=contact.pk, device=device or f"dev-{name}", nickname=name
    )
    return contact, token
