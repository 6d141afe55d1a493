"""A light asyncio WebSocket client for load tests (and the Redis-restart test).

The ``websockets`` client costs ~48 µs of CPU per received frame and, at 10,000 viewers,
breaks the measurement on its own (docs/bench/fanout.md). This one is an ``asyncio.BufferedProtocol``:
an HTTP/1.1 upgrade, then a minimal RFC 6455 frame parser (server frames are unmasked; the
client masks what it sends, answers pings, and stops on close). Each received text frame
goes to ``on_frame(conn, payload: bytes)`` unparsed: the caller decides how much to decode.

Sockets created with ``wants_payload=False`` (most sockets of a load test) only count
frames after the first one: the event loop reads into one receive buffer shared by every
connection of the process (reads are never interleaved), and ``buffer_updated`` walks the
frame headers in it and skips payloads without copying or allocating, and without calling
``on_frame``. Only a partial header, a control frame or a probe socket takes the general
path (copy into the connection's own buffer). Handshakes use one constant request
template and key, and outgoing frames a non-syscall mask (the server checks neither).
"""

from __future__ import annotations

import asyncio
import random
import struct
import time
from collections.abc import Callable

# One receive buffer for every connection of the process (the loop fills it, then calls
# ``buffer_updated`` of that connection before reading any other socket).
_RECV = bytearray(256 * 1024)
_RECV_VIEW = memoryview(_RECV)
# The server does not care which key a client uses (it only echoes a hash of it); a random
# key per connection was an ``os.urandom`` syscall per join.
_HANDSHAKE_TAIL = (
    b" HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: cWlhbm1pYW4tYmVuY2gtMQ==\r\nSec-WebSocket-Version: 13\r\n"
)


def _mask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    if n == 0:
        return payload
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")).to_bytes(
        n, "little"
    )


def client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    key = random.randbytes(4)  # masking is not security here; no syscall per frame
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + key + _mask(payload, key)


class WSConn(asyncio.BufferedProtocol):
    """One client socket. ``opened`` resolves with the time the first frame arrived."""

    def __init__(
        self,
        path: str,
        host: str,
        on_frame: Callable,
        origin: str | None = None,
        wants_payload: bool = True,
    ):
        self.path, self.host, self.on_frame, self.origin = path, host, on_frame, origin
        # False: after the first frame, text payloads are skipped unread and on_frame gets
        # None (load tests count frames on most sockets and parse on a few probes).
        self.wants_payload = wants_payload
        self.skip = 0
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

    # -- asyncio.BufferedProtocol ---------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        origin = f"Origin: {self.origin}\r\n" if self.origin else ""
        transport.write(
            b"GET "
            + self.path.encode()
            + _HANDSHAKE_TAIL
            + f"Host: {self.host}\r\n{origin}\r\n".encode()
        )

    def get_buffer(self, sizehint: int) -> memoryview:
        return _RECV_VIEW

    def buffer_updated(self, nbytes: int) -> None:
        if self.wants_payload or self.buf or not self.frames:
            self.data_received(_RECV[:nbytes])
            return
        # Counting-only socket with nothing carried over: walk the headers in place.
        buf = _RECV
        pos = 0
        skip = self.skip
        if skip:
            if nbytes <= skip:
                self.skip = skip - nbytes
                return
            pos = skip
            self.skip = 0
        frames = 0
        while pos < nbytes:
            b0 = buf[pos]
            if b0 != 0x81 or nbytes - pos < 4:
                # A control or fragmented frame, or a header cut in two: general path.
                self.frames += frames
                frames = 0
                self.data_received(bytes(buf[pos:nbytes]))
                return
            n = buf[pos + 1]
            if n < 126:
                end = pos + 2 + n
            elif n == 126:
                end = pos + 4 + ((buf[pos + 2] << 8) | buf[pos + 3])
            else:
                if nbytes - pos < 10:
                    self.frames += frames
                    self.data_received(bytes(buf[pos:nbytes]))
                    return
                end = pos + 10 + int.from_bytes(buf[pos + 2 : pos + 10], "big")
            frames += 1
            if end > nbytes:
                self.skip = end - nbytes
                break
            pos = end
        self.frames += frames

    def data_received(self, data: bytes) -> None:
        if self.skip:
            # Inside a payload nobody reads: consume it without copying.
            if len(data) <= self.skip:
                self.skip -= len(data)
                return
            data = data[self.skip :]
            self.skip = 0
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
            opcode = b0 & 0x0F
            if opcode == 0x1 and not self.wants_payload and self.upgraded and self.frames > 0:
                # Count the frame now and skip its payload (it may not have arrived yet).
                self.frames += 1
                available = size - pos - head
                if available >= n:
                    pos += head + n
                    continue
                self.skip = n - available
                pos = size
                break
            if size - pos < head + n:
                break
            payload = bytes(buf[pos + head : pos + head + n])
            pos += head + n
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
        self.send_frame(client_frame(text.encode()))

    def send_frame(self, frame: bytes) -> None:
        """Send a frame built (and masked) by ``client_frame``."""
        if self.transport and not self.transport.is_closing():
            self.transport.write(frame)

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
    wants_payload: bool = True,
) -> WSConn:
    loop = asyncio.get_running_loop()
    _transport, conn = await asyncio.wait_for(
        loop.create_connection(
            lambda: WSConn(path, f"{host}:{port}", on_frame, origin, wants_payload), host, port
        ),
        timeout,
    )
    await asyncio.wait_for(conn.handshake, timeout)
    return conn
