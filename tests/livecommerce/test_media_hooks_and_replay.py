import time
from urllib.parse import parse_qs, urlparse

import pytest
from django.test import Client

from livecommerce import media
from livecommerce.media import tencent
from livecommerce.models import Replay, Room
from tests.factories import RoomFactory
from tests.livecommerce.factories import RoomProductFactory

SECRET = "dev-media-callback-secret"


def _push_args(room):
    query = parse_qs(urlparse(media.push_url(room)).query)
    return {"exp": query["exp"][0], "sign": query["sign"][0]}


def _hook(event, data, secret=SECRET):
    return Client().post(f"/hooks/media/nginx-rtmp/{event}?secret={secret}", data)


@pytest.mark.django_db
class TestNginxRtmpHooks:
    def test_publish_with_a_signed_key_sets_live_and_done_ends(self, host_alice):
        room = RoomFactory(streamer=host_alice.profile)
        form = {"app": "live", "name": room.stream_key, "addr": "127.0.0.1", "call": "publish"}
        assert _hook("publish", {**form, **_push_args(room)}).status_code == 200
        room.refresh_from_db()
        assert room.status == "live" and room.started_at
        assert _hook("publish", {**form, **_push_args(room)}).status_code == 200  # replay
        assert _hook("publish_done", {**form, "call": "publish_done"}).status_code == 200
        assert _hook("publish_done", {**form, "call": "publish_done"}).status_code == 200
        room.refresh_from_db()
        assert room.status == "ended"

    def test_forged_secret_bad_signature_unknown_key_and_ended_room_are_refused(self, host_alice):
        room = RoomFactory(streamer=host_alice.profile)
        form = {"app": "live", "name": room.stream_key, **_push_args(room)}
        assert _hook("publish", form, secret="guess").status_code == 403
        assert _hook("publish", {**form, "sign": "0" * 32}).status_code == 403
        expired = {**form, "exp": str(int(time.time()) - 10)}
        assert _hook("publish", expired).status_code == 403
        unknown = {**form, "name": "no-such-key"}
        assert _hook("publish", unknown).status_code == 403
        ended = RoomFactory(streamer=host_alice.profile, status="ended")
        assert _hook("publish", {"name": ended.stream_key, **_push_args(ended)}).status_code == 403
        assert Room.unscoped.get(pk=room.pk).status == "scheduled"
        assert Client().get(f"/hooks/media/nginx-rtmp/publish?secret={SECRET}").status_code == 405

    def test_record_done_attaches_the_replay_once(
        self, host_alice, anon, django_capture_on_commit_callbacks
    ):
        room = RoomFactory(streamer=host_alice.profile, status="ended")
        form = {"name": room.stream_key, "path": "/nonexistent/rec/room.flv"}
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            assert _hook("record_done", form).status_code == 200
            assert _hook("record_done", form).status_code == 200
        assert len(callbacks) == 1  # the replayed callback enqueued nothing
        replay = Replay.unscoped.get(room=room)
        assert replay.url.endswith("/rec/room.flv")
        body = anon.get(f"/api/v1/rooms/{room.pk}/replay").json()
        assert body["url"] == replay.url and body["clips"] == []


@pytest.mark.django_db
class TestTencentHooks:
    def _post(self, body):
        return Client().post("/hooks/media/tencent", body, content_type="application/json")

    def test_push_url_is_signed_with_txsecret(self, host_alice, settings):
        room = RoomFactory(streamer=host_alice.profile)
        url = tencent.push_url(room, ttl=600)
        query = parse_qs(urlparse(url).query)
        tx_time = query["txTime"][0]
        assert int(tx_time, 16) > time.time()
        expected = tencent._md5(f"{settings.TENCENT_LIVE_PUSH_KEY}{room.stream_key}{tx_time}")
        assert query["txSecret"] == [expected]

    def test_signed_start_stop_and_recording_callbacks(self, host_alice):
        room = RoomFactory(streamer=host_alice.profile)
        t = int(time.time()) + 60
        base = {"t": t, "sign": tencent.callback_sign(t), "stream_id": room.stream_key}
        assert self._post({**base, "event_type": 1}).status_code == 200
        assert Room.unscoped.get(pk=room.pk).status == "live"
        assert self._post({**base, "event_type": 0}).status_code == 200
        assert Room.unscoped.get(pk=room.pk).status == "ended"
        record = {**base, "event_type": 100, "file_id": "f1", "video_url": "https://v/1.m3u8"}
        assert self._post(record).status_code == 200
        assert self._post(record).status_code == 200
        assert Replay.unscoped.get(room=room).url == "https://v/1.m3u8"

    def test_forged_or_expired_signature_is_refused(self, host_alice):
        room = RoomFactory(streamer=host_alice.profile)
        t = int(time.time()) + 60
        forged = {"t": t, "sign": "x", "stream_id": room.stream_key, "event_type": 1}
        assert self._post(forged).status_code == 403
        old = int(time.time()) - 1
        expired = {"t": old, "sign": tencent.callback_sign(old), "stream_id": room.stream_key}
        assert self._post({**expired, "event_type": 1}).status_code == 403
        assert (
            Client().post("/hooks/media/tencent", "not json", "application/json").status_code == 400
        )
        assert Room.unscoped.get(pk=room.pk).status == "scheduled"


@pytest.mark.django_db
def test_replay_lists_clips_and_counts_a_clip_view(host_alice, viewer_dan, anon):
    from django.utils import timezone

    room = RoomFactory(streamer=host_alice.profile, status="live", started_at=timezone.now())
    item = RoomProductFactory(room=room)
    host_alice.client().post(f"/api/v1/rooms/{room.pk}/products/{item.product_id}/pin")
    host_alice.client().post(f"/api/v1/rooms/{room.pk}/end")
    assert anon.get(f"/api/v1/rooms/{room.pk}/replay").status_code == 404
    Replay.unscoped.create(org=room.org, room=room, url="/media/replays/1/index.m3u8")
    body = anon.get(f"/api/v1/rooms/{room.pk}/replay").json()
    assert body["clips"][0]["product"]["id"] == item.product_id
    assert body["clips"][0]["end_s"] >= body["clips"][0]["start_s"] == 0
    clip_id = body["clips"][0]["id"]
    response = viewer_dan.client().post(
        f"/api/v1/rooms/{room.pk}/replay/watch", {"clip": clip_id}, format="json"
    )
    assert response.status_code == 204
    assert anon.get(f"/api/v1/rooms/{room.pk}/replay").json()["clips"][0]["views"] == 1
