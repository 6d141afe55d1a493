"""One hub per room per process: tick, shape, encode once, write the same bytes everywhere.

Hot-path rules (docs/realtime.md, "Hub design"; figures in docs/bench/fanout.md):
- one frame per tick per audience, WebSocket header included, written straight to each
  socket's asyncio transport (uvicorn's protocol object exposes it); ``await send(...)``
  per socket is only the fallback for servers that hide their transport;
- a socket whose transport buffer is above ``REALTIME_SLOW_SOCKET_BYTES`` skips frames
  (it resumes from the log or refetches state) instead of buffering without bound;
- likes and presence are counters: one Redis call per tick / per second per process;
- chat above ``REALTIME_CHAT_RATE`` is sampled for viewers; staff sockets get everything;
  priority events are never sampled or dropped.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.db import close_old_connections

from core.models import Membership
from livecommerce.models import Room
from livecommerce.realtime import frames
from livecommerce.realtime.bans import Ban, OrgBans, load_org_bans
from livecommerce.realtime.chat_worker import ChatWorker
from livecommerce.realtime.crm import buffer
from livecommerce.realtime.crm import buffer as crm_buffer
from livecommerce.realtime.transport import get_transport

log = logging.getLogger(__name__)

_conn_ids = itertools.count(1)

# Counter events: only the newest one of a tick matters (each carries the room total).
_COUNTERS = ("like", "online")

_SLOW_SOCKET_BYTES: int | None = None


def _slow_socket_bytes() -> int:
    # Read once: a Django settings lookup per socket per tick was ~4 % of the tick's CPU.
    global _SLOW_SOCKET_BYTES
    if _SLOW_SOCKET_BYTES is None:
        _SLOW_SOCKET_BYTES = settings.REALTIME_SLOW_SOCKET_BYTES
    return _SLOW_SOCKET_BYTES


class Conn:
    """One accepted WebSocket, as the hub sees it."""

    __slots__ = (
        "id",
        "send",
        "transport",
        "room_id",
        "org_id",
        "contact_id",
        "user_id",
        "is_staff",
        "nickname",
        "device",
        "ip",
        "joined",
        "closed",
        "resume_buffer",
        "mailbox",
        "mailbox_ready",
        "sender",
        "skipped",
        "likes",
        "generation",
    )

    def __init__(
        self,
        *,
        send,
        room_id: int,
        org_id: int,
        contact_id: int | None,
        user_id: int | None,
        is_staff: bool,
        nickname: str = "",
        device: str = "",
        ip: str = "",
        generation: int = 0,
    ):
        self.id = next(_conn_ids)
        self.send = send
        protocol = getattr(send, "__self__", None)
        transport = getattr(protocol, "transport", None)
        # Raw writes need a plain asyncio transport (uvicorn's websockets-sansio and wsproto
        # protocols have one); anything else goes through ``await send(...)``.
        self.transport = transport if hasattr(transport, "get_write_buffer_size") else None
        self.room_id, self.org_id = room_id, org_id
        self.contact_id, self.user_id, self.is_staff = contact_id, user_id, is_staff
        self.nickname, self.device, self.ip = nickname, device, ip
        self.joined = time.time()
        self.closed = False
        self.resume_buffer: list[bytes] | None = None
        self.mailbox: list[str] = []
        self.mailbox_ready: asyncio.Event | None = None
        self.sender: asyncio.Task | None = None
        self.skipped = 0
        self.likes = 0
        self.generation = generation  # staff token generation (re-checked periodically)

    # -- writing -------------------------------------------------------------------------
    def write(self, frame: bytes, text: str) -> None:
        """Write one pre-built frame (``text`` is its payload, for the fallback path)."""
        if self.closed:
            return
        if self.resume_buffer is not None:
            self.resume_buffer.append(text)
            return
        transport = self.transport
        if transport is not None:
            if transport.is_closing():
                return
            if transport.get_write_buffer_size() > _slow_socket_bytes():
                self.skipped += 1
                return
            transport.write(frame)
            return
        if len(self.mailbox) >= 64:  # the fallback's slow-socket guard
            self.skipped += 1
            return
        self.mailbox.append(text)
        if self.sender is None:
            self.mailbox_ready = asyncio.Event()
            self.sender = asyncio.get_running_loop().create_task(self._drain())
        self.mailbox_ready.set()

    def write_obj(self, obj: dict) -> None:
        text = frames.dumps(obj)
        self.write(frames.ws_text_frame(text.encode()), text)

    async def _drain(self) -> None:
        try:
            while not self.closed:
                await self.mailbox_ready.wait()
                self.mailbox_ready.clear()
                while self.mailbox:
                    text = self.mailbox.pop(0)
                    await self.send({"type": "websocket.send", "text": text})
        except Exception:  # noqa: BLE001 - the socket went away
            self.closed = True

    def end_resume(self) -> None:
        buffered, self.resume_buffer = self.resume_buffer or [], None
        for text in buffered:
            self.write(frames.ws_text_frame(text.encode()), text)


@dataclass
class _Event:
    seq: int
    type: str
    audience: str
    contact_id: int | None
    raw: str


class RoomHub:
    def __init__(self, registry: HubRegistry, room_id: int, org_id: int):
        self.registry = registry
        self.room_id, self.org_id = room_id, org_id
        self.viewers: set[Conn] = set()
        self.staff: set[Conn] = set()
        self.by_contact: dict[int, set[Conn]] = {}
        self.pending: list[str] = []
        self.like_delta = 0
        self.last_seq = 0
        rate = settings.REALTIME_CHAT_RATE
        self.chat_tokens = float(rate)
        self.last_flush = time.monotonic()
        # Contacts whose presence in this process changed since the last report (joined with
        # no socket open before, or closed their last one). The report sends where each one
        # stands *now*: a viewer who left and came back within the second is still here.
        self.presence_changed: set[int] = set()
        self.presence_resend = False  # Redis lost this process's list: send all of it
        self.presence_dirty = True
        self.empty_since: float | None = None
        self.frames_sent = 0
        self.tick_ms = settings.REALTIME_TICK_MS
        self._hello: dict[bool, tuple[int, bytes, str]] = {}

    # -- membership ------------------------------------------------------------------------
    def attach(self, conn: Conn) -> None:
        if conn.is_staff:
            self.staff.add(conn)
        else:
            self.viewers.add(conn)
            if conn.contact_id is not None:
                group = self.by_contact.setdefault(conn.contact_id, set())
                if not group:
                    self.presence_changed.add(conn.contact_id)
                group.add(conn)
            self.presence_dirty = True
        self.empty_since = None
        hello = self._hello.get(conn.is_staff)
        if hello is None or hello[0] != self.last_seq:
            # Built once per role and seq: a join storm shares the bytes like a tick does.
            text = frames.dumps(
                {
                    "type": "hello",
                    "seq": self.last_seq,
                    "room": self.room_id,
                    "role": "host" if conn.is_staff else "viewer",
                    "tick_ms": self.tick_ms,
                }
            )
            hello = self._hello[conn.is_staff] = (
                self.last_seq,
                frames.ws_text_frame(text.encode()),
                text,
            )
        conn.write(hello[1], hello[2])

    def detach(self, conn: Conn) -> None:
        conn.closed = True
        self.registry.skipped_frames += conn.skipped
        if conn.sender is not None:
            conn.sender.cancel()
        if conn.is_staff:
            self.staff.discard(conn)
        else:
            self.viewers.discard(conn)
            group = self.by_contact.get(conn.contact_id)
            if group is not None:
                group.discard(conn)
                if not group:
                    del self.by_contact[conn.contact_id]
                    self.presence_changed.add(conn.contact_id)
            self.presence_dirty = True
        if not self.viewers and not self.staff:
            self.empty_since = time.monotonic()

    @property
    def online(self) -> int:
        return len(self.by_contact)

    # -- events in ----------------------------------------------------------------------------
    def on_message(self, envelope: str) -> None:
        self.pending.append(envelope)

    def add_likes(self, conn: Conn, count: int) -> None:
        self.like_delta += count
        conn.likes += count

    def notice_all(self, code: str) -> None:
        obj = {"type": "notice", "code": code}
        text = frames.dumps(obj)
        frame = frames.ws_text_frame(text.encode())
        for conn in itertools.chain(self.viewers, self.staff):
            conn.write(frame, text)

    # -- the tick ------------------------------------------------------------------------------
    def flush(self) -> None:
        now = time.monotonic()
        rate = settings.REALTIME_CHAT_RATE
        self.chat_tokens = min(float(rate), self.chat_tokens + rate * (now - self.last_flush))
        self.last_flush = now
        if self.like_delta:
            delta, self.like_delta = self.like_delta, 0
            self.registry.spawn(get_transport().add_likes(self.room_id, delta))
        if not self.pending:
            return
        envelopes, self.pending = self.pending, []
        events = []
        for envelope in envelopes:
            type_, audience, contact_id, raw = frames.split_envelope(envelope)
            events.append(_Event(frames.seq_of(raw), type_, audience, contact_id, raw))
        events.sort(key=lambda e: e.seq)
        if events[-1].seq > self.last_seq:
            self.last_seq = events[-1].seq
        # Counters: keep the newest of each kind only.
        newest = {}
        for index, event in enumerate(events):
            if event.type in _COUNTERS:
                newest[event.type] = index
        events = [e for i, e in enumerate(events) if e.type not in _COUNTERS or newest[e.type] == i]
        self._deliver(events)

    def _sample_chat(self, events: list[_Event]) -> set[int]:
        """Indexes of public chat events viewers get this tick (evenly spaced when over rate)."""
        chat = [i for i, e in enumerate(events) if e.type == "chat" and e.audience == "all"]
        budget = int(self.chat_tokens)
        if len(chat) <= budget:
            self.chat_tokens -= len(chat)
            return set(chat)
        self.chat_tokens -= budget
        if budget <= 0:
            return set()
        step = len(chat) / budget
        return {chat[int(k * step)] for k in range(budget)}

    def _deliver(self, events: list[_Event]) -> None:
        kept_chat = self._sample_chat(events)
        viewer_raws: list[str] = []
        host_raws: list[str] = []
        personal: dict[int, list[int]] = {}
        for index, event in enumerate(events):
            host_raws.append(event.raw)
            if event.audience == "all":
                if event.type != "chat" or index in kept_chat:
                    viewer_raws.append(event.raw)
            elif event.audience == "self" and event.contact_id is not None:
                personal.setdefault(event.contact_id, []).append(index)
        if host_raws and self.staff:
            text = frames.batch(host_raws)
            frame = frames.ws_text_frame(text.encode())
            for conn in self.staff:
                conn.write(frame, text)
        if viewer_raws:
            text = frames.batch(viewer_raws)
            frame = frames.ws_text_frame(text.encode())
            limit = _slow_socket_bytes()
            # The hot loop (one pass per viewer per tick): ``Conn.write`` inlined for the
            # common case — a raw transport, no resume in progress, no personal frame.
            for conn in self.viewers:
                if personal and conn.contact_id in personal:
                    continue  # gets its own frame below
                transport = conn.transport
                if transport is None or conn.resume_buffer is not None or conn.closed:
                    conn.write(frame, text)
                    continue
                if transport.is_closing():
                    continue
                backlog = transport.get_write_buffer_size()
                if backlog:
                    # Bytes still queued from earlier ticks: the viewer reads slower than we
                    # write (a queued write costs the loop a write watcher and a later send).
                    if backlog > limit:
                        conn.skipped += 1
                        continue
                    self.registry.backlogged_writes += 1
                transport.write(frame)
            self.frames_sent += len(self.viewers)
        for contact_id, indexes in personal.items():
            conns = self.by_contact.get(contact_id)
            if not conns:
                continue
            raws = [
                e.raw
                for i, e in enumerate(events)
                if i in indexes or (e.audience == "all" and (e.type != "chat" or i in kept_chat))
            ]
            text = frames.batch(raws)
            frame = frames.ws_text_frame(text.encode())
            for conn in conns:
                conn.write(frame, text)

    def close_banned(self, ban: Ban) -> None:
        """Close (4403) the sockets of viewers a new ban targets, if it covers this room."""
        if not ban.applies(room_id=self.room_id, now=time.time()):
            return
        for conn in list(self.viewers):
            if ban.targets(contact_id=conn.contact_id, device=conn.device, ip=conn.ip):
                conn.closed = True
                self.registry.spawn(_close(conn, 4403))

    # -- resume --------------------------------------------------------------------------------
    def filter_for(self, conn: Conn, envelopes: list[str]) -> list[str]:
        raws = []
        for envelope in envelopes:
            type_, audience, contact_id, raw = frames.split_envelope(envelope)
            if (
                conn.is_staff
                or audience == "all"
                or audience == "self"
                and contact_id == conn.contact_id
            ):
                raws.append(raw)
        return raws

    async def resume(self, conn: Conn, after_seq: int) -> None:
        """Send what ``conn`` missed after ``after_seq``, or tell it to refetch state.

        Live frames for this socket are held while the log is read, so an event is never
        skipped between the log and the live stream; the answer ends with a ``resumed``
        notice, and the client applies what it got until then in seq order, dropping
        duplicates.
        """
        conn.resume_buffer = []
        try:
            try:
                envelopes, complete = await get_transport().ahistory(self.room_id, after_seq)
            except Exception:  # noqa: BLE001 - transport down: the client refetches state
                envelopes, complete = [], False
            if not complete:
                text = frames.dumps({"type": "notice", "code": "resync"})
                conn.resume_buffer, buffered = None, conn.resume_buffer
                conn.write(frames.ws_text_frame(text.encode()), text)
                conn.resume_buffer = buffered
                return
            raws = self.filter_for(conn, envelopes)
            held, conn.resume_buffer = conn.resume_buffer, None
            for start in range(0, len(raws), 200):
                text = '{"type":"batch","events":[' + ",".join(raws[start : start + 200]) + "]}"
                conn.write(frames.ws_text_frame(text.encode()), text)
            # Always closes the answer: frames that reached this socket between its opening
            # and its resume request are newer than some of the batch, so the client holds
            # everything until this notice and applies it in seq order (static/shared/ws.js).
            conn.write_obj({"type": "notice", "code": "resumed", "seq": after_seq})
            conn.resume_buffer = held
        finally:
            conn.end_resume()


async def _close(conn: Conn, code: int) -> None:
    try:
        await conn.send({"type": "websocket.close", "code": code})
    except Exception:  # noqa: BLE001, S110
        pass


@dataclass(frozen=True)
class RoomInfo:
    org_id: int


class HubRegistry:
    """Every hub of this process, the tick loop, presence reporting and staff sockets."""

    def __init__(self):
        self.hubs: dict[int, RoomHub] = {}
        self.staff_conns: dict[tuple[int, int], set[Conn]] = {}
        self._rooms: dict[int, RoomInfo | None] = {}
        self._room_loads: dict[int, asyncio.Future] = {}
        self.bans: dict[int, OrgBans] = {}
        self._ban_loads: dict[int, asyncio.Future] = {}
        self._loading_bans: dict[int, OrgBans] = {}
        self._tasks: set[asyncio.Task] = set()
        self._loops: list[asyncio.Task] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.executor = ThreadPoolExecutor(
            max_workers=settings.REALTIME_DB_THREADS, thread_name_prefix="qm-hub-db"
        )
        self.ticks = 0
        self.tick_overruns = 0
        self.lag_max = 0.0  # how late a tick fired (event-loop lag), seconds
        self.lag_sum = 0.0
        self.skipped_frames = 0  # slow-socket guard, summed when sockets leave
        self.backlogged_writes = 0  # tick frames queued behind unsent bytes
        self.frames_written_closed = 0  # frames_sent of hubs already dropped
        self.chat_worker: ChatWorker | None = None

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        if settings.REALTIME_CHAT_WORKER == "process" and get_transport().kind == "redis":
            # Chat from sockets is posted by a child process (see realtime.chat_worker);
            # only with Redis can the child's publish reach this process's hubs.
            self.chat_worker = ChatWorker(threads=settings.REALTIME_DB_THREADS)
            await self.chat_worker.start()
        await asyncio.get_running_loop().run_in_executor(None, crm_buffer.start_writer)
        await get_transport().start(
            on_room=self._on_room, on_staff=self._on_staff, on_resync=self._on_resync
        )
        self._loops = [
            self.loop.create_task(self._ticker()),
            self.loop.create_task(self._presence()),
            self.loop.create_task(self._staff_recheck()),
        ]

    def stats(self) -> dict:
        return {
            "ticks": self.ticks,
            "tick_overruns": self.tick_overruns,
            "loop_lag_max_ms": round(self.lag_max * 1000, 1),
            "loop_lag_mean_ms": round(1000 * self.lag_sum / max(1, self.ticks), 2),
            "skipped_frames": self.skipped_frames,
            "viewer_frames_written": self.frames_written_closed
            + sum(hub.frames_sent for hub in self.hubs.values()),
            "backlogged_writes": self.backlogged_writes,
        }

    async def stop(self) -> None:
        log.info("room hub stats %s", json.dumps(self.stats()))
        for task in self._loops:
            task.cancel()
        for task in self._loops:
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001, S110
                pass
        await get_transport().stop()
        if self.chat_worker is not None:
            await self.chat_worker.stop()
        self.executor.shutdown(wait=False, cancel_futures=True)

    def spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("room hub background call failed: %r", task.exception())

    async def run_db(self, fn, *args, **kwargs):
        """Run sync ORM code on the hub's small thread pool (never on the event loop)."""

        def call():
            close_old_connections()
            try:
                return fn(*args, **kwargs)
            finally:
                close_old_connections()

        return await asyncio.get_running_loop().run_in_executor(self.executor, call)

    # -- rooms --------------------------------------------------------------------------------
    async def room_info(self, room_id: int) -> RoomInfo | None:
        """The room's organisation, loaded once per process (join storms never hit the DB)."""
        if room_id in self._rooms:
            return self._rooms[room_id]
        future = self._room_loads.get(room_id)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._room_loads[room_id] = future
            try:
                info = await self.run_db(_load_room_info, room_id)
            except Exception as exc:  # noqa: BLE001
                del self._room_loads[room_id]
                future.set_exception(exc)
                raise
            self._rooms[room_id] = info
            del self._room_loads[room_id]
            future.set_result(info)
            return info
        return await future

    async def org_bans(self, org_id: int) -> OrgBans:
        """The organisation's bans, loaded once per process (then kept by control messages)."""
        bans = self.bans.get(org_id)
        if bans is not None:
            return bans
        future = self._ban_loads.get(org_id)
        if future is not None:
            return await asyncio.shield(future)
        future = self._ban_loads[org_id] = asyncio.get_running_loop().create_future()
        # Control messages that arrive during the load apply to this object; the rows
        # loaded are merged in afterwards (bans lifted meanwhile stay lifted).
        bans = self._loading_bans[org_id] = OrgBans()
        try:
            rows = await self.run_db(load_org_bans, org_id)
        except Exception as exc:  # noqa: BLE001
            del self._ban_loads[org_id]
            del self._loading_bans[org_id]
            future.set_exception(exc)
            future.exception()  # retrieved: waiters get it, nobody logs it twice
            raise
        for ban in rows:
            bans.add(ban)
        self.bans[org_id] = bans
        del self._ban_loads[org_id]
        del self._loading_bans[org_id]
        future.set_result(bans)
        return bans

    def _on_bans(self, org_id: int, data: dict) -> None:
        bans = self.bans.get(org_id) or self._loading_bans.get(org_id)
        added = [Ban.from_message(b) for b in data.get("add") or []]
        if bans is not None:
            for ban_id in data.get("lift") or []:
                bans.lift(int(ban_id))
            for ban in added:
                bans.add(ban)
        for hub in self.hubs.values():
            if hub.org_id == org_id:
                for ban in added:
                    hub.close_banned(ban)

    async def hub_for(self, room_id: int, org_id: int) -> RoomHub:
        hub = self.hubs.get(room_id)
        if hub is None:
            hub = self.hubs[room_id] = RoomHub(self, room_id, org_id)
            await get_transport().subscribe(room_id)
        return hub

    def _on_room(self, room_id: int, envelope: str) -> None:
        hub = self.hubs.get(room_id)
        if hub is not None:
            hub.on_message(envelope)

    def _on_resync(self) -> None:
        # Control messages published while pub/sub was down are lost: reload the ban lists
        # (one query per organisation at its next join) rather than trust stale ones.
        self.bans.clear()
        for hub in self.hubs.values():
            hub.notice_all("resync")

    # -- staff notifications ------------------------------------------------------------------
    def attach_staff(self, conn: Conn) -> None:
        self.staff_conns.setdefault((conn.org_id, conn.user_id), set()).add(conn)

    def detach_staff(self, conn: Conn) -> None:
        conn.closed = True
        group = self.staff_conns.get((conn.org_id, conn.user_id))
        if group is not None:
            group.discard(conn)
            if not group:
                del self.staff_conns[(conn.org_id, conn.user_id)]

    def staff_sockets(self) -> list[Conn]:
        conns = [c for group in self.staff_conns.values() for c in group]
        for hub in self.hubs.values():
            conns.extend(hub.staff)
        return conns

    def _on_staff(self, message: str) -> None:
        """A staff notification, or a hub control message (``ctl``) on the same channel."""
        try:
            data = json.loads(message)
            if "ctl" in data:
                if data["ctl"] == "bans":
                    self._on_bans(int(data["o"]), data)
                return
            conns = self.staff_conns.get((int(data["o"]), int(data["u"])))
        except (ValueError, KeyError, TypeError):
            return
        if conns:
            text = frames.dumps(data["e"])
            frame = frames.ws_text_frame(text.encode())
            for conn in conns:
                conn.write(frame, text)

    # -- loops --------------------------------------------------------------------------------
    async def _ticker(self) -> None:
        loop = asyncio.get_running_loop()
        tick = settings.REALTIME_TICK_MS / 1000
        next_at = loop.time()
        while True:
            next_at += tick
            delay = next_at - loop.time()
            if delay < 0:  # stretched tick: do not try to catch up with a burst of frames
                self.tick_overruns += 1
                next_at = loop.time()
                delay = 0
            await asyncio.sleep(delay)
            lag = loop.time() - next_at
            self.lag_max = max(self.lag_max, lag)
            self.lag_sum += max(0.0, lag)
            self.ticks += 1
            for hub in list(self.hubs.values()):
                try:
                    hub.flush()
                except Exception:  # noqa: BLE001 - one room's bug must not stop the others
                    log.exception("room %s flush failed", hub.room_id)

    async def _presence(self) -> None:
        while True:
            await asyncio.sleep(settings.REALTIME_PRESENCE_SECONDS)
            now = time.monotonic()
            for room_id, hub in list(self.hubs.items()):
                if hub.empty_since is not None and now - hub.empty_since > 30:
                    del self.hubs[room_id]
                    self.frames_written_closed += hub.frames_sent
                    await get_transport().unsubscribe(room_id)
                    hub.presence_dirty = True
                changed, hub.presence_changed = hub.presence_changed, set()
                present = hub.by_contact
                members = list(present) if hub.presence_resend else None
                try:
                    hub.presence_resend = not await get_transport().report_presence(
                        room_id,
                        count=hub.online,
                        added=[c for c in changed if c in present],
                        removed=[c for c in changed if c not in present],
                        members=members,
                    )
                except Exception:  # noqa: BLE001 - Redis away: report again next second
                    hub.presence_changed |= changed

    async def _staff_recheck(self) -> None:
        """Close staff sockets whose token was revoked (sign-out rotates the generation).

        The handshake checks the generation; this catches a revocation while connected,
        with one query per interval for all of this process's staff sockets.
        """
        while True:
            await asyncio.sleep(settings.REALTIME_STAFF_RECHECK_SECONDS)
            conns = [c for c in self.staff_sockets() if not c.closed]
            if not conns:
                continue
            try:
                current = await self.run_db(
                    staff_generations, {(c.org_id, c.user_id) for c in conns}
                )
            except Exception:  # noqa: BLE001 - database away: check again next time
                log.warning("staff token re-check failed", exc_info=True)
                continue
            for conn in conns:
                if current.get((conn.org_id, conn.user_id)) != conn.generation:
                    conn.closed = True
                    self.spawn(_close(conn, 4401))


