"""Request-path baseline: health and an authenticated DRF list on the embedded default.

Starts the ASGI app under uvicorn on loopback, drives it with a bounded number of requests
from a separate asyncio client process and reports req/s and p99. It is the floor every
later hot path (claims, fan-out) is compared against.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, env: dict) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "qianmian.asgi:application",
            "--port",
            str(port),
            "--no-access-log",
            "--ws",
            "core.websocket:WebSocketProtocol",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


async def _one(host: str, port: int, request: bytes) -> float:
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    if length:
        await reader.readexactly(length)
    writer.close()
    if b" 200 " not in head.split(b"\r\n")[0]:
        raise RuntimeError(head.split(b"\r\n")[0].decode())
    return time.perf_counter() - started


async def load(port: int, path: str, token: str | None, total: int, concurrency: int) -> dict:
    headers = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    if token:
        headers += f"Authorization: Token {token}\r\n"
    request = (headers + "\r\n").encode()
    latencies: list[float] = []
    errors = 0
    sem = asyncio.Semaphore(concurrency)

    async def worker():
        nonlocal errors
        async with sem:
            try:
                latencies.append(await _one("127.0.0.1", port, request))
            except Exception:  # noqa: BLE001 - counted
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(total)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": total,
        "errors": errors,
        "req_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1) if latencies else None,
    }


def run() -> dict:
    env = {**os.environ, "DJANGO_ENV": "development", "TASK_RUNNER": "inprocess"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run(
        [sys.executable, "manage.py", "seed_demo"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    port = free_port()
    server = start_server(port, env)
    try:
        token = json.loads(
            subprocess.run(
                [
                    "curl",
                    "-s",
                    "-XPOST",
                    f"http://127.0.0.1:{port}/api/v1/auth/token",
                    "-H",
                    "content-type: application/json",
                    "-d",
                    '{"username":"host","password":"demo12345"}',
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )["token"]
        health = asyncio.run(load(port, "/api/v1/health", None, 1000, 50))
        rooms = asyncio.run(load(port, "/api/v1/rooms", token, 1000, 50))
    finally:
        server.terminate()
        server.wait(10)
    return {"health": health, "rooms_list_authenticated": rooms}
