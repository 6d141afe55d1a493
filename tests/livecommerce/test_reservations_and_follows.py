from datetime import timedelta

import pytest
from django.utils import timezone

from livecommerce.models import Reservation
from livecommerce.services import reservations
from tests.factories import RoomFactory


@pytest.fixture
def due_handler():
    seen = []

    def handler(reservation):
        seen.append(reservation.pk)

    reservations.on_reservation_due(handler)
    yield seen
    reservations._due_handlers.remove(handler)


@pytest.mark.django_db
class TestReserve:
    def test_viewer_reserves_once_and_reminder_is_before_start(self, host_alice, viewer_dan):
        start = timezone.now() + timedelta(hours=3)
        room = RoomFactory(streamer=host_alice.profile, scheduled_start=start)
        client = viewer_dan.client()
        first = client.post(f"/api/v1/rooms/{room.pk}/reserve")
        assert first.status_code == 201 and first.json()["created"] is True
        assert client.post(f"/api/v1/rooms/{room.pk}/reserve").status_code == 200
        reservation = Reservation.unscoped.get(room=room)
        assert reservation.remind_at == start - timedelta(minutes=15)

    def test_live_room_cannot_be_reserved_and_foreign_room_is_404(
        self, host_alice, viewer_dan, other_org
    ):
        live = RoomFactory(streamer=host_alice.profile, status="live")
        response = viewer_dan.client().post(f"/api/v1/rooms/{live.pk}/reserve")
        assert response.status_code == 409 and response.json()["code"] == "room_not_scheduled"
        foreign = RoomFactory(streamer__org=other_org)
        assert viewer_dan.client().post(f"/api/v1/rooms/{foreign.pk}/reserve").status_code == 404

    def test_staff_cannot_reserve(self, host_alice):
        room = RoomFactory(streamer=host_alice.profile)
        assert host_alice.client().post(f"/api/v1/rooms/{room.pk}/reserve").status_code == 403

    def test_sweep_calls_each_handler_exactly_once_per_due_reservation(
        self, host_alice, viewer_dan, due_handler
    ):
        soon = RoomFactory(
            streamer=host_alice.profile, scheduled_start=timezone.now() + timedelta(minutes=5)
        )
        later = RoomFactory(
            streamer=host_alice.profile, scheduled_start=timezone.now() + timedelta(days=1)
        )
        viewer_dan.client().post(f"/api/v1/rooms/{soon.pk}/reserve")
        viewer_dan.client().post(f"/api/v1/rooms/{later.pk}/reserve")
        assert reservations.reservations_sweep() == 1
        assert reservations.reservations_sweep() == 0
        due = Reservation.unscoped.get(room=soon)
        assert due_handler == [due.pk]
        assert Reservation.unscoped.get(room=later).reminded_at is None

    def test_moving_the_start_moves_pending_reminders(self, host_alice, viewer_dan):
        room = RoomFactory(streamer=host_alice.profile)
        viewer_dan.client().post(f"/api/v1/rooms/{room.pk}/reserve")
        new_start = timezone.now() + timedelta(days=2)
        host_alice.client().patch(
            f"/api/v1/rooms/{room.pk}", {"scheduled_start": new_start.isoformat()}, format="json"
        )
        remind_at = Reservation.unscoped.get(room=room).remind_at
        assert abs((remind_at - (new_start - timedelta(minutes=15))).total_seconds()) < 1


@pytest.mark.django_db
class TestFollow:
    def test_follow_unfollow_counts_and_event(self, host_alice, viewer_dan):
        from crm.models import Event

        url = f"/api/v1/streamers/{host_alice.profile.pk}/follow"
        client = viewer_dan.client()
        assert client.post(url).json() == {"following": True, "followers": 1}
        assert client.post(url).json() == {"following": True, "followers": 1}
        assert Event.unscoped.filter(type="follow", contact=viewer_dan.contact).count() == 1
        assert client.delete(url).json() == {"following": False, "followers": 0}

    def test_foreign_streamer_is_404_and_anonymous_401(self, viewer_dan, outsider_erin, anon):
        url = f"/api/v1/streamers/{outsider_erin.profile.pk}/follow"
        assert viewer_dan.client().post(url).status_code == 404
        assert anon.post(url).status_code == 401

    def test_public_streamer_profile_lists_rooms(self, host_alice, anon):
        RoomFactory(streamer=host_alice.profile, title="周三专场")
        body = anon.get(f"/api/v1/streamers/{host_alice.profile.pk}").json()
        assert body["name"] == "Alice" and [r["title"] for r in body["rooms"]] == ["周三专场"]
