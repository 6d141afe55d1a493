"""Chat from sockets, posted by a child process (``REALTIME_CHAT_WORKER=process``).

``chat_post`` is ORM work (restrictions, rate, words, insert, publish). Run on a thread of
the ASGI process it holds that process's GIL, and every socket write of the hub's tick
then waits for it — the same convoy the CRM writer had (docs/bench/fanout.md). So with the
Redis transport each ASGI process starts one child (``python -m
livecommerce.realtime.chat_worker``) on first use and hands it each chat as one JSON line;
the child runs the unchanged ``chat_post`` (every moderation rule, the publish after
commit through Redis, the CRM ``chat`` event) on a few threads and answers one line per
request: ``{"id", "ok": true}`` or ``{"id", "code", "message", "extra"}`` — the author's
notice. A socket waits for its answer before its next chat, so a sender's order holds.
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
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

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


def chat_post_reply(*, room_id: int, author, text: str) -> dict:
    """``chat_post`` shaped as the socket's answer: ``{}`` when posted, else the author's
    notice ``{"code", "message", "extra"}`` (``{"code": "error"}`` for a bug). The one
    shaping used by the child and by the in-process path (``asgi._chat``)."""
    # local import: python -m child process; this needs the django.setup() in main()
    from core.errors import DomainError
    from livecommerce.services.chat import chat_post

    try:
        chat_post(room_id=room_id, author=author, text=text)
        return {}
    except DomainError as exc:
        return {
            "code": exc.code,
            "message": str(exc.message),
            "extra": getattr(exc, "extra", {}),
        }
    except Exception:  # noqa: BLE001 - a bug: the author gets "error", the socket stays
        log.exception("chat from socket failed")
        return {"code": "error"}


def _handle(line: str, reply_out, lock: threading.Lock) -> None:
    from django.db import close_old_connections

    # local import: python -m child process; this needs the django.setup() in main()
    from livecommerce.services.chat import ChatAuthor

    request = json.loads(line)
    close_old_connections()
    try:
        reply = chat_post_reply(
            room_id=int(request["room"]),
            author=ChatAuthor(**request["author"]),
            text=request["text"],
        )
    finally:
        close_old_connections()
    reply = {"id": request["id"], **reply} if reply else {"id": request["id"], "ok": True}
    text = json.dumps(reply, ensure_ascii=False, default=str)
    with lock:
        reply_out.write(text + "\n")
        reply_out.flush()


def main() -> None:
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    # Answers go to the original stdout; anything else printed goes to stderr.
    reply_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qianmian.settings")
    import django

    django.setup()
    lock = threading.Lock()
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="qm-chat") as pool:
        for line in sys.stdin:
            if line.strip():
                pool.submit(_handle, line, reply_out, lock)
    # local import: python -m child process; this needs the django.setup() in main()
    from livecommerce.realtime.crm import buffer

    buffer.shutdown()


if __name__ == "__main__":
    main()
