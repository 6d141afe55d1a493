"""``make stream-demo``: real video in the demo room.

Starts nginx-rtmp with its own prefix (var/media-server) on the ports of MEDIA_RTMP_URL and
MEDIA_HLS_URL (1935 / 8088 by default: unprivileged), with callbacks to the running
``make run`` server (QM_URL, else SITE_URL: both from HOST/PORT in the Makefile), and pushes ffmpeg's test
source into the demo room with the app's signed push URL. The room goes live through the
on_publish callback; Ctrl-C stops ffmpeg first (so nginx sends publish_done and
record_done: the room ends and its replay is attached), then nginx.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

from core.debian import nginx_binary


def missing_debian_packages() -> list[str]:
    """The Debian packages the demo runs that this machine lacks (`make stream-demo` checks
    them with deploy/need-debian.sh first; this covers running the module directly)."""
    # local import: python -m entry point, checked before Django is set up
    from livecommerce.media.nginx_conf import MODULE

    present = {
        "nginx": bool(nginx_binary()),
        "libnginx-mod-rtmp": Path(MODULE).exists(),
        "ffmpeg": bool(shutil.which("ffmpeg")),
    }
    return [name for name, ok in present.items() if not ok]


def main() -> int:
    missing = missing_debian_packages()
    if missing:
        print(
            f"make stream-demo needs Debian packages that are not installed: {' '.join(missing)}\n"
            f"install them with:\n  sudo apt-get install -y --no-install-recommends "
            f"{' '.join(missing)}",
            file=sys.stderr,
        )
        return 1
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qianmian.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.utils import timezone

    # local import: python -m entry point; these need the django.setup() above
    from core import links
    from core.models import Organization
    from livecommerce import media
    from livecommerce.media.nginx_conf import NginxRtmp, ffmpeg_testsrc, port_is_free
    from livecommerce.models import Room, RoomStatus, StreamerProfile

    org = Organization.objects.filter(slug="demo").first()
    if org is None:
        print("No demo organisation: run `make run` (it seeds the demo) first.", file=sys.stderr)
        return 1
    room = (
        Room.objects.for_org(org)
        .filter(status__in=[RoomStatus.SCHEDULED, RoomStatus.LIVE])
        .order_by("scheduled_start")
        .first()
    )
    if room is None:
        streamer = StreamerProfile.objects.for_org(org).first()
        room = Room.objects.for_org(org).create(
            org=org,
            streamer=streamer,
            title="演示直播 · 测试信号",
            scheduled_start=timezone.now() + timedelta(minutes=1),
        )
    rtmp_port = urlparse(settings.MEDIA_RTMP_URL).port or 1935
    http_port = urlparse(settings.MEDIA_HLS_URL).port or 8088
    for port in (rtmp_port, http_port):
        if not port_is_free(port):
            print(f"port {port} is busy (set MEDIA_RTMP_URL / MEDIA_HLS_URL)", file=sys.stderr)
            return 1
    # nginx-rtmp calls the app where `make run` serves it: QM_URL, or SITE_URL (both
    # derived from HOST/PORT by the Makefile).
    callback = (os.environ.get("QM_URL") or links.site_url()).rstrip("/")
    server = NginxRtmp(
        prefix=Path(settings.VAR_DIR) / "media-server",
        rtmp_port=rtmp_port,
        http_port=http_port,
        callback=callback,
    )
    server.start()
    push = media.push_url(room)
    print(f"nginx-rtmp: {server.rtmp_url}  HLS: {server.hls_url}")
    print(f"pushing ffmpeg testsrc into room {room.pk} 「{room.title}」")
    watch = links.absolute_reverse("live-room", args=[room.pk])
    print(f"watch: {watch}   (Ctrl-C ends the broadcast)")
    ffmpeg = ffmpeg_testsrc(push)
    try:
        while ffmpeg.poll() is None:
            time.sleep(0.5)
        err = ffmpeg.stderr.read().decode(errors="replace") if ffmpeg.stderr else ""
        print(f"ffmpeg stopped: {err[-800:]}", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        if ffmpeg.poll() is None:
            ffmpeg.send_signal(signal.SIGINT)
            try:
                ffmpeg.wait(timeout=10)
            except Exception:  # noqa: BLE001
                ffmpeg.kill()
        time.sleep(3)  # publish_done / record_done reach the app before nginx stops
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
