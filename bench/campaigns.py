"""Campaigns benchmark: planning 1,000,000 recipients, internal send capacity against the SMS
stub, and the global rate limiter seen from the provider's side.

Runs in its own PostgreSQL database (``qm_campaigns_bench``, or the database named in
``BENCH_PG_URL``; dropped afterwards) so it never touches anyone's data. Env: ``BENCH_PG_URL``
(server, default postgres://postgres@127.0.0.1:5432, optionally with the database's name),
``BENCH_REDIS_URL`` (limiter, default redis://127.0.0.1:6379/14, random key prefix),
``BENCH_CAMPAIGN_CONTACTS`` (default 1,000,000), ``BENCH_BASELINE_SAMPLE`` (10,000),
``BENCH_SEND_ROWS`` (default 50,000), ``BENCH_SEND_WORKERS`` (2), ``BENCH_CAMPAIGN_PARTS``
(default ``plan,send,personal,rate``), ``BENCH_PERSONAL_ROWS`` (rows per provider, default
10,000), ``BENCH_PERSONAL_QPS`` (each account's configured QPS, default 3,000),
``BENCH_PERSONAL_PROVIDERS`` (default ``tencent,aliyun,wechat_template,mp_subscribe``).

``personal`` is the personalised path side by side with the batched ``send``: every recipient
gets their own text (nickname, product, clip link), so each message is its own provider
request, through the real SDKs (tencentcloud, alibabacloud dysmsapi, wechatpy) pointed at the
local stubs of each provider's wire format.
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

from bench.child import child_json

ROOT = Path(__file__).resolve().parent.parent
_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
# A database name in the URL (one per engineer on a shared box) replaces the default one.
_SERVER, _, _NAME = _URL.rpartition("/") if _URL.count("/") > 2 else (_URL, "", "")
DB = _NAME or "qm_campaigns_bench"


def _server() -> str:
    return _SERVER


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
    return child_json("bench.campaigns_child", *args, env=_env(), echo_stderr=False)


def _stub(provider: str = "tencent") -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "campaigns.stubs.sms", provider, "0"],
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


def _workers(count: int, extra_env: dict | None = None) -> list[dict]:
    procs = [
        subprocess.Popen(  # noqa: S603
            [sys.executable, "manage.py", "campaigns_send"],
            cwd=ROOT,
            env=_env() | (extra_env or {}),
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    results = []
    for proc in procs:
        out = proc.stdout.read()
        # wait4 reaps the worker and hands back its rusage: the CPU (all threads) it spent.
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        match = re.search(r"sent (\d+) in ([\d.]+) s, cpu ([\d.]+) s", out)
        result = {"sent": int(match[1]), "elapsed_s": float(match[2])} if match else {}
        # The process's whole CPU (start-up included) and its sending rounds' alone.
        result["process_cpu_s"] = round(usage.ru_utime + usage.ru_stime, 3)
        result["cpu_s"] = float(match[3]) if match else result["process_cpu_s"]
        results.append(result)
    return results


def _proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a running process (``/proc/<pid>/stat``, fields 14-15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_per_message(workers: list[dict], stub_cpu_s: float) -> dict:
    """Sender and stub CPU per message in µs: the figures load on the box does not move
    much (msgs/s does)."""
    sent = sum(w.get("sent", 0) for w in workers) or 1
    return {
        "sender_cpu_s": round(sum(w.get("cpu_s", 0) for w in workers), 3),
        "sender_cpu_us_per_msg": round(sum(w.get("cpu_s", 0) for w in workers) / sent * 1e6),
        "stub_cpu_s": round(stub_cpu_s, 3),
        "stub_cpu_us_per_msg": round(stub_cpu_s / sent * 1e6),
    }


def _max_in_window(times: list[float], seconds: float = 1.0) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= seconds:
            start += 1
        best = max(best, end - start + 1)
    return best


def _personal(provider: str, rows: int, qps: int, sms_ports: dict, wechat, stub_pids: dict) -> dict:
    """One provider's personalised send: plant, 2 sender processes, what the stub saw."""
    channel_sms = provider in ("tencent", "aliyun")
    if channel_sms:
        port = sms_ports[provider]
        _stub_call(port, "/_stub/reset", "POST")
        endpoint = f"127.0.0.1:{port}"
    else:
        wechat.reset()
        endpoint = ""
    planted = _child("personal", provider, str(rows), endpoint, str(qps))
    extra = {"WECHAT_API_BASE": wechat.base_url, "WECHAT_SEND_QPS": str(qps)}
    # The WeChat stub serves from this process's threads (this thread only waits meanwhile).
    stub_cpu = (lambda: _proc_cpu(stub_pids[provider])) if channel_sms else time.process_time
    before = stub_cpu()
    workers = _workers(int(os.environ.get("BENCH_SEND_WORKERS", "2")), extra)
    stub_cpu_s = stub_cpu() - before
    if channel_sms:
        counts = _stub_call(port, "/_stub/counts")
        received, times = counts["received"], counts["request_times"]
        requests = counts["requests"]
    else:
        path = (
            "cgi-bin/message/template/send"
            if provider == "wechat_template"
            else "cgi-bin/message/subscribe/send"
        )
        sends = wechat.received(path)
        received: dict = {}
        for request in sends:
            touser = request.json().get("touser", "")
            received[touser] = received.get(touser, 0) + 1
        times, requests = [r.at for r in sends], len(sends)
    wall = max(w["elapsed_s"] for w in workers)
    return {
        "rows": rows,
        "configured_qps": qps,
        "workers": len(workers),
        "worker_results": workers,
        "msgs_per_s": round(sum(w["sent"] for w in workers) / wall),
        "provider_requests": requests,
        "recipients_reached": len(received),
        "sent_twice": sum(1 for n in received.values() if n > 1),
        "max_requests_in_any_1s_window": _max_in_window(times),
        **_cpu_per_message(workers, stub_cpu_s),
        "outbox": _child("status", str(planted["org"])),
    }


