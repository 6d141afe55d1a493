"""Sequenced room events: publish, bounded log, subscriptions, counters, presence.

Two implementations with one interface:

- ``MemoryTransport`` — the embedded default (one process). Thread-safe: services publish
  from request threads and from the in-process task runner's worker threads; delivery to
  the hubs is handed to the event loop with ``call_soon_threadsafe``.
- ``RedisTransport`` — production (``REDIS_URL`` set). A Lua script assigns the seq,
  appends to the per-room log and PUBLISHes atomically, so the log order is the delivery
  order and any process (ASGI or a Celery worker) can publish. Each ASGI process holds one
  pub/sub connection and subscribes to each room it serves once.

Seq numbers are ``max(previous + 1, now in ms)``: strictly increasing, and still increasing
after a Redis restart or a process restart wipes the counter — so "newer than my state"
stays true for every client. Consecutive seqs are not contiguous; completeness is judged
by the log's ``base`` (the seq just before the oldest event the log still holds).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
import uuid
from collections.abc import Callable

import redis
import redis.asyncio as aredis
from django.conf import settings

from livecommerce.realtime import frames

log = logging.getLogger(__name__)

RoomCallback = Callable[[int, str], None]

# A process whose presence report is older than this is gone (killed, machine lost): its
# viewers stop counting and its set of contacts is dropped.
_STALE_MS = 5000


def _now_ms() -> int:
    return int(time.time() * 1000)


class _MemRoom:
    __slots__ = ("seq", "log", "base", "likes", "online", "peak", "present")

    def __init__(self):
        self.seq = 0
        self.log: collections.deque[tuple[int, str]] = collections.deque()
        self.base: int | None = None
        self.likes = 0
        self.online = 0
        self.peak = 0
        self.present: set[int] = set()


class MemoryTransport:
    """Single-process transport (embedded default and the fast test tier)."""

    kind = "memory"

    def __init__(self, *, log_size: int):
        self.log_size = log_size
        self._lock = threading.Lock()
        self._rooms: dict[int, _MemRoom] = collections.defaultdict(_MemRoom)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_room: RoomCallback | None = None
        self._on_staff: Callable[[str], None] | None = None
        self._subscribed: set[int] = set()

    # -- publishing (any thread) ------------------------------------------------------
    def _append(self, room_id: int, header: str, body_json: str) -> tuple[int, str]:
        room = self._rooms[room_id]
        seq = max(room.seq + 1, _now_ms())
        if room.base is None:
            room.base = seq - 1
        room.seq = seq
        message = header + frames.with_seq(seq, body_json)
        room.log.append((seq, message))
        while len(room.log) > self.log_size:
            room.base = room.log.popleft()[0]
        return seq, message

    def publish(
        self, room_id: int, *, type: str, audience: str, contact_id: int | None, body: dict
    ) -> int:
        header, body_json = frames.envelope(
            type=type, audience=audience, contact_id=contact_id, body=body
        )
        with self._lock:
            seq, message = self._append(room_id, header, body_json)
        self._deliver(room_id, message)
        return seq

    async def apublish(self, room_id: int, **kwargs) -> int:
        return self.publish(room_id, **kwargs)

    def _deliver(self, room_id: int, message: str) -> None:
        loop, callback = self._loop, self._on_room
        if loop is None or callback is None or room_id not in self._subscribed:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            callback(room_id, message)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(callback, room_id, message)

    def publish_staff(self, message: str) -> None:
        loop, callback = self._loop, self._on_staff
        if loop is None or callback is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(callback, message)

    # -- reads (any thread) -------------------------------------------------------------
    def current_seq(self, room_id: int) -> int:
        with self._lock:
            return self._rooms[room_id].seq if room_id in self._rooms else 0

    def likes(self, room_id: int) -> int:
        with self._lock:
            return self._rooms[room_id].likes if room_id in self._rooms else 0

    def history(self, room_id: int, after_seq: int) -> tuple[list[str], bool]:
        with self._lock:
            if room_id not in self._rooms:
                return [], False
            room = self._rooms[room_id]
            complete = room.base is not None and after_seq >= room.base
            return [m for s, m in room.log if s > after_seq], complete

    async def ahistory(self, room_id: int, after_seq: int) -> tuple[list[str], bool]:
        return self.history(room_id, after_seq)

    def online_count(self, room_id: int) -> int:
        with self._lock:
            return self._rooms[room_id].online if room_id in self._rooms else 0

    def peak_online(self, room_id: int) -> int:
        with self._lock:
            return self._rooms[room_id].peak if room_id in self._rooms else 0

    def present_contact_ids(self, room_id: int) -> set[int]:
        with self._lock:
            if room_id not in self._rooms:
                return set()
            return set(self._rooms[room_id].present)

    # -- hub side (event loop) ------------------------------------------------------------
    async def start(self, *, on_room: RoomCallback, on_staff, on_resync) -> None:
        self._loop = asyncio.get_running_loop()
        self._on_room, self._on_staff = on_room, on_staff

    async def stop(self) -> None:
        self._loop = None
        self._subscribed.clear()

    async def subscribe(self, room_id: int) -> None:
        self._subscribed.add(room_id)

    async def unsubscribe(self, room_id: int) -> None:
        self._subscribed.discard(room_id)

    async def add_likes(self, room_id: int, delta: int) -> None:
        with self._lock:
            room = self._rooms[room_id]
            room.likes += delta
            header, body_json = frames.envelope(
                type="like",
                audience="all",
                contact_id=None,
                body={"count": room.likes, "delta": delta},
            )
            _seq, message = self._append(room_id, header, body_json)
        self._deliver(room_id, message)

    async def report_presence(
        self,
        room_id: int,
        *,
        count: int,
        added: list[int],
        removed: list[int],
        members: list[int] | None = None,
    ) -> bool:
        """See ``RedisTransport.report_presence`` (one process: its count is the room's)."""
        message = None
        with self._lock:
            room = self._rooms[room_id]
            if members is not None:
                room.present = set(members)
            room.present.update(added)
            room.present.difference_update(removed)
            room.peak = max(room.peak, count)
            if count != room.online:
                room.online = count
                header, body_json = frames.envelope(
                    type="online",
                    audience="all",
                    contact_id=None,
                    body={"count": count},
                )
                _seq, message = self._append(room_id, header, body_json)
        if message:
            self._deliver(room_id, message)
        return True


# ----------------------------------------------------------------------------- Redis

_PUBLISH_LUA = """
local s = redis.call('INCR', KEYS[1])
local floor = tonumber(ARGV[2])
if s < floor then s = floor; redis.call('SET', KEYS[1], s) end
local ttl = tonumber(ARGV[4])
redis.call('EXPIRE', KEYS[1], ttl)
local body = ARGV[1]
if ARGV[5] ~= '' then
  local total = redis.call('INCRBY', KEYS[4], tonumber(ARGV[5]))
  redis.call('EXPIRE', KEYS[4], ttl)
  body = '{"type":"like","count":' .. string.format('%d', total) .. ',"delta":' .. ARGV[5] .. '}'
end
local msg = ARGV[6] .. '{"seq":' .. string.format('%d', s) .. ',' .. string.sub(body, 2)
if redis.call('EXISTS', KEYS[2]) == 0 and redis.call('EXISTS', KEYS[3]) == 0 then
  redis.call('SET', KEYS[3], string.format('%d', s - 1), 'EX', ttl)
end
redis.call('LPUSH', KEYS[2], msg)
local size = tonumber(ARGV[3])
if redis.call('LLEN', KEYS[2]) > size then
  local old = redis.call('RPOP', KEYS[2])
  local oldseq = string.match(old, '{"seq":(%d+),')
  redis.call('SET', KEYS[3], oldseq, 'EX', ttl)
end
redis.call('EXPIRE', KEYS[2], ttl)
redis.call('EXPIRE', KEYS[3], ttl)
redis.call('PUBLISH', KEYS[5], msg)
return s
"""

# One process's report: apply its changes to its set of present contacts, refresh its
# count, drop processes that stopped reporting (killed, or their machine is gone), and count
# the distinct viewers of the room: with viewers on more than one process, the size of the
# union of the fresh processes' sets — a viewer watching on two devices served by two
# processes (or reconnected from a dead process to a live one) is one viewer, as within a
# process. Publishes (returns -1 - total) when the total changed. Also returns whether this
# process's set holds as many contacts as it counts (not after a Redis restart or an expiry:
# the process then sends its whole list). The per-process keys are derived from ARGV[7]
# (one Redis, not Cluster: every hub key of a room lives on the same server).
_PRESENCE_LUA = """
local now = tonumber(ARGV[1])
local stale = tonumber(ARGV[2])
local ttl = tonumber(ARGV[5])
local who = ARGV[7]
local mine = who .. ARGV[3]
if ARGV[6] == '1' then redis.call('DEL', mine) end
local nadd = tonumber(ARGV[8])
for i = 9, 8 + nadd do redis.call('SADD', mine, ARGV[i]) end
for i = 9 + nadd, #ARGV do redis.call('SREM', mine, ARGV[i]) end
redis.call('EXPIRE', mine, 30)
local in_sync = redis.call('SCARD', mine) == tonumber(ARGV[4])
redis.call('HSET', KEYS[1], ARGV[3], ARGV[4] .. ':' .. ARGV[1])
local total = 0
local watched = {}
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local n, t = string.match(fields[i + 1], '(%d+):(%d+)')
  if tonumber(t) < now - stale then
    redis.call('HDEL', KEYS[1], fields[i])
    redis.call('DEL', who .. fields[i])
  else
    total = total + tonumber(n)
    if tonumber(n) > 0 then table.insert(watched, who .. fields[i]) end
  end
end
if #watched > 1 then
  redis.call('SUNIONSTORE', KEYS[4], unpack(watched))
  total = redis.call('SCARD', KEYS[4])
  redis.call('DEL', KEYS[4])
end
redis.call('EXPIRE', KEYS[1], ttl)
local peak = tonumber(redis.call('GET', KEYS[3]) or '0')
if total > peak then peak = total; redis.call('SET', KEYS[3], peak, 'EX', ttl) end
local last = redis.call('GET', KEYS[2])
local result = total
if last ~= string.format('%d', total) then
  redis.call('SET', KEYS[2], total, 'EX', ttl)
  result = -1 - total
end
return {result, in_sync and 1 or 0}
"""


class RedisTransport:
    """Multi-process transport on Redis (production and the integration tier)."""

    kind = "redis"

    def __init__(self, *, url: str, prefix: str, log_size: int, ttl: int = 86400):
        self.url, self.prefix, self.log_size, self.ttl = url, prefix, log_size, ttl
        self.process_id = uuid.uuid4().hex[:12]
        self._sync = redis.Redis.from_url(
            url, socket_timeout=2, socket_connect_timeout=2, health_check_interval=10
        )
        self._sync_publish = self._sync.register_script(_PUBLISH_LUA)
        self._async = None
        self._async_publish = None
        self._async_presence = None
        self._pubsub = None
        self._listener: asyncio.Task | None = None
        self._rooms: set[int] = set()
        self._on_room: RoomCallback | None = None
        self._on_staff = None
        self._on_resync = None

    # keys -------------------------------------------------------------------------------
    def _k(self, kind: str, room_id: int) -> str:
        return f"{self.prefix}:rt:{kind}:{room_id}"

    def channel(self, room_id: int) -> str:
        return self._k("ch", room_id)

    @property
    def staff_channel(self) -> str:
        return f"{self.prefix}:rt:staff"

    def _publish_args(self, room_id: int, header: str, body_json: str, likes: int | None):
        keys = [
            self._k("seq", room_id),
            self._k("log", room_id),
            self._k("base", room_id),
            self._k("likes", room_id),
            self.channel(room_id),
        ]
        args = [
            body_json,
            _now_ms(),
            self.log_size,
            self.ttl,
            "" if likes is None else str(int(likes)),
            header,
        ]
        return keys, args

    # publishing ---------------------------------------------------------------------------
    def publish(
        self, room_id: int, *, type: str, audience: str, contact_id: int | None, body: dict
    ) -> int:
        header, body_json = frames.envelope(
            type=type, audience=audience, contact_id=contact_id, body=body
        )
        keys, args = self._publish_args(room_id, header, body_json, None)
        return int(self._sync_publish(keys=keys, args=args))

    async def apublish(
        self, room_id: int, *, type: str, audience: str, contact_id: int | None, body: dict
    ) -> int:
        header, body_json = frames.envelope(
            type=type, audience=audience, contact_id=contact_id, body=body
        )
        keys, args = self._publish_args(room_id, header, body_json, None)
        return int(await self._async_publish(keys=keys, args=args))

    def publish_staff(self, message: str) -> None:
        self._sync.publish(self.staff_channel, message)

    async def add_likes(self, room_id: int, delta: int) -> None:
        header = "like|all||"
        keys, args = self._publish_args(room_id, header, "{}", delta)
        await self._async_publish(keys=keys, args=args)

    # reads ----------------------------------------------------------------------------------
    def current_seq(self, room_id: int) -> int:
        return int(self._sync.get(self._k("seq", room_id)) or 0)

    def likes(self, room_id: int) -> int:
        return int(self._sync.get(self._k("likes", room_id)) or 0)

    @staticmethod
    def _history(raw_log, base, after_seq: int) -> tuple[list[str], bool]:
        messages = []
        for item in reversed(raw_log):  # the list is newest first
            message = item.decode()
            raw = message.split("|", 3)[3]
            if frames.seq_of(raw) > after_seq:
                messages.append(message)
        complete = base is not None and after_seq >= int(base)
        return messages, complete

    def history(self, room_id: int, after_seq: int) -> tuple[list[str], bool]:
        pipe = self._sync.pipeline(transaction=True)
        pipe.lrange(self._k("log", room_id), 0, -1)
        pipe.get(self._k("base", room_id))
        raw_log, base = pipe.execute()
        return self._history(raw_log, base, after_seq)

    async def ahistory(self, room_id: int, after_seq: int) -> tuple[list[str], bool]:
        async with self._async.pipeline(transaction=True) as pipe:
            pipe.lrange(self._k("log", room_id), 0, -1)
            pipe.get(self._k("base", room_id))
            raw_log, base = await pipe.execute()
        return self._history(raw_log, base, after_seq)

    def online_count(self, room_id: int) -> int:
        """The distinct viewers the last report counted (what ``online`` events carry), or 0
        when no process has reported lately."""
        now = _now_ms()
        pipe = self._sync.pipeline(transaction=False)
        pipe.hvals(self._k("pres", room_id))
        pipe.get(self._k("online", room_id))
        reports, online = pipe.execute()
        if not any(int(v.decode().partition(":")[2]) >= now - _STALE_MS for v in reports):
            return 0
        return int(online or 0)

    def peak_online(self, room_id: int) -> int:
        return int(self._sync.get(self._k("peak", room_id)) or 0)

    def present_contact_ids(self, room_id: int) -> set[int]:
        now = _now_ms()
        processes = [
            field.decode()
            for field, value in self._sync.hgetall(self._k("pres", room_id)).items()
            if int(value.decode().partition(":")[2]) >= now - _STALE_MS
        ]
        if not processes:
            return set()
        keys = [f"{self._k('who', room_id)}:{p}" for p in processes]
        return {int(m) for m in self._sync.sunion(keys)}

    # hub side -------------------------------------------------------------------------------
    async def start(self, *, on_room: RoomCallback, on_staff, on_resync) -> None:
        self._on_room, self._on_staff, self._on_resync = on_room, on_staff, on_resync
        self._async = aredis.Redis.from_url(
            self.url,
            max_connections=settings.REALTIME_REDIS_MAX_CONNECTIONS,
            socket_connect_timeout=2,
            socket_timeout=5,
        )
        self._async_publish = self._async.register_script(_PUBLISH_LUA)
        self._async_presence = self._async.register_script(_PRESENCE_LUA)
        self._listener = asyncio.get_running_loop().create_task(self._listen())

    async def stop(self) -> None:
        if self._listener:
            self._listener.cancel()
            try:
                await self._listener
            except (asyncio.CancelledError, Exception):  # noqa: BLE001, S110
                pass
        if self._async is not None:
            await self._async.aclose()

    async def subscribe(self, room_id: int) -> None:
        self._rooms.add(room_id)
        if self._pubsub is not None:
            try:
                await self._pubsub.subscribe(self.channel(room_id))
            except Exception:  # noqa: BLE001 - the listener resubscribes after reconnecting
                log.warning("subscribe to room %s failed; will retry", room_id)

    async def unsubscribe(self, room_id: int) -> None:
        self._rooms.discard(room_id)
        if self._pubsub is not None:
            try:
                await self._pubsub.unsubscribe(self.channel(room_id))
            except Exception:  # noqa: BLE001, S110
                pass

    async def _listen(self) -> None:
        """Own the pub/sub connection: (re)connect, (re)subscribe, dispatch.

        After a lost connection nothing published meanwhile can be recovered from pub/sub,
        so once subscribed again the hubs tell their sockets to resync (``on_resync``).
        """
        delay = 0.2
        first = True
        while True:
            pubsub = self._async.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(
                    self.staff_channel, *[self.channel(r) for r in list(self._rooms)]
                )
                self._pubsub = pubsub
                if not first:
                    log.warning("room hub pub/sub reconnected")
                    self._on_resync()
                first = False
                delay = 0.2
                # ``listen()`` blocks on the next message; ``get_message(timeout=1.0)`` set up
                # an asyncio timeout per message (1-4 % of a hub server's fan-out CPU at
                # 3,000 viewers, docs/bench/fanout.md). Subscribe replies are dropped by
                # ``ignore_subscribe_messages``; a lost connection raises as before.
                async for message in pubsub.listen():
                    channel = message["channel"].decode()
                    data = message["data"].decode()
                    if channel == self.staff_channel:
                        self._on_staff(data)
                    else:
                        self._on_room(int(channel.rsplit(":", 1)[1]), data)
                # listen() only ends when nothing is subscribed any more: start over.
                raise ConnectionError("pub/sub has no subscriptions left")
            except asyncio.CancelledError:
                await self._close_pubsub(pubsub)
                raise
            except Exception as exc:  # noqa: BLE001 - Redis down or restarting: retry
                log.warning("room hub pub/sub lost (%s); reconnecting", type(exc).__name__)
                self._pubsub = None
                await self._close_pubsub(pubsub)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    @staticmethod
    async def _close_pubsub(pubsub) -> None:
        try:
            await pubsub.aclose()
        except Exception:  # noqa: BLE001, S110
            pass

    async def report_presence(
        self,
        room_id: int,
        *,
        count: int,
        added: list[int],
        removed: list[int],
        members: list[int] | None = None,
    ) -> bool:
        """Report this process's ``count`` distinct viewers of the room: ``added`` are present
        now, ``removed`` gone now, since the last report; ``members`` (when given) is the
        whole list, replacing what Redis holds. False when Redis does not hold as many of
        this process's contacts as it counts: the next report should send ``members``."""
        result, in_sync = await self._async_presence(
            keys=[
                self._k("pres", room_id),
                self._k("online", room_id),
                self._k("peak", room_id),
                f"{self._k('who', room_id)}:union:{self.process_id}",
            ],
            args=[
                _now_ms(),
                _STALE_MS,
                self.process_id,
                count,
                self.ttl,
                "1" if members is not None else "0",
                f"{self._k('who', room_id)}:",
                len(added) + len(members or ()),
                *added,
                *(members or ()),
                *removed,
            ],
        )
        result = int(result)
        if result < 0:  # the total changed: publish it as a sequenced event
            await self.apublish(
                room_id, type="online", audience="all", contact_id=None, body={"count": -1 - result}
            )
        return bool(in_sync)


_transport = None
_transport_lock = threading.Lock()


def get_transport():
    """The process's transport: Redis when ``REALTIME_REDIS_URL`` is set, else in-memory."""
    global _transport
    with _transport_lock:
        if _transport is None:
            if settings.REALTIME_REDIS_URL:
                _transport = RedisTransport(
                    url=settings.REALTIME_REDIS_URL,
                    prefix=settings.REALTIME_PREFIX,
                    log_size=settings.REALTIME_LOG_SIZE,
                )
            else:
                _transport = MemoryTransport(log_size=settings.REALTIME_LOG_SIZE)
        return _transport


def reset_transport() -> None:
    """Forget the process transport (tests that change settings)."""
    global _transport
    with _transport_lock:
        _transport = None
