"""A lean RFC 6455 WebSocket protocol for uvicorn: ``--ws core.websocket:WebSocketProtocol``.

Why not uvicorn's own (websockets-sansio): measured in bench/fanout.py, a join storm cost
~340 µs of server CPU per handshake, most of it in the sansio upgrade path (request object,
header datastructures, a ``uuid4`` and a keepalive timer per connection, extension
negotiation), and every received message paused and resumed the socket's reading (two
``epoll_ctl`` calls per like). At 2,500 handshakes/s per process — the benchmark's 5,000/s burst
over two processes — that alone is most of a core. This protocol does the same job with
less per connection:

- the handshake is parsed from the request line and headers uvicorn's HTTP parser already
  split (uvicorn hands the upgrade request over as bytes), answered with one write; no
  extensions are ever negotiated (permessage-deflate would make every frame per-socket,
  and the room hub writes one shared pre-framed buffer to every socket);
- one keepalive sweep per server instead of a timer per connection: a socket that sent
  nothing for ``ws_ping_interval`` gets a ping, one that then stays silent for
  ``ws_ping_timeout`` is closed (1011) — dead phones leave the online count;
- received messages go to a deque; reading pauses only when ``ws_max_queue`` messages
  wait for the application.

It is a complete ASGI ``websocket`` implementation (HTTP spec 2.4 incl. the
``websocket.http.response`` denial extension), so every WebSocket route of the project runs
on it, not only the room hub. The transport stays at ``protocol.transport`` for the hub's
direct writes of pre-built frames (``livecommerce.realtime.hub``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import hashlib
import logging
import struct
from http import HTTPStatus
from urllib.parse import unquote

from uvicorn.protocols.utils import ClientDisconnected

log = logging.getLogger("uvicorn.error")

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

# Close codes a peer may send (RFC 6455 §7.4; 1005/1006/1015 are never on the wire).
_VALID_CLOSE = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}

_MAX_HANDSHAKE = 64 * 1024


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """One complete unmasked frame (server frames are never masked, RFC 6455 §5.1)."""
    n = len(payload)
    if n < 126:
        return bytes((0x80 | opcode, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x80 | opcode, 126, n) + payload
    return struct.pack("!BBQ", 0x80 | opcode, 127, n) + payload


def text_frame(payload: bytes) -> bytes:
    """A text frame of already UTF-8 encoded ``payload``."""
    return encode_frame(OP_TEXT, payload)


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()[:123]


def accept_key(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + _GUID).digest())  # noqa: S324 - RFC 6455


def _unmask(payload: bytes, mask: bytes) -> bytes:
    n = len(payload)
    if not n:
        return b""
    # One big-int XOR instead of a Python loop per byte.
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def _status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {status} {phrase}\r\n".encode()


class _Keepalive:
    """One sweep per uvicorn server: ping quiet sockets, close those that stay silent."""

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float, timeout: float | None):
        self.loop, self.interval, self.timeout = loop, interval, timeout
        self.conns: set[WebSocketProtocol] = set()
        self.handle = loop.call_later(self._period(), self._sweep)

    def _period(self) -> float:
        return max(0.05, min(self.interval, self.timeout or self.interval) / 2)

    def _sweep(self) -> None:
        now = self.loop.time()
        for conn in list(self.conns):
            if conn.ping_sent_at is not None:
                if self.timeout is not None and now - conn.ping_sent_at >= self.timeout:
                    conn.fail(1011, "keepalive ping timeout")
            elif now - conn.last_seen >= self.interval:
                conn.ping_sent_at = now
                conn.write(encode_frame(OP_PING, b"qm"))
        self.handle = self.loop.call_later(self._period(), self._sweep)


class WebSocketProtocol(asyncio.Protocol):
    """uvicorn WebSocket protocol class (see the module docstring)."""

    def __init__(self, config, server_state, app_state: dict, _loop=None) -> None:
        if not config.loaded:
            config.load()  # pragma: no cover
        self.config = config
        self.app = config.loaded_app
        self.loop = _loop or asyncio.get_event_loop()
        self.server_state = server_state
        self.app_state = app_state
        self.max_size = config.ws_max_size
        self.max_queue = max(1, config.ws_max_queue or 32)
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.need = 0  # bytes the buffered partial frame needs before it can be parsed
        self.key = b""
        self.handshake_done = False  # the 101 (or a refusal) has been written
        self.request_seen = False
        self.close_sent = False
        self.disconnected = False  # the application has been (or is being) told
        self.disconnect_delivered = False
        self.close_timer: asyncio.TimerHandle | None = None
        self.queue: collections.deque = collections.deque()
        self.waiter: asyncio.Future | None = None
        self.read_paused = False
        self.writable: asyncio.Event | None = None  # created on the first pause only
        self.fragments: list[bytes] | None = None
        self.fragments_opcode = 0
        self.fragments_size = 0
        self.denial: tuple[int, list, bytearray] | None = None
        self.scope: dict = {}
        self.last_seen = 0.0
        self.ping_sent_at: float | None = None
        self.keepalive: _Keepalive | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.server_state.connections.add(self)
        self.last_seen = self.loop.time()

    def connection_lost(self, exc) -> None:
        self.server_state.connections.discard(self)
        if self.keepalive is not None:
            self.keepalive.conns.discard(self)
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None
        if not self.disconnected:
            self._disconnect(1006)  # gone without a closing handshake
        if self.writable is not None:
            self.writable.set()  # wake a send() waiting on a buffer that will never drain

    def pause_writing(self) -> None:
        if self.writable is None:
            self.writable = asyncio.Event()
        self.writable.clear()

    def resume_writing(self) -> None:
        if self.writable is not None:
            self.writable.set()

    def eof_received(self) -> None:
        pass

    def data_received(self, data: bytes) -> None:
        if not self.request_seen:
            self.buf += data
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > _MAX_HANDSHAKE:
                    self._http_error(431, "request header fields too large")
                return
            request, rest = bytes(self.buf[: end + 4]), self.buf[end + 4 :]
            self.buf = bytearray()
            self.request_seen = True
            self._handle_request(request)
            if rest:
                self.buf += rest  # frames sent before our 101: parsed once accepted
            return
        if not self.handshake_done:
            self.buf += data  # frames sent before our 101: parsed once accepted
            return
        if self.transport.is_closing():
            return
        self.last_seen = self.loop.time()
        self.ping_sent_at = None
        if self.buf:
            self.buf += data
            if len(self.buf) < self.need:
                return  # a large frame still arriving: no re-parse (and copy) per read
            data = bytes(self.buf)
            self.buf = bytearray()
        self._parse(data)

    # -- handshake -------------------------------------------------------------------------
    def _handle_request(self, request: bytes) -> None:
        lines = request[:-4].split(b"\r\n")
        try:
            method, target, _version = lines[0].split(b" ", 2)
        except ValueError:
            self._http_error(400, "bad request line")
            return
        headers: list[tuple[bytes, bytes]] = []
        upgrade = connection = version = key = b""
        subprotocols: list[str] = []
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                self._http_error(400, "bad header line")
                return
            name = name.strip().lower()
            value = value.strip()
            headers.append((name, value))
            if name == b"upgrade":
                upgrade = value.lower()
            elif name == b"connection":
                connection = value.lower()
            elif name == b"sec-websocket-version":
                version = value
            elif name == b"sec-websocket-key":
                key = value
            elif name == b"sec-websocket-protocol":
                subprotocols.extend(t.strip() for t in value.decode("latin-1").split(",") if t)
        if method != b"GET" or b"websocket" not in upgrade or b"upgrade" not in connection:
            self._http_error(400, "not a WebSocket upgrade request")
            return
        if version != b"13":
            self._http_error(
                426, "unsupported WebSocket version", [(b"sec-websocket-version", b"13")]
            )
            return
        try:
            if len(base64.b64decode(key, validate=True)) != 16:
                raise ValueError
        except (ValueError, binascii.Error):
            self._http_error(400, "bad Sec-WebSocket-Key")
            return
        self.key = key
        raw_path, _, query = target.partition(b"?")
        transport = self.transport
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        root_path = self.config.root_path
        self.scope = {
            "type": "websocket",
            "asgi": {"version": self.config.asgi_version, "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": "wss" if transport.get_extra_info("sslcontext") else "ws",
            "server": (str(local[0]), int(local[1])) if isinstance(local, tuple) else None,
            "client": (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else None,
            "root_path": root_path,
            "path": root_path + unquote(raw_path.decode("latin-1")),
            "raw_path": root_path.encode("latin-1") + raw_path,
            "query_string": query,
            "headers": headers,
            "subprotocols": subprotocols,
            "state": self.app_state.copy(),
            "extensions": {"websocket.http.response": {}},
        }
        self.queue.append({"type": "websocket.connect"})
        task = self.loop.create_task(self._run_asgi())
        self.server_state.tasks.add(task)
        task.add_done_callback(self.server_state.tasks.discard)

    def _http_error(self, status: int, reason: str, headers: list | None = None) -> None:
        body = reason.encode()
        self._write_response(
            status,
            [
                *(headers or []),
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
            body,
        )
        self.handshake_done = self.close_sent = True
        self.transport.close()

    def _write_response(self, status: int, headers: list, body: bytes = b"") -> None:
        out = [_status_line(status)]
        for name, value in [*self.server_state.default_headers, *headers]:
            out += [name, b": ", value, b"\r\n"]
        out += [b"\r\n", body]
        self.transport.write(b"".join(out))

    def _accept(self, message: dict) -> None:
        if self.transport.is_closing():
            raise ClientDisconnected()
        headers = [
            (b"upgrade", b"websocket"),
            (b"connection", b"Upgrade"),
            (b"sec-websocket-accept", accept_key(self.key)),
        ]
        subprotocol = message.get("subprotocol")
        if subprotocol:
            headers.append((b"sec-websocket-protocol", subprotocol.encode("latin-1")))
        headers.extend(message.get("headers") or [])
        self._write_response(101, headers)
        self.handshake_done = True
        interval = self.config.ws_ping_interval
        if interval:
            keepalive = getattr(self.server_state, "qm_ws_keepalive", None)
            if keepalive is None or keepalive.loop is not self.loop:
                keepalive = _Keepalive(self.loop, interval, self.config.ws_ping_timeout)
                self.server_state.qm_ws_keepalive = keepalive
            keepalive.conns.add(self)
            self.keepalive = keepalive
        if self.buf:
            data, self.buf = bytes(self.buf), bytearray()
            self._parse(data)

    # -- frames in -------------------------------------------------------------------------
    def _parse(self, data: bytes) -> None:
        pos, size = 0, len(data)
        transport = self.transport
        while size - pos >= 2 and not transport.is_closing():
            b0, b1 = data[pos], data[pos + 1]
            n = b1 & 0x7F
            head = pos + 2
            if n == 126:
                if size - head < 2:
                    self.need = 4
                    break
                n = (data[head] << 8) | data[head + 1]
                head += 2
            elif n == 127:
                if size - head < 8:
                    self.need = 10
                    break
                n = int.from_bytes(data[head : head + 8], "big")
                head += 8
            if b0 & 0x70:
                self.fail(1002, "reserved bits set")  # no extension was negotiated
                return
            if not b1 & 0x80:
                self.fail(1002, "client frames must be masked")
                return
            if n > self.max_size:
                self.fail(1009, "message too big")
                return
            end = head + 4 + n
            if end > size:
                self.need = end - pos
                break
            payload = _unmask(data[head + 4 : end], data[head : head + 4])
            pos = end
            self._frame(b0 & 0x80, b0 & 0x0F, payload)
        if pos < size and not transport.is_closing():
            if size - pos < 2:
                self.need = 2
            self.buf += data[pos:]

    def _frame(self, fin: int, opcode: int, payload: bytes) -> None:
        if opcode >= 0x8:
            if not fin or len(payload) > 125:
                self.fail(1002, "bad control frame")
            elif opcode == OP_PING:
                self.write(encode_frame(OP_PONG, payload))
            elif opcode == OP_CLOSE:
                self._on_close(payload)
            elif opcode != OP_PONG:
                self.fail(1002, "unknown opcode")
            return
        if opcode == OP_CONT:
            if self.fragments is None:
                self.fail(1002, "continuation without a message")
                return
            self.fragments.append(payload)
            self.fragments_size += len(payload)
            if self.fragments_size > self.max_size:
                self.fail(1009, "message too big")
                return
            if fin:
                data, opcode = b"".join(self.fragments), self.fragments_opcode
                self.fragments = None
                self._message(opcode, data)
            return
        if opcode not in (OP_TEXT, OP_BINARY):
            self.fail(1002, "unknown opcode")
            return
        if self.fragments is not None:
            self.fail(1002, "new message inside a fragmented one")
            return
        if fin:
            self._message(opcode, payload)
        else:
            self.fragments, self.fragments_opcode = [payload], opcode
            self.fragments_size = len(payload)

    def _message(self, opcode: int, data: bytes) -> None:
        if self.close_sent:
            return  # past our close: read only for the peer's reply
        if opcode == OP_TEXT:
            try:
                message = {"type": "websocket.receive", "text": data.decode()}
            except UnicodeDecodeError:
                self.fail(1007, "invalid UTF-8")
                return
        else:
            message = {"type": "websocket.receive", "bytes": data}
        self._put(message)
        if len(self.queue) >= self.max_queue and not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()

    def _on_close(self, payload: bytes) -> None:
        code, reason = 1005, ""
        if len(payload) >= 2:
            code = struct.unpack("!H", payload[:2])[0]
            try:
                reason = payload[2:].decode()
            except UnicodeDecodeError:
                self.fail(1007, "invalid close reason")
                return
            if code not in _VALID_CLOSE and not 3000 <= code <= 4999:
                self.fail(1002, "invalid close code")
                return
        elif payload:
            self.fail(1002, "bad close frame")
            return
        if not self.close_sent:
            # Echo the peer's close (RFC 6455 §5.5.1), then the server closes TCP first.
            self.write(encode_frame(OP_CLOSE, payload[:2]))
            self.close_sent = True
        self._disconnect(code, reason)
        self.transport.close()

    def fail(self, code: int, reason: str = "") -> None:
        """Close after a protocol error (or a keepalive timeout) without waiting for a reply."""
        if not self.close_sent:
            self.write(encode_frame(OP_CLOSE, close_payload(code, reason)))
            self.close_sent = True
        self._disconnect(code, reason)
        self.transport.close()

    # -- the application's side ------------------------------------------------------------
    def _put(self, message: dict) -> None:
        self.queue.append(message)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _disconnect(self, code: int, reason: str = "") -> None:
        if self.disconnected:
            return
        self.disconnected = True
        self.fragments = None
        if self.keepalive is not None:
            self.keepalive.conns.discard(self)
        self._put({"type": "websocket.disconnect", "code": code, "reason": reason})

    async def receive(self) -> dict:
        while not self.queue:
            if self.disconnect_delivered:
                # An app that reads past the disconnect gets it again instead of hanging.
                return {"type": "websocket.disconnect", "code": 1006, "reason": ""}
            self.waiter = self.loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        message = self.queue.popleft()
        if message["type"] == "websocket.disconnect":
            self.disconnect_delivered = True
        if (
            self.read_paused
            and len(self.queue) < self.max_queue // 2
            and not self.transport.is_closing()
        ):
            self.read_paused = False
            self.transport.resume_reading()
        return message

    def write(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    async def send(self, message: dict) -> None:
        if self.writable is not None and not self.writable.is_set():
            await self.writable.wait()
        kind = message["type"]
        if not self.handshake_done:
            if self.disconnected:
                raise ClientDisconnected()
            if self.denial is not None:
                self._send_denial(message)
            elif kind == "websocket.accept":
                self._accept(message)
            elif kind == "websocket.close":
                # Refused before accepting: an HTTP 403, as uvicorn's own protocols do.
                self._http_error(403, "")
                self._disconnect(1006)
            elif kind == "websocket.http.response.start":
                status = message["status"]
                if not 100 <= status < 600:
                    raise RuntimeError(f"Invalid HTTP status code '{status}' in response.")
                self.denial = (status, list(message.get("headers") or []), bytearray())
            else:
                raise RuntimeError(f"Expected ASGI message 'websocket.accept', got '{kind}'.")
            return
        if kind == "websocket.send":
            if self.close_sent or self.disconnected:
                raise ClientDisconnected()
            data = message.get("bytes")
            if data is not None:
                self.write(encode_frame(OP_BINARY, data))
            else:
                self.write(text_frame(message.get("text", "").encode()))
        elif kind == "websocket.close":
            if self.close_sent or self.disconnected:
                return  # closing or gone already (a second close is harmless)
            code = message.get("code") or 1000
            self.write(encode_frame(OP_CLOSE, close_payload(code, message.get("reason") or "")))
            self.close_sent = True
            self._disconnect(code, message.get("reason") or "")
            if self.read_paused:
                self.read_paused = False
                self.transport.resume_reading()
            # Wait (briefly) for the peer's close reply, then drop the connection.
            self.close_timer = self.loop.call_later(10.0, self.transport.close)
        else:
            raise RuntimeError(f"Expected ASGI message 'websocket.send', got '{kind}'.")

    def _send_denial(self, message: dict) -> None:
        if message["type"] != "websocket.http.response.body":
            raise RuntimeError("Expected ASGI message 'websocket.http.response.body'.")
        status, headers, body = self.denial
        body += message.get("body", b"")
        if message.get("more_body"):
            return
        names = {name.lower() for name, _ in headers}
        if b"content-length" not in names:
            headers.append((b"content-length", str(len(body)).encode()))
        if b"content-type" not in names:
            headers.append((b"content-type", b"text/plain; charset=utf-8"))
        headers.append((b"connection", b"close"))
        self._write_response(status, headers, bytes(body))
        self.handshake_done = self.close_sent = True
        self._disconnect(1006)
        self.transport.close()

    async def _run_asgi(self) -> None:
        try:
            await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except BaseException:
            log.exception("Exception in ASGI application")
            if not self.handshake_done and not self.disconnected:
                self._http_error(500, "Internal Server Error")
        else:
            if not self.handshake_done and not self.disconnected:
                log.error("ASGI callable returned without completing handshake.")
                self._http_error(500, "Internal Server Error")
        if self.close_timer is None and self.transport is not None:
            self.transport.close()

    def shutdown(self) -> None:
        """Server shutdown (uvicorn calls it on every connection): close with 1012."""
        if self.handshake_done and not self.close_sent:
            self.write(encode_frame(OP_CLOSE, close_payload(1012)))
            self.close_sent = True
        elif not self.handshake_done:
            self._http_error(500, "server shutting down")
        self._disconnect(1012)
        self.transport.close()
