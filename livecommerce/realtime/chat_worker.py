"""Chat from sockets, posted by a child process (``REALTIME_CHAT_WORKER=process``).

``chat_post`` is ORM work (restrictions, rate, words, insert, publish). Run on a thread of
the ASGI process it holds that process's GIL, and every socket write of the hub's tick
then waits for it — the same convoy the CRM writer had (docs/bench/fanout.md). So with the
Redis transport each ASGI process starts one child (``python -m
livecommerce.realtime.chat_worker``) on first use and hands it each chat as one JSON line;
one thread of the child takes every line that has arrived (up to ``BATCH_MAX``) and posts
them together through ``chat_post_batch`` — the same rules as ``chat_post``, which is that
path with one message, but a fixed number of queries per batch, one multi-row insert, one
commit and the publishes after it in arrival order (docs/bench/fanout.md, 2026-12-08 01:00:
query building was half of a message's CPU). It answers one line per request: ``{"id",
"ok": true}`` or ``{"id", "code", "message", "extra"}`` — the author's notice. A socket
waits for its answer before its next chat, so a sender's order holds; one posting thread
keeps each room's order too.
The child exits when its stdin closes (the ASGI process is gone). With the in-memory
transport (embedded default, tests) a child could not reach the hub, so chat stays on the
hub's thread pool there.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import logging
import os
import queue
import sys
import threading

log = logging.getLogger("livecommerce.realtime.chat_worker")


class ChatWorker:
    """The ASGI process's side: start the child, send requests, route the answers."""

    def __init__(self, *, threads: int):
        self.threads = threads
        self.proc: asyncio.subprocess.Process | None = None
        self.pending: dict[int, asyncio.Future] = {}
        self.ids = itertools.count(1)
        self._starting = asyncio.Lock()
        self._reader: asyncio.Task | None = None

    async def start(self) -> asyncio.subprocess.Process:
        """Start the child (at hub start-up, so the first chat does not wait for it)."""
        async with self._starting:
            if self.proc is None or self.proc.returncode is not None:
                self.proc = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "livecommerce.realtime.chat_worker",
                    str(self.threads),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    # Its CRM events are written by its own thread: it is off the loop.
                    env={**os.environ, "REALTIME_CRM_WRITER": "thread"},
                    limit=1 << 20,
                )
                self._reader = asyncio.get_running_loop().create_task(self._read(self.proc))
            return self.proc

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        try:
            while line := await proc.stdout.readline():
                try:
                    reply = json.loads(line)
                except ValueError:
                    continue
                future = self.pending.pop(reply.get("id"), None)
                if future is not None and not future.done():
                    future.set_result(reply)
        finally:
            # The child is gone: its unanswered requests get the "error" notice.
            for future in self.pending.values():
                if not future.done():
                    future.set_result({"code": "error"})
            self.pending.clear()

    async def post(self, *, room_id: int, author, text: str) -> dict:
        """``chat_post`` in the child; ``{}`` when posted, else the author's notice."""
        proc = await self.start()  # restarts a child that died
        request_id = next(self.ids)
        future = asyncio.get_running_loop().create_future()
        self.pending[request_id] = future
        line = json.dumps(
            {
                "id": request_id,
                "room": room_id,
                "author": dataclasses.asdict(author),
                "text": text,
            },
            ensure_ascii=False,
        )
        proc.stdin.write(line.encode() + b"\n")
        await proc.stdin.drain()
        reply = await future
        return {} if reply.get("ok") else reply

    async def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
        if self._reader is not None:
            self._reader.cancel()


BATCH_MAX = 200


def _reply_of(result) -> dict:
    # local import: python -m child process; this needs the django.setup() in main()
    from core.errors import DomainError

    if isinstance(result, DomainError):
        return {
            "code": result.code,
            "message": str(result.message),
            "extra": getattr(result, "extra", {}),
        }
    if isinstance(result, Exception):  # a row that could not be stored: a bug
        return {"code": "error"}
    return {}


def chat_post_replies(requests: list) -> list[dict]:
    """``chat_post_batch`` shaped as the sockets' answers, one per request in order: ``{}``
    when posted, else the author's notice ``{"code", "message", "extra"}`` (``{"code":
    "error"}`` for a bug). The one shaping used by the child and by the in-process path."""
    # local import: python -m child process; this needs the django.setup() in main()
    from livecommerce.services.chat import chat_post_batch

    try:
        return [_reply_of(result) for result in chat_post_batch(requests=requests)]
    except Exception:  # noqa: BLE001 - a bug: the authors get "error", the sockets stay
        log.exception("chat from sockets failed (batch of %s)", len(requests))
        return [{"code": "error"} for _request in requests]


def chat_post_reply(*, room_id: int, author, text: str) -> dict:
    """One message through ``chat_post_replies`` (the in-process path, ``asgi._chat``)."""
    # local import: python -m child process; this needs the django.setup() in main()
    from livecommerce.services.chat import ChatRequest

    return chat_post_replies([ChatRequest(room_id=room_id, author=author, text=text)])[0]


def _take_batch(lines: queue.Queue) -> list[str] | None:
    """Block for one line, then take whatever else has already arrived (up to BATCH_MAX).
    None when stdin has closed and everything before it was taken."""
    first = lines.get()
    if first is None:
        return None
    batch = [first]
    while len(batch) < BATCH_MAX:
        try:
            line = lines.get_nowait()
        except queue.Empty:
            break
        if line is None:
            lines.put(None)  # seen again by the next take, after this batch is answered
            break
        batch.append(line)
    return batch


def _handle_batch(batch: list[str], reply_out) -> None:
    from django.db import close_old_connections

    # local import: python -m child process; this needs the django.setup() in main()
    from livecommerce.services.chat import ChatAuthor, ChatRequest

    ids, requests, answers = [], [], {}
    for line in batch:
        try:
            request = json.loads(line)
            ids.append(request["id"])
            requests.append(
                ChatRequest(
                    room_id=int(request["room"]),
                    author=ChatAuthor(**request["author"]),
                    text=request["text"],
                )
            )
        except (ValueError, KeyError, TypeError):
            log.exception("unreadable chat request")
    close_old_connections()
    try:
        replies = chat_post_replies(requests) if requests else []
    finally:
        close_old_connections()
    for request_id, reply in zip(ids, replies, strict=True):
        answers[request_id] = reply
    text = "".join(
        json.dumps(
            {"id": request_id, **reply} if reply else {"id": request_id, "ok": True},
            ensure_ascii=False,
            default=str,
        )
        + "\n"
        for request_id, reply in answers.items()
    )
    reply_out.write(text)
    reply_out.flush()


def _post_batches(lines: queue.Queue, reply_out) -> None:
    while (batch := _take_batch(lines)) is not None:
        _handle_batch(batch, reply_out)


def main() -> None:
    # argv[1] (the thread count of the earlier design) is accepted and ignored: one thread
    # posts batches, which is what keeps every room's chat in arrival order.
    # Answers go to the original stdout; anything else printed goes to stderr.
    reply_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qianmian.settings")
    import django

    django.setup()
    lines: queue.Queue = queue.Queue()
    poster = threading.Thread(
        target=_post_batches, args=(lines, reply_out), name="qm-chat", daemon=True
    )
    poster.start()
    for line in sys.stdin:
        if line.strip():
            lines.put(line)
    lines.put(None)
    poster.join()
    # local import: python -m child process; this needs the django.setup() in main()
    from livecommerce.realtime.crm import buffer

    buffer.shutdown()


if __name__ == "__main__":
    main()
