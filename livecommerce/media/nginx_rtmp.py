"""nginx + libnginx-mod-rtmp adapter.

nginx-rtmp posts form-encoded callbacks (``app``, ``name`` = the stream key, ``addr``,
``call`` plus the push URL's query args, so our ``exp``/``sign`` arrive too). Any non-2xx
answer to ``on_publish`` refuses the stream. The callback URL carries ``?secret=`` (set in
``deploy/nginx-rtmp.conf.template``), checked before anything else.

Recordings: ``record all`` writes an FLV per publish; ``on_record_done`` posts its ``path``.
When that file is on this machine we remux it (``ffmpeg -c copy``, no re-encode) into a
VOD HLS playlist under MEDIA_ROOT/replays/ so hls.js plays the replay from the start;
otherwise the replay points at MEDIA_RECORD_URL/<file>.
"""

from __future__ import annotations

import hmac
import logging
import shutil
import subprocess
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage

from core.tasks import enqueue
from livecommerce import media
from livecommerce.media import callbacks

log = logging.getLogger(__name__)


def secret_ok(secret: str) -> bool:
    return hmac.compare_digest(secret or "", settings.MEDIA_CALLBACK_SECRET)


def handle(event: str, form: dict) -> None:
    """Dispatch one nginx-rtmp callback. Raises callbacks.Rejected to refuse a publish."""
    key = form.get("name", "")
    if event == "publish":
        if not media.verify_push_signature(key, form.get("exp", ""), form.get("sign", "")):
            raise callbacks.Rejected("bad or expired push signature")
        callbacks.stream_started(stream_key=key)
    elif event == "publish_done":
        callbacks.stream_stopped(stream_key=key)
    elif event == "record_done":
        path = form.get("path", "")
        if not callbacks.first_time("nginx-rtmp:record", path or key):
            return

        # Remuxing takes a moment: answer nginx at once, attach the replay in the background.
        enqueue("livecommerce.replay_from_recording", key, path)
    else:
        raise callbacks.Rejected(f"unknown event {event}")


def attach_recording(*, stream_key: str, path: str) -> None:
    room = callbacks.room_for_stream(stream_key)
    if room is None:
        return
    url, duration = _replay_from_recording(room.pk, path)
    callbacks.recording_ready(
        stream_key=stream_key, url=url, source="nginx-rtmp", duration_s=duration
    )


def _replay_from_recording(room_id: int, path: str) -> tuple[str, int]:
    source = Path(path)
    ffmpeg = shutil.which("ffmpeg")
    if source.is_file() and ffmpeg:
        target = Path(settings.MEDIA_ROOT) / "replays" / str(room_id)
        target.mkdir(parents=True, exist_ok=True)
        playlist = target / "index.m3u8"
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [
                ffmpeg,
                "-nostdin",
                "-loglevel",
                "error",
                "-y",
                "-i",
                str(source),
                "-c",
                "copy",
                "-f",
                "hls",
                "-hls_time",
                "4",
                "-hls_playlist_type",
                "vod",
                "-hls_segment_filename",
                str(target / "seg%04d.ts"),
                str(playlist),
            ],
            capture_output=True,
            timeout=600,
            check=False,
        )
        if done.returncode == 0 and playlist.exists():
            duration = _playlist_seconds(playlist)
            return default_storage.url(f"replays/{room_id}/index.m3u8"), duration
        log.warning("replay remux failed: %s", done.stderr[-500:])
    return f"{settings.MEDIA_RECORD_URL.rstrip('/')}/{source.name}", 0


def _playlist_seconds(playlist: Path) -> int:
    total = 0.0
    for line in playlist.read_text().splitlines():
        if line.startswith("#EXTINF:"):
            total += float(line[8:].split(",")[0] or 0)
    return int(total)
