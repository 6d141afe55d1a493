"""Hub server processes on Redis and the clients that watch them, for the integration tier.

``HubProcesses`` runs N uvicorn processes of the project that share nothing but Redis (for
the hub) and the test database, as separate machines would; ``Viewer`` is the reconnecting
viewer of the Redis-restart test; ``Screen`` keeps what one viewer's screen applies, the way
static/shared/ws.js does. ``wait_until`` waits on a condition instead of a fixed sleep, so
a loaded box only makes a test slower, never wrong.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from django.db import connection

from bench.wsclient import open_ws
from tests.support.prod import descendants
from tests.support.servers import ROOT, free_port, wait_for_port


def database_url_of_tests() -> str:
    """``DATABASE_URL`` pointing at the test database pytest-django created."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


def realtime_prefix() -> str:
    """A fresh key and channel prefix: runs sharing a Redis never see each other's rooms."""
    return f"qm-it-{random.randrange(16**8):08x}"


async def wait_until(
    condition: Callable[[], bool], timeout: float, what: str | Callable[[], str] = ""
) -> float:
    """Poll ``condition`` every 50 ms; seconds it took, or ``TimeoutError`` naming ``what``
    (a callable is called then, to say what was seen instead)."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"not within {timeout} s: {what() if callable(what) else what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


class HubProcesses:
    """N uvicorn processes of the project on one Redis (for the hub) and the test database.

    Each process opens its own Redis connections (pub/sub and commands) and knows nothing of
    the others: whatever they agree on travels through Redis.
    """

    def __init__(
        self,
        realtime_redis: str,
        prefix: str | None = None,
        *,
        count: int = 2,
        tick_ms: int = 200,
        env: dict | None = None,
    ):
        self.env = {
            **os.environ,
            "DJANGO_ENV": "test",
            "DATABASE_URL": database_url_of_tests(),
            "REALTIME_REDIS_URL": realtime_redis,
            "REALTIME_PREFIX": prefix or realtime_prefix(),
            "REALTIME_TICK_MS": str(tick_ms),
            "TASK_RUNNER": "eager",
            # Chat through sockets posted by the child process, as in production.
            "REALTIME_CHAT_WORKER": "process",
            "DB_POOL_MAX": "8",
            **(env or {}),
        }
        self.ports = [free_port() for _ in range(count)]
        self.procs: list[subprocess.Popen] = []

    def _spawn(self, port: int) -> subprocess.Popen:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "qianmian.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--ws",
                "core.websocket:WebSocketProtocol",
                "--lifespan",
                "on",
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=self.env,
        )

    def __enter__(self) -> HubProcesses:
        self.procs = [self._spawn(port) for port in self.ports]
        try:
            for port, proc in zip(self.ports, self.procs, strict=True):
                wait_for_port(port, 60, proc)
        except BaseException:
            self.__exit__()
            raise
        return self

    def kill(self, index: int) -> set[int]:
        """SIGKILL one process: no shutdown, no goodbye to its sockets or to Redis. Returns
        the pids of its children, which live on (its chat child posts what it was handed,
        then exits)."""
        proc = self.procs[index]
        children = descendants(proc.pid)
        proc.kill()
        proc.wait(10)
        return children

    def __exit__(self, *exc) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


async def http_get_json(port: int, path: str, token: str) -> tuple[int, dict]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token {token}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
    )
    raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, (json.loads(body) if body.strip().startswith(b"{") else {})


async def http_post_json(port: int, path: str, token: str, body: dict) -> int:
    payload = json.dumps(body).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        + payload
    )
    raw = await reader.read()
    writer.close()
    return int(raw.split(b" ", 2)[1])


class Viewer:
    """What ws.js does, on the light client: state, resume, resync, reconnect with jitter."""

    def __init__(self, port: int, room_id: int, token: str):
        self.port, self.room_id, self.token = port, room_id, token
        self.last_seq = 0
        self.seen: set[int] = set()
        self.live_after: dict[int, float] = {}  # message id → when it arrived live
        self.conn = None
        self.fetching = False
        self.refetch = False  # a resync arrived while a fetch was in flight
        self.statuses: list[int] = []
        self.tasks: set[asyncio.Task] = set()
        self.resyncs = 0
        self.stopped = False

    async def start(self) -> None:
        await self.fetch_state()
        await self.connect()

    async def fetch_state(self) -> None:
        self.fetching = True
        attempt = 0
        try:
            while not self.stopped:
                try:
                    status, state = await http_get_json(
                        self.port, f"/api/v1/rooms/{self.room_id}/state", self.token
                    )
                except OSError:
                    status = 0
                self.statuses.append(status)
                if status == 200:
                    self.last_seq = state["seq"]
                    self.seen.update(m["id"] for m in state["chat"])
                    return
                await asyncio.sleep(min(5, 0.25 * 2**attempt) * random.uniform(0.5, 1))
                attempt += 1
        finally:
            self.fetching = False

    async def connect(self) -> None:
        attempt = 0
        while not self.stopped:
            try:
                self.conn = await open_ws(
                    "127.0.0.1",
                    self.port,
                    f"/ws/rooms/{self.room_id}/?token={self.token}",
                    self.on_frame,
                )
                self.conn.send_text(json.dumps({"type": "resume", "after_seq": self.last_seq}))
                self._spawn(self.watch_close(self.conn))
                return
            except (TimeoutError, OSError):
                await asyncio.sleep(min(5, 0.25 * 2**attempt) * random.uniform(0.5, 1))
                attempt += 1

    def _spawn(self, coro) -> None:
        # Keep a reference: the loop holds tasks weakly and may collect one mid-flight.
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def watch_close(self, conn) -> None:
        await conn.closed
        if not self.stopped:
            await self.connect()

    def on_frame(self, conn, payload: bytes) -> None:
        data = json.loads(payload)
        if data.get("type") == "hello":
            # Its seq is the hub's position, not an event applied here (ws.js ignores it):
            # taking it as one skipped a resumed event with the same seq (make chaos).
            return
        if data.get("type") == "notice" and data.get("code") == "resync":
            self.resyncs += 1
            if self.fetching:
                self.refetch = True  # that fetch may predate what we missed
            else:
                self.fetching = True
                self._spawn(self._resync())
            return
        for event in data["events"] if data.get("type") == "batch" else [data]:
            seq = event.get("seq")
            if seq is None or seq <= self.last_seq:
                continue
            self.last_seq = seq
            if event["type"] == "chat":
                self.seen.add(event["id"])
                self.live_after.setdefault(event["id"], time.monotonic())

    async def _resync(self) -> None:
        await asyncio.sleep(random.uniform(0, 1.0))  # spread 1,000 refetches over a second
        await self.fetch_state()
        while self.refetch and not self.stopped:
            self.refetch = False
            await self.fetch_state()


class Screen:
    """One viewer's screen, kept as static/shared/ws.js keeps it, on any hub process.

    ``join(port)`` reads the room's state on that process, opens the socket and resumes
    after the state's seq; ``leave()`` closes it; ``join`` again (on any process) resumes
    after the last seq applied. Frames that arrive before the ``resumed`` notice are held
    and applied in seq order; an event is applied only when its seq is newer than the last
    one (so ``applied`` is exactly what the screen shows, in order). ``replays`` keeps, per
    join, the events that reached the screen before its ``resumed`` notice.
    """

    def __init__(self, room_id: int, token: str, name: str = ""):
        self.room_id, self.token, self.name = room_id, token, name
        self.port: int | None = None
        self.conn = None
        self.last_seq: int | None = None
        self.applied: list[dict] = []
        self.replays: list[list[dict]] = []
        self.notices: list[dict] = []
        self.online: int | None = None
        self.likes: int | None = None
        self.figures: list[tuple[float, int | None, int | None]] = []  # (when, online, likes)
        self.resuming = False
        self._held: list[dict] = []

    @property
    def chats(self) -> list[dict]:
        return [e for e in self.applied if e["type"] == "chat"]

    async def join(self, port: int) -> None:
        if self.last_seq is None:
            status, state = await http_get_json(
                port, f"/api/v1/rooms/{self.room_id}/state", self.token
            )
            assert status == 200, status
            self.last_seq, self.online, self.likes = state["seq"], state["online"], state["likes"]
            self.figures.append((time.monotonic(), self.online, self.likes))
        self.port, self.resuming, self._held = port, True, []
        self.conn = await open_ws(
            "127.0.0.1", port, f"/ws/rooms/{self.room_id}/?token={self.token}", self._on_frame
        )
        self.conn.send_text(json.dumps({"type": "resume", "after_seq": self.last_seq}))
        await wait_until(lambda: not self.resuming, 15, f"{self.name}'s resume on {port}")

    def leave(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    @property
    def dropped(self) -> bool:
        """The server side went away (its process was killed)."""
        return self.conn is not None and self.conn.closed.done()

    def say(self, text: str) -> None:
        self.conn.send_text(json.dumps({"type": "chat", "text": text}))

    def like(self, count: int) -> None:
        self.conn.send_text(json.dumps({"type": "like", "count": count}))

    def _on_frame(self, conn, payload: bytes) -> None:
        data = json.loads(payload)
        events = data["events"] if data.get("type") == "batch" else [data]
        if self.resuming:
            if data.get("type") == "notice" and data.get("code") in ("resumed", "resync"):
                self.notices.append(data)
                held, self._held = sorted(self._held, key=lambda e: e.get("seq") or 0), []
                self.replays.append(held)
                self.resuming = False
                self._apply(held)
            elif data.get("type") != "hello":  # its seq is the hub's position, not an event
                self._held.extend(events)
            return
        self._apply(events)

    def _apply(self, events: list[dict]) -> None:
        for event in events:
            seq = event.get("seq")
            if seq is None:
                if event.get("type") == "notice":
                    self.notices.append(event)
                continue
            if seq <= self.last_seq:
                continue  # a duplicate (live frame and replay overlap): dropped, as ws.js does
            self.last_seq = seq
            self.applied.append(event)
            if event["type"] in ("online", "like"):
                if event["type"] == "online":
                    self.online = event["count"]
                else:
                    self.likes = event["count"]
                self.figures.append((time.monotonic(), self.online, self.likes))

    def first_shown(
        self, *, online: int | None = None, likes: int | None = None, since: float = 0.0
    ) -> float:
        """When this screen first showed ``online`` (or ``likes``), from ``since`` on."""
        for at, shown_online, shown_likes in self.figures:
            if (
                at >= since
                and (online is None or shown_online == online)
                and (likes is None or shown_likes == likes)
            ):
                return at
        raise LookupError(f"{self.name} never showed online={online} likes={likes}")
