from datetime import timedelta

import pytest
from django.utils import timezone

from livecommerce import events
from tests.factories import RoomFactory


@pytest.fixture
def published():
    seen = []
    events.register_publisher(lambda room_id, event: seen.append((room_id, event)))
    yield seen
    events._publishers.pop()


@pytest.mark.django_db
class TestRoomLifecycle:
    def test_streamer_schedules_a_room_for_themselves(self, host_alice):
        start = timezone.now() + timedelta(days=1)
        response = host_alice.client().post(
            "/api/v1/rooms",
            {"title": "周五专场", "scheduled_start": start.isoformat()},
            format="json",
        )
        assert response.status_code == 201
        body = response.json()
        assert body["status"] == "scheduled"
        assert body["streamer"] == host_alice.profile.pk
        assert body["push_url"].startswith("rtmp://") and "sign=" in body["push_url"]
        assert body["play_url"].endswith(".m3u8")

    def test_start_then_end_moves_the_room_and_tells_screens(
        self, host_alice, published, django_capture_on_commit_callbacks
    ):
        room = RoomFactory(streamer=host_alice.profile)
        client = host_alice.client()
        with django_capture_on_commit_callbacks(execute=True):
            assert client.post(f"/api/v1/rooms/{room.pk}/start").json()["status"] == "live"
            assert client.post(f"/api/v1/rooms/{room.pk}/end").json()["status"] == "ended"
        assert [e["status"] for _, e in published] == ["live", "ended"]

    def test_an_ended_room_cannot_go_live_again(self, host_alice):
        room = RoomFactory(streamer=host_alice.profile, status="ended")
        response = host_alice.client().post(f"/api/v1/rooms/{room.pk}/start")
        assert response.status_code == 409
        assert response.json()["code"] == "room_ended"

    def test_a_start_in_the_past_is_a_field_error(self, host_alice):
        """Issue 17: a room could be scheduled in 2020 and was listed as 预告."""
        client = host_alice.client()
        response = client.post(
            "/api/v1/rooms",
            {"title": "穿越专场", "scheduled_start": "2020-01-01T20:00:00+08:00"},
            format="json",
        )
        assert response.status_code == 400
        body = response.json()
        assert body["code"] == "start_in_past"
        assert body["fields"]["scheduled_start"] == ["开播时间不能早于当前时间"]
        room = RoomFactory(streamer=host_alice.profile)
        moved = client.patch(
            f"/api/v1/rooms/{room.pk}",
            {"scheduled_start": (timezone.now() - timedelta(days=1)).isoformat()},
            format="json",
        )
        assert moved.status_code == 400 and "scheduled_start" in moved.json()["fields"]
        # "Now", typed a moment ago in a minute-precision picker, is still fine.
        now = client.post(
            "/api/v1/rooms",
            {
                "title": "马上开播",
                "scheduled_start": (timezone.now() - timedelta(seconds=50)).isoformat(),
            },
            format="json",
        )
        assert now.status_code == 201

    def test_the_room_carries_its_viewer_page_address_on_the_consoles_host(self, host_alice):
        room = RoomFactory(streamer=host_alice.profile)
        body = host_alice.client().get(f"/api/v1/rooms/{room.pk}").json()
        assert body["viewer_url"] == f"http://testserver/live/{room.pk}/"

    def test_missing_title_and_bad_date_are_field_errors(self, host_alice):
        response = host_alice.client().post(
            "/api/v1/rooms", {"scheduled_start": "tomorrow"}, format="json"
        )
        assert response.status_code == 400
        assert set(response.json()["fields"]) == {"title", "scheduled_start"}


@pytest.mark.django_db
class TestCatalog:
    def test_streamer_adds_a_product_and_sees_it_listed(self, host_alice):
        client = host_alice.client()
        response = client.post(
            "/api/v1/products", {"name": "面膜", "price": "99.00", "stock": 10}, format="json"
        )
        assert response.status_code == 201
        assert client.get("/api/v1/products").json()["results"][0]["name"] == "面膜"

    def test_negative_price_is_refused(self, host_alice):
        response = host_alice.client().post(
            "/api/v1/products", {"name": "x", "price": "-1"}, format="json"
        )
        assert response.status_code == 400
        assert "price" in response.json()["fields"]

    def test_sales_may_read_but_not_change_the_catalog(self, sales_bob):
        client = sales_bob.client()
        assert client.get("/api/v1/products").status_code == 200
        assert (
            client.post("/api/v1/products", {"name": "x", "price": "1"}, format="json").status_code
            == 403
        )
