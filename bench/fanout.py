"""Room fan-out and join storm: the hub against stock Channels, in the same run.

For each system: 2 uvicorn processes (``--ws-per-message-deflate false``) on Redis, N
viewers (default 10,000) held by separate light-client processes (bench/fanout_client.py,
bench/wsclient.py), then:

1. join storm, sustained: N viewers join at 1,000/s (connect-to-first-frame measured);
2. fan-out: 500 chat/s + 2 priority events/s into the room and 2,000 likes/s sent by
   viewers, for ``BENCH_FANOUT_SECONDS``. Chat takes the path users' chat takes
   (``BENCH_CHAT_PATH=route``, the default): chatting viewers send the viewer page's
   ``chat`` frame over their sockets (bench/fanout_client.py), so every message goes
   through ``chat_post`` (moderation, its database row, the CRM ``chat`` event) and is
   published after commit; ``BENCH_CHAT_PATH=inject`` publishes chat straight into the
   transport instead (bench/fanout_inject.py, the Lua publish, no ``chat_post``), for
   comparison. Priority events are published by the injector in both (they come from
   services, never from a socket). Measured: every probe
   viewer (``BENCH_PROBES``, default 100, spread evenly; each parses every frame) got every chat and priority event of the
   window, event-to-client p50/p99, frames/s per viewer (all viewers), RSS and CPU of the
   server processes;
3. join storm, burst: everybody leaves, then all N rejoin at 5,000/s.

The servers run on PostgreSQL and Redis, as in production (docs/deploy.md): each run gets
its own database on ``BENCH_PG_URL``'s server, created from a template migrated once per
invocation and dropped after the run, and the machine's Redis (``BENCH_REDIS_URL``, random
key/channel prefix).
The baseline gets its own throw-away ``redis-server``: ``group_send`` to N channels at
500/s would otherwise flood the Redis other people on this box share.

Env: BENCH_VIEWERS (10000), BENCH_CLIENT_PROCS (4), BENCH_FANOUT_SECONDS (20),
BENCH_CHAT_RATE (500), BENCH_LIKE_RATE (2000), BENCH_PROBES (100), BENCH_REDIS_URL,
BENCH_CHAT_PATH (``route`` or ``inject``), BENCH_CHATTERS (viewers who chat in ``route``,
default min(viewers, 4 × chat rate); at least 2 × chat rate), BENCH_PG_URL (PostgreSQL
server, default postgres://postgres@127.0.0.1:5432),
BENCH_SKIP_BASELINE, BENCH_HUB_PROCS (hub server processes, default 2), BENCH_SHOWN_CHAT_RATE (the room's chat shaping rate; default above the sent rate), BENCH_RUNS (5 hub runs in a row, each reported, plus the worst),
BENCH_SETTLE_SECONDS (60: longest wait for the previous run's tail before a run), BENCH_HUB_WS (the hub servers' uvicorn ``--ws``; default the project's
``core.websocket:WebSocketProtocol``, ``auto`` for uvicorn's own).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
CHAT_PATHS = ("route", "inject")


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _pg_server() -> str:
    """``BENCH_PG_URL`` without a database name: the bench names its own databases."""
    url = urlsplit(os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432"))
    return urlunsplit((url.scheme, url.netloc, "", "", ""))


def _pg_admin(sql: str) -> None:
    with psycopg.connect(f"{_pg_server()}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def _pg_template(env: dict) -> str:
    """A database migrated once per invocation; each run's database is a copy of it
    (``CREATE DATABASE … TEMPLATE``: a second, not a full migrate per run)."""
    name = f"qm_fanout_bench_{secrets.token_hex(3)}_tpl"
    _pg_admin(f'CREATE DATABASE "{name}"')
    subprocess.run(
        [PY, "manage.py", "migrate", "-v0"],
        cwd=ROOT,
        env={**env, "DATABASE_URL": f"{_pg_server()}/{name}"},
        check=True,
    )
    return name


def _pg_drop(name: str) -> None:
    try:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except psycopg.Error as exc:
        print(f"could not drop database {name}: {exc!r}", file=sys.stderr)


def _pg_backend_cpu(name: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to database ``name`` (the
    database's work is done in these processes, not in the servers')."""
    try:
        with psycopg.connect(f"{_pg_server()}/postgres", autocommit=True) as conn:
            pids = [
                r[0]
                for r in conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s", [name]
                ).fetchall()
            ]
    except psycopg.Error:
        return {}
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def _chat_stored(name: str, room: int) -> dict:
    """What the route left in the database: chat rows by status and CRM ``chat`` events."""
    with psycopg.connect(f"{_pg_server()}/{name}", autocommit=True) as conn:
        statuses = dict(
            conn.execute(
                "SELECT status, count(*) FROM livecommerce_chatmessage WHERE room_id = %s"
                " GROUP BY status",
                [room],
            ).fetchall()
        )
        events = conn.execute(
            "SELECT count(*) FROM crm_event WHERE type = 'chat' AND room_id = %s", [room]
        ).fetchone()[0]
    return {
        "chat_messages_stored": sum(statuses.values()),
        "chat_messages_by_status": statuses,
        "crm_chat_events": events,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, seconds: float = 40) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process on port {port} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.3):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"port {port} never opened")


