"""`make prod` under test: the runner (core/prod.py) started on private PostgreSQL and Redis,
driven through its nginx, stopped with SIGTERM like Ctrl-C would.

Used by tests/integration/test_prod_layout.py (the short form in `make test-integration`)
and by `make chaos` (more trials of the same faults).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.support.servers import ROOT, free_port

# The test tier's own settings must not leak into the layout's processes.
_DROP = ("DJANGO_ENV", "DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "TASK_RUNNER",
         "QM_TIER", "REALTIME_PREFIX", "CELERY_BROKER_URL", "PYTEST_CURRENT_TEST")  # fmt: skip


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def descendants(pid: int) -> set[int]:
    tree, found, todo = _children(), set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class ProdLayout:
    def __init__(self, *, var_dir: Path, database_url: str, redis_url: str, **env: str):
        self.var_dir = var_dir
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if k not in _DROP}
        self.env.update(
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            VAR_DIR=str(var_dir),
            HOST="127.0.0.1",
            PORT=str(self.port),
            ASGI_PROCS="2",
            WORKER_CONCURRENCY="4",
            SEED="1",
            DB_POOL_MAX="8",
            LOG_LEVEL="WARNING",
        )
        self.env.update(env)
        self.proc: subprocess.Popen | None = None
        self.log = var_dir / "make-prod.log"
        self.started_in = 0.0

    @property
    def conf(self) -> Path:
        return self.var_dir / "prod" / "supervisord.conf"

    def start(self, timeout: float = 150) -> None:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - the project's own runner
                [sys.executable, "-m", "core.prod"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.wait_healthy(timeout)
        self.started_in = time.monotonic() - began

    def tail(self, n: int = 60) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        return ""

    def wait_healthy(self, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"make prod exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                status, body = self.request("GET", "/api/v1/health", timeout=5)
                last = (status, body)
                if status == 200 and self._asgi_sockets_answer():
                    return body
            except OSError as exc:
                last = exc
            time.sleep(0.5)
        raise TimeoutError(f"never healthy: {last}\n{self.tail()}")

    def _asgi_sockets_answer(self) -> bool:
        """Every ASGI process accepts connections (health alone may come from one)."""
        sockets = sorted((self.var_dir / "prod").glob("asgi-*.sock"))
        for path in sockets:
            with socket.socket(socket.AF_UNIX) as sock:
                try:
                    sock.connect(str(path))
                except OSError:
                    return False
        return len(sockets) == int(self.env["ASGI_PROCS"])

    def request(
        self,
        method: str,
        path: str,
        body: dict | None = None,
        *,
        token: str = "",
        source: str = "127.0.0.1",
        headers: dict | None = None,
        timeout: float = 15,
    ) -> tuple[int, dict]:
        """One HTTP request to nginx from the loopback address ``source``."""
        conn = http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=timeout, source_address=(source, 0)
        )
        try:
            sent = {"Host": f"127.0.0.1:{self.port}", **(headers or {})}
            payload = None
            if body is not None:
                payload = json.dumps(body).encode()
                sent["Content-Type"] = "application/json"
            if token:
                sent["Authorization"] = f"Token {token}"
            conn.request(method, path, body=payload, headers=sent)
            response = conn.getresponse()
            raw = response.read()
            try:
                data = json.loads(raw) if raw else {}
            except ValueError:
                data = {"_raw": raw[:200].decode(errors="replace")}
            return response.status, data
        finally:
            conn.close()

    def django_env(self) -> dict:
        """The environment the layout's own processes run with (for a helper run inside it)."""
        from core.prod import prepare_environment

        return {k: v for k, v in prepare_environment(self.env).items() if not k.startswith("_QM_")}

    def ctl(self, *args: str) -> str:
        result = subprocess.run(  # noqa: S603
            [str(Path(sys.executable).parent / "supervisorctl"), "-c", str(self.conf), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        return result.stdout.strip()

    def pid_of(self, program: str) -> int:
        """PID of one supervised program ("asgi:asgi-1", "worker", "beat", "nginx")."""
        return int(self.ctl("pid", program) or 0)

    def wait_running(self, program: str, *, other_than: int = 0, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self.pid_of(program)
            if pid and pid != other_than and alive(pid):
                return pid
            time.sleep(0.2)
        raise TimeoutError(f"{program} was not started again:\n{self.tail()}")

    def stop(self, timeout: float = 60) -> tuple[int | None, set[int]]:
        """SIGTERM as a service manager would (Ctrl-C is SIGINT: the same path); returns the
        exit code and every process of the layout still alive afterwards."""
        if self.proc is None:
            return None, set()
        tree = descendants(self.proc.pid)
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
        marker = str(self.var_dir)
        left = {pid for pid in tree if alive(pid)}
        for entry in Path("/proc").iterdir():
            pid = int(entry.name) if entry.name.isdigit() else 0
            if pid and pid != os.getpid() and marker in cmdline(pid) and alive(pid):
                left.add(pid)
        return code, left

    def kill_everything(self) -> None:
        """Last resort for a failed test: nothing of the layout may outlive it."""
        if self.proc is None:
            return
        for pid in descendants(self.proc.pid) | {self.proc.pid}:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            self.proc.wait(10)