def staff_generations(keys: set[tuple[int, int]]) -> dict[tuple[int, int], int]:
    """(org, user) → current token generation, for active users of active organisations."""

    rows = Membership.objects.filter(
        user_id__in={user for _org, user in keys}, user__is_active=True, org__is_active=True
    ).values_list("org_id", "user_id", "token_generation")
    return {(org, user): gen for org, user, gen in rows if (org, user) in keys}


def _load_room_info(room_id: int) -> RoomInfo | None:
    org_id = Room.unscoped.filter(pk=room_id).values_list("org_id", flat=True).first()
    return RoomInfo(org_id=org_id) if org_id is not None else None


_registry: HubRegistry | None = None


def get_registry() -> HubRegistry:
    global _registry
    if _registry is None:
        _registry = HubRegistry()
    return _registry


async def start_hubs() -> None:
    """ASGI lifespan start-up (registered through core.asgi.on_startup)."""
    global _registry
    if settings.REALTIME_GC_TUNING:
        # Thousands of sockets mean millions of small objects (protocol state, futures):
        # a full collection walks all of them and stalls every socket of the process.
        # Freeze what start-up allocated and collect the young generation less often.
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
    _registry = HubRegistry()
    await _registry.start()


async def stop_hubs() -> None:
    global _registry
    if _registry is not None:
        await _registry.stop()
        _registry = None

    await asyncio.get_running_loop().run_in_executor(None, buffer.shutdown)
