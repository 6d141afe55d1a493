"""core.websocket.WebSocketProtocol under a real uvicorn, driven by real clients.

The `websockets` client library checks the wire protocol from its side (handshake, masking,
close handshake); raw sockets send what a well-behaved client never would (unmasked
frames, bad UTF-8, silence after the handshake).
"""

from __future__ import annotations

import asyncio
import base64
import socket
import struct
import threading
import time

import pytest
import uvicorn
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from core.websocket import accept_key
from tests.support.servers import free_port

seen: dict[str, list] = {"disconnects": []}


async def app(scope, receive, send):
    """Echo, plus behaviours chosen by the path."""
    assert scope["type"] == "websocket"
    path = scope["path"]
    message = await receive()
    assert message["type"] == "websocket.connect"
    if path == "/refuse":
        await send({"type": "websocket.close", "code": 4403})
        return
    if path == "/deny":
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"no token"})
        return
    subprotocol = "qm.v1" if "qm.v1" in scope["subprotocols"] else None
    await send({"type": "websocket.accept", "subprotocol": subprotocol})
    if path == "/close":
        await send({"type": "websocket.close", "code": 4403, "reason": "banned"})
        return
    if path == "/slow":
        await asyncio.sleep(0.5)  # the client sends a burst meanwhile
    if path == "/query":
        await send({"type": "websocket.send", "text": scope["query_string"].decode()})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            seen["disconnects"].append(message["code"])
            return
        if "text" in message and message["text"] is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


class Server:
    def __init__(self, **options):
        self.port = free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            lifespan="off",
            ws="core.websocket:WebSocketProtocol",
            log_level="warning",
            **options,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def server():
    s = Server(ws_max_size=64 * 1024, ws_ping_interval=0.3, ws_ping_timeout=0.3)
    yield s
    s.stop()


def run(coro):
    return asyncio.run(coro)


class Raw:
    """A socket after a successful handshake, with what arrived past the 101."""

    def __init__(self, sock: socket.socket, leftover: bytes):
        self.sock, self.leftover = sock, leftover

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self, n: int) -> bytes:
        return self.sock.recv(n)

    def close(self) -> None:
        self.sock.close()


