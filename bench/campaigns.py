"""Campaigns benchmark: planning 1,000,000 recipients, internal send capacity against the SMS
stub, and the global rate limiter seen from the provider's side.

Runs in its own PostgreSQL database (``qm_campaigns_bench``, dropped afterwards) so it never
touches anyone's data. Env: ``BENCH_PG_URL`` (server, default postgres://postgres@127.0.0.1:5432),
``BENCH_REDIS_URL`` (limiter, default redis://127.0.0.1:6379/14, random key prefix),
``BENCH_CAMPAIGN_CONTACTS`` (default 1,000,000), ``BENCH_BASELINE_SAMPLE`` (10,000),
``BENCH_SEND_ROWS`` (default 50,000), ``BENCH_SEND_WORKERS`` (2), ``BENCH_CAMPAIGN_PARTS``
(default ``plan,send,rate``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB = "qm_campaigns_bench"


def _server() -> str:
    return os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{_server()}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def _env() -> dict:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="qianmian.settings",
        DJANGO_ENV="development",
        DATABASE_URL=f"{_server()}/{DB}",
        REDIS_URL="",
        CAMPAIGNS_REDIS_URL=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
        CAMPAIGNS_KEY_PREFIX=f"qm-bench-{uuid.uuid4().hex[:8]}",
        LOG_LEVEL="WARNING",
        SMS_REQUEST_TIMEOUT="10",
    )
    return env


def _child(*args: str) -> dict:
    out = subprocess.run(  # noqa: S603 - our own script
        [sys.executable, "-m", "bench.campaigns_child", *args],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise RuntimeError(f"bench child {args[0]} failed:\n{out.stderr[-3000:]}")
    out = out.stdout
    return json.loads(out.strip().splitlines()[-1])


def _stub() -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "campaigns.stubs.sms", "tencent", "0"],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    return proc, int(proc.stdout.readline())


def _stub_call(port: int, path: str, method: str = "GET") -> dict:
    request = urllib.request.Request(  # noqa: S310 - loopback stub
        f"http://127.0.0.1:{port}{path}", method=method, data=b"{}" if method == "POST" else None
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.loads(response.read())


def _workers(count: int) -> list[dict]:
    procs = [
        subprocess.Popen(  # noqa: S603
            [sys.executable, "manage.py", "campaigns_send"],
            cwd=ROOT,
            env=_env(),
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        match = re.search(r"sent (\d+) in ([\d.]+) s", out)
        results.append({"sent": int(match[1]), "elapsed_s": float(match[2])} if match else {})
    return results


def _max_in_window(times: list[float], seconds: float = 1.0) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= seconds:
            start += 1
        best = max(best, end - start + 1)
    return best


def run() -> dict:
    contacts = int(os.environ.get("BENCH_CAMPAIGN_CONTACTS", "1000000"))
    send_rows = int(os.environ.get("BENCH_SEND_ROWS", "50000"))
    _admin(f"DROP DATABASE IF EXISTS {DB}")
    _admin(f"CREATE DATABASE {DB}")
    stub = None
    try:
        subprocess.run(  # noqa: S603
            [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=_env(), check=True
        )
        sample = os.environ.get("BENCH_BASELINE_SAMPLE", "10000")
        parts = os.environ.get("BENCH_CAMPAIGN_PARTS", "plan,send,rate").split(",")
        result: dict = {}
        if "plan" in parts:
            result["planning"] = _child("plan", str(contacts), sample)

        stub, port = _stub()
        planted = _child("plant", str(send_rows), f"127.0.0.1:{port}", "100000", "0")
        workers = _workers(int(os.environ.get("BENCH_SEND_WORKERS", "2")))
        counts = _stub_call(port, "/_stub/counts")
        wall = max(w["elapsed_s"] for w in workers)
        received = counts["received"]
        result["send"] = {
            "rows": send_rows,
            "workers": len(workers),
            "worker_results": workers,
            "msgs_per_s": round(sum(w["sent"] for w in workers) / wall),
            "provider_requests": counts["requests"],
            "phones_reached": len(received),
            "sent_twice": sum(1 for n in received.values() if n > 1),
            "outbox": _child("status", str(planted["org"])),
        }

        _stub_call(port, "/_stub/reset", "POST")
        qps, rows = 50, 600
        planted = _child("plant", str(rows), f"127.0.0.1:{port}", str(qps), "1")
        started = time.perf_counter()
        _workers(2)
        counts = _stub_call(port, "/_stub/counts")
        result["rate_limit"] = {
            "configured_qps": qps,
            "requests": counts["requests"],
            "workers": 2,
            "elapsed_s": round(time.perf_counter() - started, 1),
            "max_requests_in_any_1s_window": _max_in_window(counts["request_times"]),
            "outbox": _child("status", str(planted["org"])),
        }
        result["bars"] = {
            "plan_1m_le_30s": "planning" in result and result["planning"]["plan_s"] <= 30,
            "send_ge_5000_per_s": result["send"]["msgs_per_s"] >= 5000,
            "never_above_qps": result["rate_limit"]["max_requests_in_any_1s_window"] <= qps,
        }
        return result
    finally:
        if stub is not None:
            stub.kill()
            stub.wait()
        _admin(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


if __name__ == "__main__":
    print(json.dumps(run(), ensure_ascii=False, indent=2))
