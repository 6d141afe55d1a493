"""Load-generator worker for bench/fanout.py: one process holding a share of the viewers.

Reads a JSON config on stdin, follows an absolute-time schedule (join, like, measure,
leave, burst-rejoin), prints one JSON result on stdout. Non-probe sockets never read
their payloads (frames are counted in ``bench.wsclient``'s shared-buffer fast path, payload
bytes skipped unread); one socket in ``probe_every`` parses every frame
and measures event-to-client latency from the ``t`` (ms, wall clock) the injector stamps.

With ``BENCH_CHAT_PATH=route`` (config ``chat``) the chat comes from here, not from the
injector: some of this process' viewers (the chatters) send the viewer page's own
``{"type": "chat", "text": …}`` frame over their socket, so each message goes through the
hub's chat path (``chat_post``: moderation, the database row, the CRM event) before it is
published. The text carries a marker ``#q<n>@<t>`` (a unique number and the send time, ms
wall clock); probes read it back from the ``chat`` event's text.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import sys
import time

from bench.wsclient import client_frame, open_ws

# The marker a chat sent through the route carries in its text (see chat_text).
_MARKER = re.compile(r"#q(\d+)@(\d+(?:\.\d+)?)")


def chat_text(n: int, t_ms: float) -> str:
    """What a chatter types: a viewer's chat plus the marker probes identify it by."""
    return f"第{n % 100000}条弹幕 好看好看 #q{n}@{t_ms:.1f}"


class Stats:
    def __init__(self):
        self.chat_lat: list[float] = []
        self.prio_lat: list[float] = []


def _on_frame_factory(stats: Stats, probe: bool):
    # The per-socket counters live in the closure: frames can arrive before open_ws returns.
    user = {"chat": 0, "prio": 0, "ids": set(), "probe": probe, "bytes": 0}

    def on_frame(conn, payload: bytes) -> None:
        if probe:
            now = time.time() * 1000
            user["bytes"] += len(payload)
            data = json.loads(payload)
            for event in data["events"] if data.get("type") == "batch" else [data]:
                kind = event.get("type")
                if kind == "chat":
                    user["chat"] += 1
                elif kind == "product.pinned":
                    user["prio"] += 1
                t = event.get("t")
                if t is None:
                    # A chat posted through the route (chat_post's event has no n/t):
                    # the marker in its text identifies it.
                    if kind != "chat":
                        continue
                    found = _MARKER.search(event.get("text") or "")
                    if found is None:
                        continue
                    event = {"type": kind, "n": int(found[1])}
                    t = float(found[2])
                if event["type"] == "chat":
                    stats.chat_lat.append(now - t)
                elif event["type"] == "product.pinned":
                    stats.prio_lat.append(now - t)
                user["ids"].add(event["n"])

    return on_frame, user


async def _join_all(cfg, tokens, stats, start_at, rate, results):
    loop = asyncio.get_running_loop()
    conns = [None] * len(tokens)
    latencies: list[float] = []
    errors = 0

    async def one(i, token):
        nonlocal errors
        delay = start_at + i / rate - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        port = cfg["ports"][i % len(cfg["ports"])]
        probe = (cfg["offset"] + i) % cfg["probe_every"] == 0
        started = time.perf_counter()
        for attempt in range(3):
            try:
                on_frame, user = _on_frame_factory(stats, probe)
                conn = await open_ws(
                    "127.0.0.1", port, cfg["path"] + token, on_frame, wants_payload=probe
                )
                conn.started = started
                conn.user = user
                first = await asyncio.wait_for(conn.first_frame, 10)
                latencies.append(first - started)
                conns[i] = conn
                return
            except (OSError, TimeoutError, ConnectionError):
                await asyncio.sleep(0.2 * 2**attempt * random.uniform(0.5, 1.5))
        errors += 1

    await asyncio.gather(*(one(i, t) for i, t in enumerate(tokens)))
    results["latencies"] = latencies
    results["errors"] = errors
    del loop
    return conns


def _ranges(ids: list[int]) -> list[list[int]]:
    """[1,2,3,7,8] → [[1,3],[7,8]]: a complete probe reports one range."""
    out: list[list[int]] = []
    for n in ids:
        if out and n == out[-1][1] + 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return out