def raw_handshake(port: int, path: str = "/echo", extra: bytes = b"") -> Raw:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    key = base64.b64encode(b"0123456789abcdef")
    sock.sendall(
        b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "
        + key
        + b"\r\n\r\n"
        + extra
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 101 "), head
    assert b"sec-websocket-accept: " + accept_key(key) in head
    return Raw(sock, head.split(b"\r\n\r\n", 1)[1])


def masked(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    mask = b"\x01\x02\x03\x04"
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert len(payload) < 126
    return bytes(((0x80 if fin else 0) | opcode, 0x80 | len(payload))) + mask + body


def read_frames(sock: Raw, until_close: bool = True) -> list[tuple[int, bytes]]:
    data = sock.leftover
    out = []
    while True:
        while len(data) >= 2:
            n = data[1] & 0x7F
            head = 2
            if n == 126:
                n, head = struct.unpack("!H", data[2:4])[0], 4
            if len(data) < head + n:
                break
            out.append((data[0] & 0x0F, data[head : head + n]))
            data = data[head + n :]
            if out[-1][0] == 0x8 and until_close:
                return out
        chunk = sock.recv(65536)
        if not chunk:
            return out
        data += chunk


class TestHandshakeAndMessages:
    def test_text_and_binary_messages_echo_in_order(self, server):
        async def go():
            async with connect(server.url("/echo")) as ws:
                for text in ("你好，直播间", "second", "x" * 5000, "大" * 20000):
                    await ws.send(text)
                await ws.send(b"\x00\x01binary")
                return [await ws.recv() for _ in range(5)]

        assert run(go()) == ["你好，直播间", "second", "x" * 5000, "大" * 20000, b"\x00\x01binary"]

    def test_fragmented_message_arrives_whole(self, server):
        async def go():
            async with connect(server.url("/echo")) as ws:
                await ws.send(["分片", "-one", "-two"])
                return await ws.recv()

        assert run(go()) == "分片-one-two"

    def test_compression_is_never_negotiated(self, server):
        async def go():
            async with connect(server.url("/echo"), compression="deflate") as ws:
                return ws.response.headers.get("Sec-WebSocket-Extensions")

        assert run(go()) is None

    def test_subprotocol_chosen_by_the_app(self, server):
        async def go():
            async with connect(server.url("/echo"), subprotocols=["qm.v1"]) as ws:
                return ws.subprotocol

        assert run(go()) == "qm.v1"

    def test_query_string_reaches_the_app(self, server):
        async def go():
            async with connect(server.url("/query?token=abc.def")) as ws:
                return await ws.recv()

        assert run(go()) == "token=abc.def"

    def test_client_ping_gets_a_pong(self, server):
        async def go():
            async with connect(server.url("/echo"), ping_interval=None) as ws:
                pong = await ws.ping(b"are-you-there")
                return await asyncio.wait_for(pong, 2)

        assert run(go()) is not None  # the latency of the answered ping

    def test_a_burst_while_the_app_is_busy_loses_nothing(self, server):
        async def go():
            async with connect(server.url("/slow")) as ws:
                for i in range(300):  # far above ws_max_queue: reading pauses, then resumes
                    await ws.send(str(i))
                return [await ws.recv() for _ in range(300)]

        assert run(go()) == [str(i) for i in range(300)]


class TestClosing:
    def test_close_before_accept_is_an_http_403(self, server):
        async def go():
            async with connect(server.url("/refuse")):
                pass

        with pytest.raises(InvalidStatus) as info:
            run(go())
        assert info.value.response.status_code == 403

    def test_denial_response_reaches_the_client(self, server):
        async def go():
            async with connect(server.url("/deny")):
                pass

        with pytest.raises(InvalidStatus) as info:
            run(go())
        assert info.value.response.status_code == 401
        assert info.value.response.body == b"no token"

    def test_server_close_code_and_reason_reach_the_client(self, server):
        async def go():
            async with connect(server.url("/close")) as ws:
                with pytest.raises(ConnectionClosed) as info:
                    await ws.recv()
                return info.value.rcvd.code, info.value.rcvd.reason

        assert run(go()) == (4403, "banned")

    def test_client_close_code_reaches_the_app(self, server):
        seen["disconnects"].clear()

        async def go():
            ws = await connect(server.url("/echo"))
            await ws.close(code=4000, reason="bye")
            return ws.close_code

        assert run(go()) == 4000  # the server echoed the close: a clean closing handshake
        deadline = time.monotonic() + 2
        while 4000 not in seen["disconnects"] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert 4000 in seen["disconnects"]


class TestProtocolErrors:
    @pytest.mark.parametrize(
        ("frame", "code"),
        [
            (b"\x81\x02hi", 1002),  # unmasked client frame
            (masked(0x1, b"\xff\xfe"), 1007),  # invalid UTF-8
            (masked(0x3, b"x"), 1002),  # reserved opcode
            (masked(0x0, b"x"), 1002),  # continuation without a message
            (masked(0x9, b"p", fin=False), 1002),  # fragmented control frame
            (bytes((0xC1, 0x81)) + b"\0\0\0\0x", 1002),  # RSV1 set (no extension)
        ],
    )
    def test_bad_frames_close_with_the_right_code(self, server, frame, code):
        sock = raw_handshake(server.port)
        sock.sendall(frame)
        frames = read_frames(sock)
        sock.close()
        assert frames[-1][0] == 0x8
        assert struct.unpack("!H", frames[-1][1][:2])[0] == code

    def test_oversized_message_closes_with_1009(self, server):
        async def go():
            async with connect(server.url("/echo"), max_size=None) as ws:
                await ws.send("x" * (64 * 1024 + 1))
                with pytest.raises(ConnectionClosed) as info:
                    await ws.recv()
                return info.value.rcvd.code

        assert run(go()) == 1009

    def test_oversized_fragmented_message_closes_with_1009(self, server):
        async def go():
            async with connect(server.url("/echo"), max_size=None) as ws:
                await ws.send(["x" * 40000, "y" * 40000])
                with pytest.raises(ConnectionClosed) as info:
                    await ws.recv()
                return info.value.rcvd.code

        assert run(go()) == 1009

    @pytest.mark.parametrize(
        ("headers", "status"),
        [
            (b"Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: MDEyMzQ1Njc4OWFiY2RlZg==", 426),
            (b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short", 400),
            (b"Sec-WebSocket-Version: 13", 400),
        ],
    )
    def test_bad_handshakes_get_an_http_error(self, server, headers, status):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.sendall(
            b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + headers
            + b"\r\n\r\n"
        )
        head = sock.recv(4096)
        sock.close()
        assert head.startswith(f"HTTP/1.1 {status} ".encode()), head


class TestKeepalive:
    def test_a_silent_peer_is_pinged_then_closed_with_1011(self, server):
        sock = raw_handshake(server.port)  # never answers anything
        frames = read_frames(sock)
        sock.close()
        opcodes = [op for op, _ in frames]
        assert 0x9 in opcodes  # pinged first
        assert frames[-1][0] == 0x8
        assert struct.unpack("!H", frames[-1][1][:2])[0] == 1011

    def test_a_peer_that_answers_pings_stays_connected(self, server):
        async def go():
            async with connect(server.url("/echo"), ping_interval=None) as ws:
                await asyncio.sleep(1.5)  # several ping intervals and timeouts
                await ws.send("still here")
                return await ws.recv()

        assert run(go()) == "still here"


def test_server_shutdown_closes_sockets_with_1012():
    server = Server()

    async def go():
        async with connect(server.url("/echo")) as ws:
            await ws.send("hi")
            await ws.recv()
            threading.Thread(target=server.stop).start()
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            return info.value.rcvd.code

    assert run(go()) == 1012
