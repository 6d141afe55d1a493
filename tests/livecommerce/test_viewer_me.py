"""GET /rooms/{id}/public's "me": what a reload of the viewer page must show for this viewer."""

import pytest

from livecommerce.models import ChatRestriction
from tests.factories import RoomFactory

pytestmark = pytest.mark.django_db


def me(viewer, room) -> dict:
    response = viewer.client().get(f"/api/v1/rooms/{room.pk}/public")
    assert response.status_code == 200
    return response.json()["me"]


def test_follow_reservation_and_mute_come_back_after_a_reload(host_alice, viewer_dan):
    room = RoomFactory(streamer=host_alice.profile, status="scheduled")
    client = viewer_dan.client()
    fresh = me(viewer_dan, room)
    assert fresh["following"] is False and fresh["reservation"] is None
    assert fresh["chat"] == {"banned": False, "muted": False, "muted_until": None}
    assert fresh["phone_bound"] is False and fresh["contact_id"] == viewer_dan.contact.pk

    client.post(f"/api/v1/streamers/{host_alice.profile.pk}/follow")
    client.post(f"/api/v1/rooms/{room.pk}/reserve")
    host_alice.client().post(
        f"/api/v1/rooms/{room.pk}/moderation",
        {"action": "mute", "contact": viewer_dan.contact.pk, "minutes": 10},
        format="json",
    )
    after = me(viewer_dan, room)
    assert after["following"] is True
    assert after["reservation"]["remind_at"]
    assert after["chat"]["muted"] is True and after["chat"]["muted_until"]
    # The profile page asks the same question.
    follow = client.get(f"/api/v1/streamers/{host_alice.profile.pk}/follow").json()
    assert follow["following"] is True and follow["followers"] == 1


def test_a_shadow_ban_is_never_told_to_the_viewer(host_alice, viewer_dan):
    room = RoomFactory(streamer=host_alice.profile, status="live")
    response = host_alice.client().post(
        f"/api/v1/rooms/{room.pk}/moderation",
        {"action": "shadow", "contact": viewer_dan.contact.pk},
        format="json",
    )
    assert response.status_code == 200
    assert ChatRestriction.unscoped.filter(kind="shadow").exists()
    assert me(viewer_dan, room)["chat"] == {"banned": False, "muted": False, "muted_until": None}


def test_staff_get_no_me_part(host_alice):
    room = RoomFactory(streamer=host_alice.profile)
    assert "me" not in host_alice.client().get(f"/api/v1/rooms/{room.pk}/public").json()
