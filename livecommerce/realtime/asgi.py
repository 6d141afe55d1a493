"""The WebSocket endpoints, as raw ASGI apps served before Django's handler.

``WS /ws/rooms/{id}/?token=…`` — viewers and staff of the room's organisation.
``WS /ws/staff/?token=…`` — a staff user's own notifications (hot leads, …).

Consumers stay thin: authenticate from the signed token (no database query), check the
origin, attach to the process's hub, and hand client messages to services. The only
database read on connect is the room → organisation lookup, cached per process.
"""

from __future__ import annotations

import json
import logging
import time
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.http.request import validate_host

from core.metrics import WS_CONNECTIONS
from core.tokens import InvalidToken, StaffClaims, parse_token_memoised
from livecommerce.events import PRIORITY_TYPES
from livecommerce.realtime.chat_worker import chat_post_reply
from livecommerce.realtime.crm import buffer as crm_buffer
from livecommerce.realtime.hub import Conn, get_registry, staff_generations
from livecommerce.services.chat import ChatAuthor

log = logging.getLogger(__name__)

MAX_FRAME_CHARS = 4096

# Close codes (4000–4999 are the application's).
CLOSE_BAD_TOKEN = 4401
CLOSE_FORBIDDEN_ORIGIN = 4403
CLOSE_NOT_FOUND = 4404  # unknown room or another organisation's room: same code, no leak
CLOSE_BANNED = 4403


def origin_allowed(origin: str) -> bool:
    """Browsers always send Origin on WebSockets; it must be one of our hosts."""
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    host = urlsplit(origin).hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return bool(host) and validate_host(host, settings.ALLOWED_HOSTS)


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


async def _refuse(send, code: int) -> None:
    # Accept first so the browser sees the close code (a refused handshake is only "1006").
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": code})


def _token_from_query(query_string: bytes) -> str:
    if query_string.startswith(b"token=") and b"&" not in query_string and b"%" not in query_string:
        return query_string[6:].decode("latin-1")  # the usual case, without parse_qs
    query = parse_qs(query_string.decode("latin-1"))
    return (query.get("token") or [""])[0]


def _authenticate(scope):
    origin = _header(scope, b"origin")
    if origin is not None and not origin_allowed(origin):
        return None, CLOSE_FORBIDDEN_ORIGIN
    try:
        return parse_token_memoised(_token_from_query(scope.get("query_string", b""))), 0
    except InvalidToken:
        return None, CLOSE_BAD_TOKEN


async def room_socket(scope, receive, send) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    claims, error = _authenticate(scope)
    if claims is None:
        await _refuse(send, error)
        return
    registry = get_registry()
    room_id = int(scope["path_kwargs"]["room_id"])
    try:
        info = await registry.room_info(room_id)
    except Exception:  # noqa: BLE001 - database unavailable
        log.exception("room lookup failed")
        await _refuse(send, 1011)
        return
    if info is None or info.org_id != claims.org_id:
        await _refuse(send, CLOSE_NOT_FOUND)
        return
    is_staff = isinstance(claims, StaffClaims)
    client = scope.get("client") or ("", 0)
    ip = client[0] or ""
    if is_staff:
        error = await _staff_token_error(registry, claims)
        if error:
            await _refuse(send, error)
            return
    else:
        # From memory (loaded once per organisation per process, kept current by the
        # moderation service's control messages): no database query per join.
        bans = registry.bans.get(claims.org_id)
        if bans is None:
            try:
                bans = await registry.org_bans(claims.org_id)
            except Exception:  # noqa: BLE001 - database unavailable
                log.exception("ban list load failed")
                await _refuse(send, 1011)
                return
        if bans.banned(room_id=room_id, contact_id=claims.contact_id, device=claims.device, ip=ip):
            await _refuse(send, CLOSE_BANNED)
            return
    await send({"type": "websocket.accept"})
    conn = Conn(
        send=send,
        room_id=room_id,
        org_id=claims.org_id,
        contact_id=None if is_staff else claims.contact_id,
        user_id=claims.user_id if is_staff else None,
        is_staff=is_staff,
        nickname="" if is_staff else claims.nickname,
        device="" if is_staff else claims.device,
        ip=ip,
        generation=claims.generation if is_staff else 0,
    )
    hub = await registry.hub_for(room_id, claims.org_id)
    hub.attach(conn)
    open_sockets = WS_CONNECTIONS.labels(str(room_id))
    open_sockets.inc()
    if not is_staff:
        crm_buffer.record(
            org_id=conn.org_id,
            contact_id=conn.contact_id,
            type="room.join",
            room_id=room_id,
            key=f"join:{room_id}:{conn.contact_id}:{int(conn.joined * 1000)}:{conn.id}",
        )
    try:
        await _serve(conn, hub, receive)
    finally:
        hub.detach(conn)
        open_sockets.dec()
        if not is_staff:
            crm_buffer.record(
                org_id=conn.org_id,
                contact_id=conn.contact_id,
                type="room.leave",
                props={"watch_seconds": int(time.time() - conn.joined)},
                room_id=room_id,
                key=f"leave:{room_id}:{conn.contact_id}:{int(conn.joined * 1000)}:{conn.id}",
            )


