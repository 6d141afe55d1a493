"""A light asyncio WebSocket client for load tests (and the Redis-restart test).

The ``websockets`` client costs ~48 µs of CPU per received frame and, at 10,000 viewers,
breaks the measurement on its own (STACK.md). This one is an ``asyncio.Protocol``: an
HTTP/1.1 upgrade, then a minimal RFC 6455 frame parser (server frames are unmasked; the
client masks what it sends, answers pings, and stops on close). Each received text frame
goes to ``on_frame(conn, payload: bytes)`` unparsed: the caller decides how much to decode.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
import time
from collections.abc import Callable


def _mask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    if n == 0:
        return payload
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")).to_bytes(
        n, "little"
    )


def client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + key + _mask(payload, key)


class WSConn(asyncio.Protocol):
    """One client socket. ``opened`` resolves with the time the first frame arrived."""

    def __init__(self, path: str, host: str, on_frame: Callable, origin: str | None = None):
        self.path, self.host, self.on_frame, self.origin = path, host, on_frame, origin
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.upgraded = False
        loop = asyncio.get_running_loop()
        self.handshake: asyncio.Future = loop.create_future()
        self.first_frame: asyncio.Future = loop.create_future()
        self.closed: asyncio.Future = loop.create_future()
        self.close_code: int | None = None
        self.frames = 0
        self.started = time.perf_counter()
        self.user: dict = {}

    # -- asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {self.path} HTTP/1.1",
            f"Host: {self.host}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if self.origin:
            lines.append(f"Origin: {self.origin}")
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[: buf.find(b"\r\n")])
            del buf[: end + 4]
            if b" 101 " not in status:
                self._fail(ConnectionError(status.decode(errors="replace")))
                return
            self.upgraded = True
            if not self.handshake.done():
                self.handshake.set_result(True)
        pos = 0
        size = len(buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            n = b1 & 0x7F
            head = 2
            if n == 126:
                if size - pos < 4:
                    break
                n = (buf[pos + 2] << 8) | buf[pos + 3]
                head = 4
            elif n == 127:
                if size - pos < 10:
                    break
                n = struct.unpack_from("!Q", buf, pos + 2)[0]
                head = 10
            if size - pos < head + n:
                break
            payload = bytes(buf[pos + head : pos + head + n])
            pos += head + n
            opcode = b0 & 0x0F
            if opcode == 0x1 or opcode == 0x2:
                self.frames += 1
                if not self.first_frame.done():
                    self.first_frame.set_result(time.perf_counter())
                self.on_frame(self, payload)
            elif opcode == 0x8:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                try:
                    self.transport.write(client_frame(payload[:2], 0x8))
                except Exception:  # noqa: BLE001, S110
                    pass
                self.transport.close()
            elif opcode == 0x9:
                self.transport.write(client_frame(payload, 0xA))
        if pos:
            del buf[:pos]

    def connection_lost(self, exc) -> None:
        if not self.handshake.done():
            self.handshake.set_exception(exc or ConnectionError("closed before upgrade"))
        if not self.closed.done():
            self.closed.set_result(self.close_code)

    def _fail(self, exc: Exception) -> None:
        if not self.handshake.done():
            self.handshake.set_exception(exc)
        if self.transport:
            self.transport.close()

    # -- API -------------------------------------------------------------------------------
    def send_text(self, text: str) -> None:
        if self.transport and not self.transport.is_closing():
            self.transport.write(client_frame(text.encode()))

    def close(self) -> None:
        if self.transport and not self.transport.is_closing():
            try:
                self.transport.write(client_frame(struct.pack("!H", 1000), 0x8))
            except Exception:  # noqa: BLE001, S110
                pass
            self.transport.close()


async def open_ws(
    host: str,
    port: int,
    path: str,
    on_frame: Callable,
    *,
    origin: str | None = None,
    timeout: float = 30.0,
) -> WSConn:
    loop = asyncio.get_running_loop()
    _transport, conn = await asyncio.wait_for(
        loop.create_connection(
            lambda: WSConn(path, f"{host}:{port}", on_frame, origin), host, port
        ),
        timeout,
    )
    await asyncio.wait_for(conn.handshake, timeout)
    return conn