def run() -> dict:
    contacts = int(os.environ.get("BENCH_CAMPAIGN_CONTACTS", "1000000"))
    send_rows = int(os.environ.get("BENCH_SEND_ROWS", "50000"))
    _admin(f"DROP DATABASE IF EXISTS {DB}")
    _admin(f"CREATE DATABASE {DB}")
    stub = None
    extra_stubs: list[subprocess.Popen] = []
    try:
        subprocess.run(  # noqa: S603
            [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=_env(), check=True
        )
        sample = os.environ.get("BENCH_BASELINE_SAMPLE", "10000")
        parts = os.environ.get("BENCH_CAMPAIGN_PARTS", "plan,send,personal,rate").split(",")
        result: dict = {"load_average_before": [round(x, 2) for x in os.getloadavg()]}
        if "plan" in parts:
            result["planning"] = _child("plan", str(contacts), sample)

        stub, port = _stub()
        if "send" in parts:
            planted = _child("plant", str(send_rows), f"127.0.0.1:{port}", "100000", "0")
            before = _proc_cpu(stub.pid)
            workers = _workers(int(os.environ.get("BENCH_SEND_WORKERS", "2")))
            stub_cpu_s = _proc_cpu(stub.pid) - before
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
                **_cpu_per_message(workers, stub_cpu_s),
                "outbox": _child("status", str(planted["org"])),
            }

        if "personal" in parts:
            from wechat.stub import WeChatStub

            aliyun, aliyun_port = _stub("aliyun")
            extra_stubs.append(aliyun)
            wechat = WeChatStub().start()
            try:
                qps = int(os.environ.get("BENCH_PERSONAL_QPS", "3000"))
                rows = int(os.environ.get("BENCH_PERSONAL_ROWS", "10000"))
                providers = os.environ.get(
                    "BENCH_PERSONAL_PROVIDERS", "tencent,aliyun,wechat_template,mp_subscribe"
                ).split(",")
                ports = {"tencent": port, "aliyun": aliyun_port}
                pids = {"tencent": stub.pid, "aliyun": aliyun.pid}
                result["personal"] = {
                    provider: _personal(provider, rows, qps, ports, wechat, pids)
                    for provider in providers
                }
            finally:
                wechat.stop()

        if "rate" in parts:
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
        result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        personal = result.get("personal", {})
        result["bars"] = {
            "plan_1m_le_30s": "planning" in result and result["planning"]["plan_s"] <= 30,
            "send_ge_5000_per_s": "send" in result and result["send"]["msgs_per_s"] >= 5000,
            "personal_ge_1500_per_s": bool(personal)
            and all(p["msgs_per_s"] >= 1500 for p in personal.values()),
            "personal_never_twice": all(p["sent_twice"] == 0 for p in personal.values()),
            "personal_never_above_qps": all(
                p["max_requests_in_any_1s_window"] <= p["configured_qps"] for p in personal.values()
            ),
            "never_above_qps": "rate_limit" in result
            and result["rate_limit"]["max_requests_in_any_1s_window"]
            <= result["rate_limit"]["configured_qps"],
        }
        return result
    finally:
        for proc in [stub, *extra_stubs]:
            if proc is not None:
                proc.kill()
                proc.wait()
        _admin(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


if __name__ == "__main__":
    print(json.dumps(run(), ensure_ascii=False, indent=2))
