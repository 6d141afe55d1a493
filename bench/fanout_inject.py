"""Event injector for bench/fanout.py: chat at a fixed rate plus priority events.

``hub`` mode publishes through the hub transport (``RedisTransport.apublish``: the same Lua
publish a service's ``send_room_event_on_commit`` uses after its commit); ``stock`` mode
calls ``channel_layer.group_send`` per event, as a stock Channels app does. Every event
carries ``n`` (its index) and ``t`` (wall-clock ms) so clients can check completeness and
latency. Prints ``{"chat": [[n, t_ms]...], "prio": [...]}``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time


async def main(cfg: dict) -> dict:
    import django

    django.setup()
    room = cfg["room"]
    if cfg["mode"] == "hub":
        from livecommerce.realtime.transport import get_transport

        transport = get_transport()
        await transport.start(
            on_room=lambda *a: None, on_staff=lambda *a: None, on_resync=lambda: None
        )

        async def publish(kind: str, body: dict) -> None:
            await transport.apublish(room, type=kind, audience="all", contact_id=None, body=body)
    else:
        from channels.layers import get_channel_layer

        layer = get_channel_layer()

        async def publish(kind: str, body: dict) -> None:
            await layer.group_send(
                f"room-{room}", {"type": "room.event", "event": {"type": kind, **body}}
            )

    chat_log: list[list[float]] = []
    prio_log: list[list[float]] = []
    n = 0
    await asyncio.sleep(max(0, cfg["start_at"] - time.time()))
    started = time.time()
    sent_chat = 0
    next_prio = started
    # A few publishers in order of the queue: as many connections as a service would use,
    # never one per event (a connection storm measures Redis' accept path, not the hub).
    queue: asyncio.Queue = asyncio.Queue()

    async def publisher():
        while True:
            kind, body = await queue.get()
            try:
                await publish(kind, body)
            except Exception as exc:  # noqa: BLE001 - counted as not delivered
                sys.stderr.write(f"publish failed: {exc!r}\n")
            finally:
                queue.task_done()

    workers = [asyncio.get_running_loop().create_task(publisher()) for _ in range(4)]
    while time.time() < cfg["stop_at"]:
        now = time.time()
        due = int((now - started) * cfg["chat_rate"]) - sent_chat
        for _ in range(due):
            n += 1
            t = time.time() * 1000
            body = {
                "id": n,
                "n": n,
                "t": t,
                "text": f"第{n}条弹幕 好看好看",
                "nickname": "观众",
                "contact_id": None,
                "host": False,
                "status": "visible",
            }
            queue.put_nowait(("chat", body))
            chat_log.append([n, t])
            sent_chat += 1
        if now >= next_prio:
            n += 1
            t = time.time() * 1000
            await publish(
                "product.pinned", {"n": n, "t": t, "product": {"id": n % 12, "name": "讲解中"}}
            )
            prio_log.append([n, t])
            next_prio += 1 / cfg["prio_rate"]
        await asyncio.sleep(0.005)
    try:
        # A publisher that cannot keep up (stock group_send to N channels) gets 5 s more;
        # what is still queued then was never sent and counts as not delivered.
        await asyncio.wait_for(queue.join(), 5)
    except TimeoutError:
        sys.stderr.write(f"{queue.qsize()} events never published\n")
    for worker in workers:
        worker.cancel()
    return {"chat": chat_log, "prio": prio_log}


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qianmian.settings")
    config = json.loads(sys.stdin.read())
    # Stays on asyncio: on uvloop this injector (redis-py asyncio) fell behind by 1–2k
    # events in 2 of 3 runs at 2,000 viewers and once never exited; its CPU is small and
    # not part of the per-frame cost of the load generators.
    sys.stdout.write(json.dumps(asyncio.run(main(config))))
