"""Render deploy/nginx-rtmp.conf.template and run nginx-rtmp with its own prefix.

Used by ``make stream-demo`` and by the integration test (tests/integration/test_media_*).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from core.debian import NGINX_MISSING, nginx_binary

MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"


@dataclass
class NginxRtmp:
    prefix: Path
    rtmp_port: int
    http_port: int
    callback: str
    process: subprocess.Popen | None = None

    @property
    def hls_dir(self) -> Path:
        return self.prefix / "hls"

    @property
    def rec_dir(self) -> Path:
        return self.prefix / "rec"

    @property
    def rtmp_url(self) -> str:
        return f"rtmp://127.0.0.1:{self.rtmp_port}/live"

    @property
    def hls_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/hls"

    def render(self) -> Path:
        for sub in ("logs", "tmp", "hls", "rec", "conf"):
            (self.prefix / sub).mkdir(parents=True, exist_ok=True)
        template = (Path(settings.BASE_DIR) / "deploy" / "nginx-rtmp.conf.template").read_text()
        values = {
            "PREFIX": str(self.prefix),
            "RTMP_PORT": str(self.rtmp_port),
            "HTTP_PORT": str(self.http_port),
            "HLS_DIR": str(self.hls_dir),
            "REC_DIR": str(self.rec_dir),
            "CALLBACK": self.callback.rstrip("/"),
            "SECRET": settings.MEDIA_CALLBACK_SECRET,
            "MODULE": MODULE,
            "USER_LINE": "user root;" if os.geteuid() == 0 else "",
        }
        for key, value in values.items():
            template = template.replace(f"@@{key}@@", value)
        conf = self.prefix / "conf" / "nginx.conf"
        conf.write_text(template)
        return conf

    def start(self) -> None:
        conf = self.render()
        nginx = nginx_binary()
        if not nginx:
            raise RuntimeError(NGINX_MISSING)
        self.process = subprocess.Popen(  # noqa: S603 - fixed argv
            [
                nginx,
                "-p",
                str(self.prefix),
                "-c",
                str(conf),
                "-e",
                str(self.prefix / "logs" / "error.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        wait_for_port(self.rtmp_port, process=self.process)
        wait_for_port(self.http_port, process=self.process)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_for_port(port: int, *, process=None, timeout: float = 15.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process is not None and process.poll() is not None:
            err = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RuntimeError(f"process exited early: {err[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"port {port} did not open")


def ffmpeg_testsrc(push_url: str, *, seconds: int | None = None) -> subprocess.Popen:
    """ffmpeg's test pattern + a tone, H.264/AAC over RTMP in real time."""
    argv = [
        shutil.which("ffmpeg") or "ffmpeg",
        "-nostdin",
        "-loglevel",
        "error",
        "-re",
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=640x360:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=44100",
    ]
    if seconds:
        argv += ["-t", str(seconds)]
    argv += [
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-tune",
        "zerolatency",
        "-pix_fmt",
        "yuv420p",
        "-g",
        "50",
        "-c:a",
        "aac",
        "-b:a",
        "64k",
        "-f",
        "flv",
        push_url,
    ]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
