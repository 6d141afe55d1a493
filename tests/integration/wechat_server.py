"""A real uvicorn process serving the app against the integration test database."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def app_server(**env_overrides: str):
    """uvicorn on a free loopback port, same PostgreSQL test database and Redis db as the test.
    Tests must use ``transaction=True`` so the server sees their rows."""
    db = connection.settings_dict
    database_url = (
        f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DJANGO_ENV": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.REDIS_URL,
        "TASK_RUNNER": "eager",
        "SECRET_KEY": settings.SECRET_KEY,
        "SITE_URL": url,
        **env_overrides,
    }
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "uvicorn", "qianmian.asgi:application", "--host", "127.0.0.1",
         "--port", str(port), "--no-access-log", "--lifespan", "off", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/api/v1/health", timeout=1).status_code < 500:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(process.stderr.read().decode()[-3000:])
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