class Monitor(threading.Thread):
    """Samples RSS and CPU time of the server processes once a second."""

    def __init__(self, pids: list[int], *, with_children: bool = True):
        super().__init__(daemon=True)
        self.roots = pids
        self.with_children = with_children
        self.peak_rss_mb = 0.0
        self.stop_flag = threading.Event()
        self.cpu_start = self._cpu()
        self.t_start = time.monotonic()
        self.marks: dict[str, tuple[float, float]] = {}
        self.sys_marks: dict[str, float] = {}
        self.box_marks: dict[str, list[int]] = {}
        self.loadavg: dict[str, list[float]] = {}

    @property
    def pids(self) -> list[int]:
        """The processes plus their children (the hub's CRM writer process counts too)."""
        pids = list(self.roots)
        if self.with_children:
            for pid in self.roots:
                try:
                    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
                except OSError:
                    continue
                pids.extend(int(c) for c in children)
        return pids

    def _rss(self) -> float:
        total = 0
        for pid in self.pids:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total / 1024

    def _cpu(self, field: int | None = None) -> float:
        """User + system CPU seconds of the processes (``field`` 11: user only, 12: system)."""
        ticks = 0
        for pid in self.pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12]) if field is None else int(fields[field])
            except OSError:
                pass
        return ticks / os.sysconf("SC_CLK_TCK")

    def mark(self, name: str) -> None:
        self.marks[name] = (time.monotonic(), self._cpu())
        self.sys_marks[name] = self._cpu(12)
        self.box_marks[name] = _box_cpu()
        self.loadavg[name] = [round(x, 2) for x in os.getloadavg()]

    def system_share(self, a: str, b: str) -> float | None:
        """Share of the processes' CPU between two marks spent in the kernel."""
        if a not in self.marks or b not in self.marks:
            return None
        total = self.marks[b][1] - self.marks[a][1]
        return round((self.sys_marks[b] - self.sys_marks[a]) / total, 3) if total else None

    def box_between(self, a: str, b: str) -> dict | None:
        """What the whole machine did between two marks (/proc/stat), % of all cores."""
        if a not in self.box_marks or b not in self.box_marks:
            return None
        d = [y - x for x, y in zip(self.box_marks[a], self.box_marks[b], strict=True)]
        total = sum(d) or 1
        names = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
        return {n: round(100 * v / total, 1) for n, v in zip(names, d, strict=False)}

    def cpu_between(self, a: str, b: str) -> float | None:
        if a not in self.marks or b not in self.marks:
            return None
        (t1, c1), (t2, c2) = self.marks[a], self.marks[b]
        return round(100 * (c2 - c1) / (t2 - t1), 1)

    def run(self) -> None:
        while not self.stop_flag.wait(1.0):
            self.peak_rss_mb = max(self.peak_rss_mb, self._rss())


