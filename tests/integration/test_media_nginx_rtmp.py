"""The real media path: nginx + libnginx-mod-rtmp started with its own config on free
ports, ffmpeg's test source pushed with the app's signed URL, and the app reacting to the
callbacks: on_publish → live, HLS segments on disk, stop → on_publish_done → ended,
on_record_done → replay attached (remuxed to VOD HLS) with the product clip listed."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from django.utils import timezone

from livecommerce import media
from livecommerce.media.nginx_conf import NginxRtmp, ffmpeg_testsrc, free_port
from livecommerce.models import ProductClip, Replay, Room
from livecommerce.services.products import room_product_pin
from tests.factories import MembershipFactory, RoomFactory, UserFactory
from tests.livecommerce.factories import RoomProductFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def wait_until(check, *, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def nginx(live_server, tmp_path, settings):
    server = NginxRtmp(
        prefix=tmp_path / "nginx",
        rtmp_port=free_port(),
        http_port=free_port(),
        callback=live_server.url,
    )
    settings.MEDIA_PROVIDER = "nginx-rtmp"
    settings.MEDIA_RTMP_URL = server.rtmp_url
    settings.MEDIA_HLS_URL = server.hls_url
    settings.MEDIA_ROOT = tmp_path / "media"
    server.start()
    yield server
    server.stop()


def _room():
    membership = MembershipFactory(user=UserFactory(username="rtmp-host"), role="streamer")
    room = RoomFactory(streamer__org=membership.org, streamer__user=membership.user)
    return membership, room


def test_push_goes_live_writes_hls_ends_and_attaches_the_replay(nginx):
    import urllib.request

    membership, room = _room()
    item = RoomProductFactory(room=room)
    ffmpeg = ffmpeg_testsrc(media.push_url(room))
    try:
        wait_until(
            lambda: Room.unscoped.get(pk=room.pk).status == "live", timeout=20, what="on_publish"
        )
        room.refresh_from_db()
        # The host explains a product while live: a clip span from stream start.
        room_product_pin(membership=membership, room=room, product=item.product)
        playlist = nginx.hls_dir / f"{room.stream_key}.m3u8"
        wait_until(
            lambda: playlist.exists() and len(list(nginx.hls_dir.glob("*.ts"))) >= 2,
            timeout=30,
            what="HLS segments",
        )
        served = urllib.request.urlopen(media.play_url(room), timeout=5).read().decode()  # noqa: S310
        assert "#EXTM3U" in served and ".ts" in served
    finally:
        # Stop the publisher first: nginx sends publish_done/record_done only then.
        ffmpeg.send_signal(signal.SIGINT)
        try:
            ffmpeg.wait(timeout=10)
        except Exception:  # noqa: BLE001
            ffmpeg.kill()
    wait_until(
        lambda: Room.unscoped.get(pk=room.pk).status == "ended", timeout=20, what="publish_done"
    )
    replay = wait_until(
        lambda: Replay.unscoped.filter(room=room).first(), timeout=30, what="record_done"
    )
    assert replay.source == "nginx-rtmp"
    assert replay.url.endswith(f"replays/{room.pk}/index.m3u8")
    vod = Path(nginx_media_root()) / "replays" / str(room.pk) / "index.m3u8"
    text = vod.read_text()
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in text and "#EXT-X-ENDLIST" in text
    assert replay.duration_s >= 2
    clip = ProductClip.unscoped.get(room=room)
    assert clip.end_s is not None and clip.end_s >= clip.start_s
    assert list(nginx.rec_dir.glob("*.flv"))


def nginx_media_root():
    from django.conf import settings

    return settings.MEDIA_ROOT


def test_a_push_with_a_forged_signature_is_refused(nginx):
    _, room = _room()
    forged = f"{nginx.rtmp_url}/{room.stream_key}?exp={int(time.time()) + 600}&sign=deadbeef"
    ffmpeg = ffmpeg_testsrc(forged, seconds=5)
    try:
        ffmpeg.wait(timeout=20)
    finally:
        if ffmpeg.poll() is None:
            ffmpeg.kill()
    assert ffmpeg.returncode != 0
    room.refresh_from_db()
    assert room.status == "scheduled" and room.started_at is None
    assert not (nginx.hls_dir / f"{room.stream_key}.m3u8").exists()
    assert timezone.now()