def _notice(conn: Conn, code: str, **extra) -> None:
    conn.write_obj({"type": "notice", "code": code, **extra})


async def _serve(conn: Conn, hub, receive) -> None:
    registry = get_registry()
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.disconnect":
            return
        if kind != "websocket.receive":
            continue
        text = message.get("text")
        if text is None or len(text) > MAX_FRAME_CHARS:
            _notice(conn, "bad_frame")
            continue
        try:
            data = json.loads(text)
        except ValueError:
            _notice(conn, "bad_frame")
            continue
        if not isinstance(data, dict):
            _notice(conn, "bad_frame")
            continue
        event_type = data.get("type")
        if event_type == "chat":
            body = data.get("text")
            if not isinstance(body, str):
                _notice(conn, "bad_frame")
                continue
            await _chat(conn, registry, body)
        elif event_type == "like":
            count = data.get("count", 1)
            if type(count) is not int or not 1 <= count <= 100:
                _notice(conn, "bad_frame")
                continue
            hub.add_likes(conn, count)
            if not conn.is_staff:
                crm_buffer.add_likes(
                    org_id=conn.org_id,
                    contact_id=conn.contact_id,
                    room_id=conn.room_id,
                    count=count,
                )
        elif event_type == "resume":
            after = data.get("after_seq")
            if type(after) is not int or after < 0:
                _notice(conn, "bad_frame")
                continue
            await hub.resume(conn, after)
        elif event_type == "ping":
            conn.write_obj({"type": "pong"})
        elif event_type in PRIORITY_TYPES:
            # Priority events come from services (pin, coupon, draw, …), never from a socket.
            _notice(conn, "forbidden", about=event_type)
        else:
            _notice(conn, "unknown_type")


async def _chat(conn: Conn, registry, text: str) -> None:
    author = ChatAuthor(
        org_id=conn.org_id,
        contact_id=conn.contact_id,
        user_id=conn.user_id,
        nickname=conn.nickname,
        device=conn.device,
        ip=conn.ip,
    )
    # One chat at a time per socket: a sender's messages keep their order.
    try:
        if registry.chat_worker is not None:
            reply = await registry.chat_worker.post(room_id=conn.room_id, author=author, text=text)
        else:
            reply = await registry.run_db(
                chat_post_reply, room_id=conn.room_id, author=author, text=text
            )
    except Exception:  # noqa: BLE001 - database/child unavailable: the socket stays open
        log.exception("chat from socket failed")
        reply = {"code": "error"}
    if reply:
        message = {"message": reply["message"]} if "message" in reply else {}
        _notice(conn, reply["code"], **message, **(reply.get("extra") or {}))


async def _staff_token_error(registry, claims: StaffClaims) -> int:
    """0 when the staff token is still current, else the close code.

    A signed staff token stays valid until it expires, but sign-out bumps the membership's
    token generation; like the HTTP path, sockets compare it (one query per staff connect —
    staff are few; viewers never pay it). Open staff sockets are re-checked by the hub.
    """
    try:
        current = await registry.run_db(staff_generations, {(claims.org_id, claims.user_id)})
    except Exception:  # noqa: BLE001 - database unavailable
        log.exception("staff token check failed")
        return 1011
    if current.get((claims.org_id, claims.user_id)) != claims.generation:
        return CLOSE_BAD_TOKEN
    return 0


async def staff_socket(scope, receive, send) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    claims, error = _authenticate(scope)
    if claims is None or not isinstance(claims, StaffClaims):
        await _refuse(send, error or CLOSE_BAD_TOKEN)
        return
    registry = get_registry()
    error = await _staff_token_error(registry, claims)
    if error:
        await _refuse(send, error)
        return
    await send({"type": "websocket.accept"})
    conn = Conn(
        send=send,
        room_id=0,
        org_id=claims.org_id,
        contact_id=None,
        user_id=claims.user_id,
        is_staff=True,
        generation=claims.generation,
    )
    registry.attach_staff(conn)
    conn.write_obj({"type": "hello", "role": "staff"})
    try:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message["type"] == "websocket.receive":
                if message.get("text") and '"ping"' in message["text"]:
                    conn.write_obj({"type": "pong"})
                else:
                    _notice(conn, "unknown_type")
    finally:
        registry.detach_staff(conn)