def _box_cpu() -> list[int]:
    """The machine's CPU ticks by kind (first line of /proc/stat)."""
    try:
        return [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except OSError:
        return [0] * 8


def _tcp_time_wait() -> int | None:
    """Sockets in TIME_WAIT on the machine (a join storm leaves 2 × N for 60 s)."""
    try:
        for line in Path("/proc/net/sockstat").read_text().splitlines():
            if line.startswith("TCP:"):
                fields = line.split()
                return int(fields[fields.index("tw") + 1])
    except (OSError, ValueError):
        pass
    return None


def _box_idle_percent(seconds: float = 1.0) -> float:
    before = _box_cpu()
    time.sleep(seconds)
    d = [y - x for x, y in zip(before, _box_cpu(), strict=True)]
    return round(100 * (d[3] + d[4]) / (sum(d) or 1), 1)


def _redis_keys(url: str, pattern: str) -> list[bytes]:
    client = redis.Redis.from_url(url)
    try:
        return list(client.scan_iter(match=pattern, count=1000))
    finally:
        client.close()


def _redis_drop(url: str, prefix: str) -> int:
    """Delete what one run left in Redis (its room log, seq, counters, presence): the next
    run must start from the same state, not from the previous runs' 24-hour keys."""
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        return client.delete(*keys) if keys else 0
    finally:
        client.close()


def _settle(seconds: float) -> dict:
    """Before a run after the first: wait (at most ``seconds``) until the previous run's
    tail is gone — its sockets out of TIME_WAIT and the machine at least 70 % idle — and
    report the state the run starts from."""
    started = time.monotonic()
    idle = _box_idle_percent()
    while time.monotonic() - started < seconds:
        if idle >= 70 and (_tcp_time_wait() or 0) < 1000:
            break
        idle = _box_idle_percent()
    return {
        "settle_s": round(time.monotonic() - started, 1),
        "box_idle_percent_at_start": idle,
        "tcp_time_wait_at_start": _tcp_time_wait(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


class _Output(threading.Thread):
    def __init__(self, proc: subprocess.Popen):
        super().__init__(daemon=True)
        self.proc, self.text = proc, ""
        self.start()

    def run(self) -> None:
        self.text = self.proc.stdout.read()

    def result(self, timeout: float = 180) -> str:
        self.join(timeout)
        return self.text


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(len(values) * q))], 3)


def _covers(ranges: list[list[int]], n: int) -> bool:
    return any(a <= n <= b for a, b in ranges)


def _join_summary(parts: list[dict], n: int, rate: int) -> dict:
    lat = [x for p in parts for x in p["first_frame_s"]]
    connected = sum(p["connected"] for p in parts)
    return {
        "target_rate_per_s": rate,
        "viewers": n,
        "connected": connected,
        "errors": sum(p["errors"] for p in parts),
        "connect_to_first_frame_p50_ms": round(1000 * (pct(lat, 0.5) or 0), 1),
        "connect_to_first_frame_p99_ms": round(1000 * (pct(lat, 0.99) or 0), 1),
        "pass_p99_le_1s": bool(lat) and pct(lat, 0.99) <= 1.0 and connected == n,
    }


def _chatters(viewers: int) -> int:
    """How many viewers chat in ``route`` (``BENCH_CHATTERS``, default min(viewers, 4 × the
    chat rate)). At least 2 × the rate, so each chatter chats at most once every 2 s: the
    per-viewer limit (one chat a second in a fixed one-second window, ``RATE_CHAT_VIEWER``)
    then never refuses one, even with a second of jitter between two of a chatter's
    messages."""
    chat_rate = _env_int("BENCH_CHAT_RATE", 500)
    chatters = _env_int("BENCH_CHATTERS", min(viewers, 4 * chat_rate))
    if chatters < 2 * chat_rate or chatters > viewers:
        raise SystemExit(
            f"BENCH_CHAT_PATH=route needs {2 * chat_rate}..{viewers} chatting viewers for "
            f"{chat_rate} chat/s (BENCH_CHATTERS={chatters}, BENCH_VIEWERS={viewers})"
        )
    return chatters


def run_system(
    kind: str,
    *,
    base_env: dict,
    redis_url: str,
    viewers: int,
    template: str,
    chat_path: str = "inject",
) -> dict:
    """One run of one system on its own PostgreSQL database (a copy of ``template``,
    dropped afterwards). ``chat_path`` ``route``: chatters send chat over their sockets
    (hub only: the stock baseline has no chat path and drops what sockets send);
    ``inject``: the injector publishes it."""
    database = f"{template.removesuffix('_tpl')}_{kind}_{secrets.token_hex(2)}"
    _pg_admin(f'CREATE DATABASE "{database}" TEMPLATE "{template}"')
    try:
        result = _run_system(
            kind,
            base_env=base_env,
            redis_url=redis_url,
            viewers=viewers,
            database=database,
            chat_path=chat_path,
        )
    finally:
        _pg_drop(database)
    result["chat_path"] = chat_path
    result["database"] = {"engine": "postgresql", "server": _pg_server_shown()}
    return result


