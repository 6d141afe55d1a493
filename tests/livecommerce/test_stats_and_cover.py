import io

import pytest
from PIL import Image

from crm.services.events import event_record
from tests.factories import ContactFactory, RoomFactory
from tests.livecommerce.factories import CouponFactory


@pytest.mark.django_db
class TestStats:
    def test_stats_count_organic_activity(self, host_alice, sales_bob, viewer_dan):
        room = RoomFactory(streamer=host_alice.profile, status="live")
        other = ContactFactory(org=room.org)
        for contact in (viewer_dan.contact, other):
            event_record(contact=contact, type="room.join", room_id=room.pk)
        event_record(
            contact=other, type="room.leave", props={"watch_seconds": 120}, room_id=room.pk
        )
        event_record(
            contact=viewer_dan.contact,
            type="room.leave",
            props={"watch_seconds": 60},
            room_id=room.pk,
        )
        event_record(contact=other, type="chat", props={"text": "好看"}, room_id=room.pk)
        coupon = CouponFactory(room=room, released=True)
        viewer_dan.client().post(f"/api/v1/coupons/{coupon.pk}/claim")
        for actor in (host_alice, sales_bob):
            body = actor.client().get(f"/api/v1/rooms/{room.pk}/stats").json()
            assert body["unique_viewers"] == 2
            assert body["avg_watch_seconds"] == 90.0
            assert body["chats"] == 1 and body["claims"] == 1

    def test_average_watch_time_of_a_live_room_counts_viewers_still_watching(self, host_alice):
        from datetime import timedelta

        from django.utils import timezone

        room = RoomFactory(streamer=host_alice.profile, status="live")
        watching, gone = ContactFactory(org=room.org), ContactFactory(org=room.org)
        now = timezone.now()
        for contact in (watching, gone):
            event_record(
                contact=contact,
                type="room.join",
                room_id=room.pk,
                occurred_at=now - timedelta(seconds=100),
            )
        event_record(contact=gone, type="room.leave", props={"watch_seconds": 40}, room_id=room.pk)
        body = host_alice.client().get(f"/api/v1/rooms/{room.pk}/stats").json()
        assert body["unique_viewers"] == 2
        assert 69 <= body["avg_watch_seconds"] <= 75  # (100 so far + 40) / 2, give or take

    def test_stats_access(self, host_alice, host_frank, outsider_erin, viewer_dan):
        room = RoomFactory(streamer=host_alice.profile)
        assert host_frank.client().get(f"/api/v1/rooms/{room.pk}/stats").status_code == 403
        assert outsider_erin.client().get(f"/api/v1/rooms/{room.pk}/stats").status_code == 404
        assert viewer_dan.client().get(f"/api/v1/rooms/{room.pk}/stats").status_code == 403


@pytest.mark.django_db
class TestCover:
    def test_cover_is_validated_and_resized(self, host_alice, settings, tmp_path):
        settings.MEDIA_ROOT = tmp_path
        room = RoomFactory(streamer=host_alice.profile)
        raw = io.BytesIO()
        Image.new("RGB", (3000, 2000), "pink").save(raw, format="PNG")
        raw.seek(0)
        raw.name = "cover.png"
        response = host_alice.client().post(
            f"/api/v1/rooms/{room.pk}/cover", {"cover": raw}, format="multipart"
        )
        assert response.status_code == 200, response.json()
        room.refresh_from_db()
        with Image.open(room.cover.path) as img:
            assert img.size == (1080, 720) and img.format == "JPEG"

    def test_not_an_image_is_a_field_error(self, host_alice, settings, tmp_path):
        settings.MEDIA_ROOT = tmp_path
        room = RoomFactory(streamer=host_alice.profile)
        fake = io.BytesIO(b"<script>alert(1)</script>")
        fake.name = "cover.png"
        response = host_alice.client().post(
            f"/api/v1/rooms/{room.pk}/cover", {"cover": fake}, format="multipart"
        )
        assert response.status_code == 400 and "cover" in response.json()["fields"]