async def main(cfg: dict) -> dict:
    tokens = cfg["tokens"]
    stats = Stats()
    out: dict = {}
    join1: dict = {}
    conns = await _join_all(cfg, tokens, stats, cfg["join_at"], cfg["join_rate"], join1)
    out["join_sustained"] = {
        "connected": sum(1 for c in conns if c),
        "errors": join1["errors"],
        "first_frame_s": join1["latencies"],
    }

    # Likes from random sockets until the end of the fan-out phase.
    async def liker():
        live = [c for c in conns if c]
        per_tick = cfg["like_rate"] * 0.05
        carry = 0.0
        # One masked frame for every like (a load generator may reuse its mask key).
        frame = client_frame(json.dumps({"type": "like", "count": 1}).encode())
        while time.time() < cfg["measure_to"]:
            carry += per_tick
            for _ in range(int(carry)):
                random.choice(live).send_frame(frame)
            carry -= int(carry)
            await asyncio.sleep(0.05)

    chat_sent: list[list[float]] = []

    async def chatter(chat: dict):
        # This process' chatters (global viewer index < chat["chatters"]; viewer i of this
        # process is viewer offset + i * procs overall) take turns, each at most once every
        # chatters / rate seconds (>= 2 s, checked by the bench): the per-viewer rate limit
        # (one chat a second, a fixed one-second window) is never what refuses a message.
        mine = [
            c
            for i, c in enumerate(conns)
            if c and cfg["offset"] + i * chat["procs"] < chat["chatters"]
        ]
        if not mine:
            return
        # Numbers unique over all processes: one block of 10^7 per process.
        n = (cfg["offset"] + 1) * 10_000_000
        started = time.time()
        sent = 0
        while time.time() < chat["to"]:
            due = int((time.time() - started) * chat["rate"]) - sent
            for _ in range(due):
                conn = mine[sent % len(mine)]
                sent += 1
                if conn.closed.done():
                    continue
                n += 1
                t = time.time() * 1000
                text = json.dumps({"type": "chat", "text": chat_text(n, t)}, ensure_ascii=False)
                conn.send_frame(client_frame(text.encode()))
                chat_sent.append([n, t])
            await asyncio.sleep(0.005)

    await asyncio.sleep(max(0, cfg["likes_from"] - time.time()))
    like_task = asyncio.get_running_loop().create_task(liker())
    chat_task = None
    if cfg.get("chat"):
        await asyncio.sleep(max(0, cfg["chat"]["from"] - time.time()))
        chat_task = asyncio.get_running_loop().create_task(chatter(cfg["chat"]))
    await asyncio.sleep(max(0, cfg["measure_from"] - time.time()))
    at_start = [
        (c.frames, c.user["chat"], c.user["prio"], c.user["bytes"]) if c else None for c in conns
    ]
    cpu_from = os.times()
    stats.chat_lat.clear()
    stats.prio_lat.clear()
    for c in conns:
        if c:
            c.user["ids"].clear()
    await asyncio.sleep(max(0, cfg["measure_to"] - time.time()))
    window = cfg["measure_to"] - cfg["measure_from"]
    frames_at_end = [c.frames if c else None for c in conns]
    cpu_to = os.times()
    # Let the events injected just before measure_to arrive before counting.
    await asyncio.sleep(cfg.get("drain_s", 1.5))
    at_end = [
        (c.frames, c.user["chat"], c.user["prio"], c.user["bytes"]) if c else None for c in conns
    ]
    await like_task
    if chat_task is not None:
        await chat_task
    frames_per_s = []
    chats = []
    prios = []
    probe_ids = []
    # What a viewer is sent (payload bytes per frame, from the probes, which read every frame).
    probe_frames = probe_bytes = 0
    for c, a, b, f in zip(conns, at_start, at_end, frames_at_end, strict=True):
        if not c or a is None:
            continue
        frames_per_s.append((f - a[0]) / window)
        if c.user["probe"]:
            probe_frames += b[0] - a[0]
            probe_bytes += b[3] - a[3]
            chats.append(b[1] - a[1])
            prios.append(b[2] - a[2])
            probe_ids.append(_ranges(sorted(c.user["ids"])))
    out["fanout"] = {
        "sockets": len(frames_per_s),
        "frames_per_s": frames_per_s,
        "chat_counts": chats,
        "prio_counts": prios,
        "chat_lat_ms": stats.chat_lat,
        "prio_lat_ms": stats.prio_lat,
        "probe_ids": probe_ids,
        "probe_frames": probe_frames,
        "probe_payload_bytes": probe_bytes,
        "closed_early": sum(1 for c in conns if c and c.closed.done()),
        # This process' CPU over the window and the frames its sockets received in it.
        "cpu_s": cpu_to.user + cpu_to.system - cpu_from.user - cpu_from.system,
        "cpu_sys_s": cpu_to.system - cpu_from.system,
        "frames": sum(f - a[0] for a, f in zip(at_start, frames_at_end, strict=True) if a),
        # Chats this process' chatters sent through the route: [n, send time ms].
        "chat_sent": chat_sent,
    }
    # Everybody leaves; then the burst: all rejoin at the burst rate.
    for c in conns:
        if c:
            c.close()
    await asyncio.sleep(max(0, cfg["burst_at"] - time.time()))
    join2: dict = {}
    conns = await _join_all(cfg, tokens, stats, cfg["burst_at"], cfg["burst_rate"], join2)
    out["join_burst"] = {
        "connected": sum(1 for c in conns if c),
        "errors": join2["errors"],
        "first_frame_s": join2["latencies"],
    }
    await asyncio.sleep(max(0, cfg["end_at"] - time.time()))
    for c in conns:
        if c:
            c.close()
    await asyncio.sleep(0.5)
    return out


if __name__ == "__main__":
    # SCHED_BATCH (no privilege needed, our own process only): a frame landing on one of
    # this process' sockets then does not preempt the server in the middle of its tick
    # (hundreds of involuntary context switches per second of the hub's loop thread were
    # measured with /proc/<pid>/task/<pid>/status). Its CPU share is unchanged.
    # nice 5: on a 2-core box the load generators stand in for phones on a network; they
    # must not take the servers' CPU share (both systems of a run get the same treatment).
    if hasattr(os, "SCHED_BATCH"):
        try:
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
            os.nice(5)
        except OSError:
            pass
    config = json.loads(sys.stdin.read())
    # uvloop: its C read path and transports cost a fraction of asyncio's per received frame.
    import uvloop

    result = uvloop.run(main(config))
    # The stdout pipe can be left non-blocking after uvloop: a result larger than the pipe
    # buffer (64 KiB) was then cut short (BlockingIOError at exit) and the run lost.
    os.set_blocking(sys.stdout.fileno(), True)
    sys.stdout.write(json.dumps(result))