def _pg_server_shown() -> str:
    """The server, without a password if the URL had one."""
    url = urlsplit(_pg_server())
    host = url.hostname or ""
    return f"{url.username or ''}@{host}:{url.port or 5432}"


def _run_system(
    kind: str,
    *,
    base_env: dict,
    redis_url: str,
    viewers: int,
    database: str,
    chat_path: str,
) -> dict:
    procs = _env_int("BENCH_CLIENT_PROCS", 4)
    fanout_s = _env_int("BENCH_FANOUT_SECONDS", 20)
    chat_rate = _env_int("BENCH_CHAT_RATE", 500)
    like_rate = _env_int("BENCH_LIKE_RATE", 2000)
    route = chat_path == "route"
    chatters = _chatters(viewers) if route else 0
    # A probe parses every frame (~100 events of JSON each): 500 probes at 10,000
    # viewers cost the load generators half a core on their own and made them the
    # bottleneck (frames queued in the kernel, not in the hub); 100 probes still check
    # every chat and priority event end to end.
    probe_every = max(1, viewers // _env_int("BENCH_PROBES", 100))
    tmp = Path(tempfile.mkdtemp(prefix=f"qm-bench-{kind}-"))
    prefix = f"qm-bench-{secrets.token_hex(4)}"
    env = {
        **base_env,
        "DJANGO_ENV": "development",
        "DJANGO_SETTINGS_MODULE": "qianmian.settings",
        "DATABASE_URL": f"{_pg_server()}/{database}",
        "VAR_DIR": str(tmp),
        "REDIS_URL": redis_url,
        "REALTIME_PREFIX": prefix,
        "CACHE_KEY_PREFIX": prefix,
        "CHANNEL_PREFIX": prefix,
        "TASK_RUNNER": "inprocess",
        "REALTIME_TICK_MS": "200",
        # The bar is "every chat message while chat stays under the shaping rate": the
        # bench sets the shaping rate above the 500/s it sends, so nothing may be sampled.
        # BENCH_SHOWN_CHAT_RATE sets a real shaping rate instead (the cost model's shaped
        # figure, docs/bench/fanout.md): probes then miss chat by design.
        "REALTIME_CHAT_RATE": os.environ.get(
            "BENCH_SHOWN_CHAT_RATE", str(max(1000, chat_rate * 2))
        ),
        "LOG_LEVEL": "INFO",
        "PYTHONPATH": str(ROOT),
    }
    setup = json.loads(
        subprocess.run(
            [PY, "-m", "bench.fanout_setup", str(viewers), str(tmp / "tokens.json")],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    tokens = json.loads(Path(setup["tokens_file"]).read_text())
    room = setup["room"]
    app = "qianmian.asgi:application" if kind == "hub" else "bench.stock_channels:application"
    # BENCH_HUB_PROCS (hub only; default 2): the cost model's per-process figure is checked
    # at 1 and 2 processes (docs/bench/fanout.md, "Cost model for larger rooms").
    n_servers = _env_int("BENCH_HUB_PROCS", 2) if kind == "hub" else 2
    ports = [free_port() for _ in range(n_servers)]
    logs = [open(tmp / f"server{i}.log", "w") for i in range(n_servers)]  # noqa: SIM115
    # BENCH_PROFILE=1: the hub's servers run under bench/sampler.py; one profile per phase.
    profile = kind == "hub" and bool(os.environ.get("BENCH_PROFILE"))
    prof_files = [tmp / f"profile{i}.json" for i in range(n_servers)]
    servers = [
        subprocess.Popen(
            [
                PY,
                *(["-m", "bench.sampler", str(prof_file)] if profile else []),
                "-m",
                "uvicorn",
                app,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                # The hub runs on the project's WebSocket protocol (core.websocket, as in
                # production; BENCH_HUB_WS=auto compares uvicorn's own); stock Channels on
                # uvicorn's default, as a stock app would.
                *(
                    ["--ws", os.environ.get("BENCH_HUB_WS", "core.websocket:WebSocketProtocol")]
                    if kind == "hub"
                    else ["--ws", "auto"]
                ),
                "--ws-per-message-deflate",
                "false",
                "--no-access-log",
                "--log-level",
                "warning",
                "--lifespan",
                "on" if kind == "hub" else "off",
                "--backlog",
                "4096",
            ],
            cwd=ROOT,
            env=env,
            stderr=log_file,
            # Own process group: the servers' CRM writer and chat worker children go with them
            # (a writer still draining its backlog would eat the next phase's CPU).
            start_new_session=True,
        )
        for port, log_file, prof_file in zip(ports, logs, prof_files, strict=True)
    ]
    profiles: dict = {}
    clients: list[subprocess.Popen] = []
    try:
        for port, proc in zip(ports, servers, strict=True):
            wait_port(port, proc)
        monitor = Monitor([p.pid for p in servers])
        monitor.start()
        t0 = time.time() + 4
        join_s = viewers / 1000
        inject_start = t0 + join_s + 2
        inject_stop = inject_start + fanout_s
        measure_from, measure_to = inject_start + 3, inject_stop - 1
        burst_at = inject_stop + 4
        end_at = burst_at + viewers / 5000 + 4
        share = [tokens[i::procs] for i in range(procs)]
        for i in range(procs):
            cfg = {
                "ports": ports,
                "path": f"/ws/rooms/{room}/?token=",
                "tokens": share[i],
                "offset": i,
                "probe_every": probe_every,
                "join_at": t0,
                "join_rate": 1000 / procs,
                "likes_from": inject_start,
                "like_rate": like_rate / procs,
                "measure_from": measure_from,
                "measure_to": measure_to,
                "burst_at": burst_at,
                "burst_rate": 5000 / procs,
                "end_at": end_at,
                # route: this process' chatters send its share of the chat, in the same
                # window the injector would publish it in.
                "chat": {
                    "from": inject_start,
                    "to": inject_stop,
                    "rate": chat_rate / procs,
                    "chatters": chatters,
                    "procs": procs,
                }
                if route
                else None,
            }
            proc = subprocess.Popen(
                [PY, "-m", "bench.fanout_client"],
                cwd=ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            proc.stdin.write(json.dumps(cfg))
            proc.stdin.close()
            clients.append(proc)
        injector = subprocess.Popen(
            [PY, "-m", "bench.fanout_inject"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        injector.stdin.write(
            json.dumps(
                {
                    "mode": kind,
                    "room": room,
                    "start_at": inject_start,
                    "stop_at": inject_stop,
                    # route: the chatters send the chat; the injector only the priority events.
                    "chat_rate": 0 if route else chat_rate,
                    "prio_rate": 2,
                }
            )
        )
        injector.stdin.close()
        loadgen = Monitor([p.pid for p in clients] + [injector.pid], with_children=False)
        # Drain every load generator's stdout from the start: a result larger than the
        # pipe (64 KiB) must never wait on (or be cut short by) the bench's schedule.
        outputs = {proc.pid: _Output(proc) for proc in [*clients, injector]}
        phases = [
            (t0, None),
            (t0 + join_s + 1, "join_sustained"),
            (measure_from, None),
            (measure_to, "fanout"),
            (burst_at, None),
            (burst_at + viewers / 5000 + 2, "join_burst"),
        ]

        def snapshot_until(when: float) -> None:
            # Sleep until ``when``, sending the profiler's phase signals due before it.
            while phases and phases[0][0] <= when:
                at, _name = phases.pop(0)
                time.sleep(max(0, at - time.time()))
                if profile:
                    for proc in servers:
                        proc.send_signal(signal.SIGUSR1)
                snapshots.append(_name)
            time.sleep(max(0, when - time.time()))

        snapshots: list[str | None] = []
        snapshot_until(measure_from)
        monitor.mark("from")
        loadgen.mark("from")
        pg_from = _pg_backend_cpu(database)
        snapshot_until(measure_to)
        monitor.mark("to")
        loadgen.mark("to")
        pg_to = _pg_backend_cpu(database)
        snapshot_until(end_at - 1)
        injected = json.loads(outputs[injector.pid].result() or "{}")
        lost_codes: list[int | None] = []
        lost_outputs: list[dict] = []
        injector.wait(60)
        parts = []
        for proc in clients:
            out = outputs[proc.pid].result()
            proc.wait(120)
            try:
                parts.append(json.loads(out))
            except ValueError:  # a load generator died: report, do not lose the section
                parts.append(None)
                lost_codes.append(proc.returncode)
                # What it printed instead (size and both ends), to tell a cut result from
                # a crash.
                lost_outputs.append(
                    {"chars": len(out or ""), "head": (out or "")[:200], "tail": (out or "")[-200:]}
                )
        monitor.stop_flag.set()
    finally:
        for proc in clients:
            if proc.poll() is None:
                proc.kill()
        for proc in servers:
            proc.terminate()
        for proc in servers:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if profile:
            for prof_file in prof_files:
                for n, name in enumerate(snapshots):
                    part = Path(f"{prof_file}.{n}")
                    if name and part.exists():
                        profiles.setdefault(name, []).append(json.loads(part.read_text()))
        server_stats = []
        for log_file in logs:
            log_file.close()
            for line in Path(log_file.name).read_text(errors="replace").splitlines():
                if "room hub stats" in line:
                    server_stats.append(json.loads(line.split("room hub stats", 1)[1]))
        shutil.rmtree(tmp, ignore_errors=True)
        if kind == "hub":
            try:
                _redis_drop(redis_url, prefix)
            except redis.RedisError as exc:
                print(f"could not drop the run's Redis keys: {exc!r}", file=sys.stderr)

    lost = sum(1 for p in parts if p is None)
    parts = [p for p in parts if p is not None]
    if not parts:
        return {"error": "every load generator failed", "server_hub_stats": server_stats}
    if route:
        injected["chat"] = sorted(
            (x for p in parts for x in p["fanout"].get("chat_sent", [])), key=lambda x: x[1]
        )
    # -- fan-out figures -------------------------------------------------------------------
    lo, hi = (measure_from + 0.5) * 1000, (measure_to - 0.5) * 1000
    chat_ids = [n for n, t in injected.get("chat", []) if lo <= t <= hi]
    prio_ids = [n for n, t in injected.get("prio", []) if lo <= t <= hi]
    probes = [r for p in parts for r in p["fanout"]["probe_ids"]]
    # An empty window (the injector started late on a loaded box) proves nothing.
    probes_complete_chat = (
        sum(1 for r in probes if all(_covers(r, n) for n in chat_ids)) if chat_ids else 0
    )
    probes_complete_prio = (
        sum(1 for r in probes if all(_covers(r, n) for n in prio_ids)) if prio_ids else 0
    )
    delivered_fraction = (
        statistics.mean(sum(1 for n in chat_ids if _covers(r, n)) / len(chat_ids) for r in probes)
        if probes and chat_ids
        else 0.0
    )
    fps = [x for p in parts for x in p["fanout"]["frames_per_s"]]
    chat_lat = [x for p in parts for x in p["fanout"]["chat_lat_ms"]]
    prio_lat = [x for p in parts for x in p["fanout"]["prio_lat_ms"]]
    counts = [x for p in parts for x in p["fanout"]["chat_counts"]]
    fanout = {
        "viewers_connected": sum(p["fanout"]["sockets"] for p in parts),
        "chat_per_s_sent": round(len(injected.get("chat", [])) / fanout_s, 1),
        "likes_per_s_sent": like_rate,
        "window_s": round(measure_to - measure_from, 1),
        "chat_events_in_window": len(chat_ids),
        "priority_events_in_window": len(prio_ids),
        "probes": len(probes),
        "probes_with_every_chat": probes_complete_chat,
        "probes_with_every_priority_event": probes_complete_prio,
        "chat_delivered_fraction_probes": round(delivered_fraction, 4),
        "chat_count_min_probes": min(counts) if counts else None,
        "chat_count_median_probes": statistics.median(counts) if counts else None,
        "chat_p50_ms": pct(chat_lat, 0.5),
        "chat_p99_ms": pct(chat_lat, 0.99),
        "priority_p99_ms": pct(prio_lat, 0.99),
        "frames_per_s_per_viewer_min": pct(fps, 0.0),
        "frames_per_s_per_viewer_p1": pct(fps, 0.01),
        "frames_per_s_per_viewer_median": pct(fps, 0.5),
        "server_rss_peak_mb_total": round(monitor.peak_rss_mb, 1),
        "server_cpu_percent_total": monitor.cpu_between("from", "to"),
        "load_generators_cpu_percent_total": loadgen.cpu_between("from", "to"),
        "load_average_at_window_end": monitor.loadavg.get("to"),
        "server_cpu_kernel_share": monitor.system_share("from", "to"),
        # PostgreSQL's backends for this run's database (not in the servers' figure).
        "postgres_cpu_percent": round(
            100
            * sum(pg_to[pid] - pg_from[pid] for pid in pg_to if pid in pg_from)
            / (measure_to - measure_from),
            1,
        ),
        "box_cpu_percent_window": monitor.box_between("from", "to"),
        "server_hub_stats": server_stats,
    }
    fanout["pass"] = bool(
        probes
        and probes_complete_chat == len(probes)
        and probes_complete_prio == len(probes)
        and (fanout["chat_p99_ms"] or 1e9) <= 1000
        and (fanout["frames_per_s_per_viewer_p1"] or 0) >= 4.5
        and fanout["server_rss_peak_mb_total"] <= 2048
        and fanout["viewers_connected"] == viewers
    )
    fanout["load_generators_lost"] = lost
    fanout["load_generators_lost_exit_codes"] = lost_codes
    fanout["load_generators_lost_outputs"] = lost_outputs
    # What one received frame costs the load generators (CPU of the client processes over
    # the window / frames they received in it); the injector is not included.
    client_cpu = sum(p["fanout"].get("cpu_s", 0) for p in parts)
    client_sys = sum(p["fanout"].get("cpu_sys_s", 0) for p in parts)
    client_frames = sum(p["fanout"].get("frames", 0) for p in parts)
    fanout["client_cpu_us_per_frame"] = (
        round(1e6 * client_cpu / client_frames, 2) if client_frames else None
    )
    fanout["client_cpu_us_per_frame_in_kernel"] = (
        round(1e6 * client_sys / client_frames, 2) if client_frames else None
    )
    window_s = measure_to - measure_from
    fanout["client_cpu_percent_total"] = round(100 * client_cpu / window_s, 1)
    # What one delivered frame costs the servers (their CPU over the window, CRM writer
    # included, / frames the load generators received in it): the figure issue 19 asks to halve.
    server_cpu_s = (fanout["server_cpu_percent_total"] or 0) / 100 * window_s
    fanout["server_cpu_us_per_delivered_frame"] = (
        round(1e6 * server_cpu_s / client_frames, 2) if client_frames else None
    )
    # The cost model's inputs (docs/bench/fanout.md): processes, frames one core delivers,
    # and what each viewer is sent.
    fanout["server_processes"] = n_servers
    fanout["frames_per_s_per_server_core"] = (
        round(1e6 / fanout["server_cpu_us_per_delivered_frame"])
        if fanout["server_cpu_us_per_delivered_frame"]
        else None
    )
    probe_frames = sum(p["fanout"].get("probe_frames", 0) for p in parts)
    probe_bytes = sum(p["fanout"].get("probe_payload_bytes", 0) for p in parts)
    fanout["frame_payload_bytes_mean"] = round(probe_bytes / probe_frames) if probe_frames else None
    fanout["payload_bytes_per_s_per_viewer"] = (
        round(probe_bytes / probe_frames * (statistics.median(fps) if fps else 0))
        if probe_frames
        else None
    )
    fanout["server_rss_mb_per_1000_viewers"] = round(
        1000 * fanout["server_rss_peak_mb_total"] / viewers, 1
    )
    if route:
        # Every chat sent took chat_post: what it stored is the proof (and sent − stored is
        # what moderation or the rate limit refused, or what never got posted).
        fanout["chat_route"] = {
            "chatters": chatters,
            "chat_sent": len(injected["chat"]),
            **_chat_stored(database, room),
        }
    result = {
        "join_sustained": _join_summary([p["join_sustained"] for p in parts], viewers, 1000),
        "fanout": fanout,
        "join_burst": _join_summary([p["join_burst"] for p in parts], viewers, 5000),
    }
    if profiles:
        result["server_profile"] = profiles
    return result


def _own_redis() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--maxclients",
            "10000",
        ],
        stdout=subprocess.DEVNULL,
    )
    wait_port(port, proc, 10)
    return proc, f"redis://127.0.0.1:{port}/0"


# Figures whose worst run is the largest value, and those whose worst is the smallest.
_WORST_HIGH = {
    "fanout": (
        "chat_p99_ms",
        "priority_p99_ms",
        "server_cpu_us_per_delivered_frame",
        "server_rss_peak_mb_total",
        "server_cpu_percent_total",
    ),
    "join_sustained": ("connect_to_first_frame_p99_ms",),
    "join_burst": ("connect_to_first_frame_p99_ms",),
}
_WORST_LOW = {
    "fanout": (
        "frames_per_s_per_viewer_p1",
        "probes_with_every_chat",
        "probes_with_every_priority_event",
        "chat_delivered_fraction_probes",
    ),
}


def worst_of(runs: list[dict]) -> dict:
    """The worst value of each bar's figure over every run (never the best), and how many
    runs met every bar."""
    worst: dict = {}
    for phase, keys in _WORST_HIGH.items():
        for key in keys:
            values = [r[phase][key] for r in runs if r[phase].get(key) is not None]
            worst[f"{phase}.{key}"] = max(values) if values else None
    for phase, keys in _WORST_LOW.items():
        for key in keys:
            values = [r[phase][key] for r in runs if r[phase].get(key) is not None]
            worst[f"{phase}.{key}"] = min(values) if values else None
    worst["runs_meeting_every_bar"] = sum(
        1
        for r in runs
        if r["fanout"]["pass"]
        and r["join_sustained"]["pass_p99_le_1s"]
        and r["join_burst"]["pass_p99_le_1s"]
    )
    worst["runs"] = len(runs)
    return worst


def run() -> dict:
    """``BENCH_RUNS`` (default 5) hub runs in a row, every one reported with the worst;
    stock Channels once after them, in the same invocation, unless ``BENCH_SKIP_BASELINE``."""
    viewers = _env_int("BENCH_VIEWERS", 10000)
    runs = max(1, _env_int("BENCH_RUNS", 5))
    chat_path = os.environ.get("BENCH_CHAT_PATH", "route")
    if chat_path not in CHAT_PATHS:
        raise SystemExit(f"BENCH_CHAT_PATH must be one of {CHAT_PATHS}, not {chat_path!r}")
    if chat_path == "route":
        _chatters(viewers)  # fail before any database is made
    load = os.getloadavg()
    result = {
        "viewers": viewers,
        # How chat entered the hub's room (stock Channels is always ``inject``), and where
        # the servers kept their data.
        "chat_path": chat_path,
        "shown_chat_rate": os.environ.get("BENCH_SHOWN_CHAT_RATE") or "unshaped",
        "database": {"engine": "postgresql", "server": _pg_server_shown()},
        "redis": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
        "load_average_before": [round(x, 2) for x in load],
        "uptime_s_before": _uptime_s(),
        "note": "2-core box; load generators on the same machine",
    }
    base_env = dict(os.environ)
    template = _pg_template({**base_env, "DJANGO_ENV": "development", "REDIS_URL": ""})
    try:
        _runs(result, base_env=base_env, viewers=viewers, runs=runs, template=template)
    finally:
        _pg_drop(template)
    return result


def _runs(result: dict, *, base_env: dict, viewers: int, runs: int, template: str) -> None:
    hub_runs = []
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
    settle_s = float(os.environ.get("BENCH_SETTLE_SECONDS", 60))
    for index in range(runs):
        # Every run starts from the same state: its own SQLite file, cache and Redis prefix
        # (run_system), the previous run's Redis keys deleted, and the previous run's tail
        # (TIME_WAIT sockets, the load it left) let go first (docs/bench/fanout.md).
        start = _settle(settle_s if index else 0)
        start["bench_redis_keys_at_start"] = len(_redis_keys(redis_url, "qm-bench-*"))
        print(f"-- hub run {index + 1}/{runs} {json.dumps(start)}", file=sys.stderr, flush=True)
        one = run_system(
            "hub",
            base_env=base_env,
            redis_url=redis_url,
            viewers=viewers,
            template=template,
            chat_path=result["chat_path"],
        )
        one["start_state"] = start
        one["load_average_before"] = start["load_average_at_start"]
        hub_runs.append(one)
    result["hub_runs"] = hub_runs
    result["hub_worst"] = worst_of(hub_runs)
    # The last run keeps its old key so readers of earlier JSON find the same shape.
    result["hub"] = hub_runs[-1]
    if not os.environ.get("BENCH_SKIP_BASELINE"):
        redis_proc, url = _own_redis()
        try:
            result["stock_channels"] = run_system(
                "stock", base_env=base_env, redis_url=url, viewers=viewers, template=template
            )
        finally:
            redis_proc.terminate()
            redis_proc.wait(10)


def _uptime_s() -> float | None:
    try:
        return float(Path("/proc/uptime").read_text().split()[0])
    except OSError:
        return None


if __name__ == "__main__":
    print(json.dumps(run(), ensure_ascii=False, indent=2))
