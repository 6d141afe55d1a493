from datetime import timedelta

import pytest
from django.utils import timezone

from livecommerce.models import ProductClip
from tests.factories import ProductFactory, RoomFactory
from tests.livecommerce.factories import RoomProductFactory


@pytest.mark.django_db
class TestRoomProducts:
    def test_host_adds_catalog_products_in_order(self, host_alice, acme):
        room = RoomFactory(streamer=host_alice.profile)
        first, second = ProductFactory(org=acme, name="面膜"), ProductFactory(org=acme, name="精华")
        client = host_alice.client()
        for product in (first, second):
            response = client.post(
                f"/api/v1/rooms/{room.pk}/products", {"product": product.pk}, format="json"
            )
            assert response.status_code == 201
        listed = client.get(f"/api/v1/rooms/{room.pk}/products").json()
        assert [p["name"] for p in listed] == ["面膜", "精华"]

    def test_foreign_or_missing_product_is_a_field_error(self, host_alice, other_org):
        room = RoomFactory(streamer=host_alice.profile)
        foreign = ProductFactory(org=other_org)
        response = host_alice.client().post(
            f"/api/v1/rooms/{room.pk}/products", {"product": foreign.pk}, format="json"
        )
        assert response.status_code == 400 and "product" in response.json()["fields"]
        response = host_alice.client().post(f"/api/v1/rooms/{room.pk}/products", {}, format="json")
        assert response.status_code == 400

    def test_outsider_and_other_streamer_get_404(self, host_alice, host_frank, outsider_erin):
        room = RoomFactory(streamer=host_alice.profile)
        for actor in (host_frank, outsider_erin):
            assert actor.client().get(f"/api/v1/rooms/{room.pk}/products").status_code == 404


@pytest.mark.django_db
class TestPin:
    def test_pinning_switches_the_now_explaining_product_and_pushes_it(
        self, host_alice, published, django_capture_on_commit_callbacks
    ):
        room = RoomFactory(streamer=host_alice.profile, status="live", started_at=timezone.now())
        a = RoomProductFactory(room=room)
        b = RoomProductFactory(room=room)
        client = host_alice.client()
        with django_capture_on_commit_callbacks(execute=True):
            assert client.post(f"/api/v1/rooms/{room.pk}/products/{a.product_id}/pin").json()[
                "is_pinned"
            ]
            client.post(f"/api/v1/rooms/{room.pk}/products/{b.product_id}/pin")
        a.refresh_from_db()
        b.refresh_from_db()
        assert (a.is_pinned, b.is_pinned) == (False, True)
        pushed = [e for _, e in published if e["type"] == "product.pinned"]
        assert [e["product"]["id"] for e in pushed] == [a.product_id, b.product_id]
        clips = list(ProductClip.unscoped.filter(room=room).order_by("pk"))
        assert [c.product_id for c in clips] == [a.product_id, b.product_id]
        assert clips[0].end_s is not None and clips[1].end_s is None

    def test_clip_offsets_are_seconds_from_stream_start_and_close_at_end(self, host_alice):
        started = timezone.now() - timedelta(seconds=90)
        room = RoomFactory(streamer=host_alice.profile, status="live", started_at=started)
        item = RoomProductFactory(room=room)
        client = host_alice.client()
        client.post(f"/api/v1/rooms/{room.pk}/products/{item.product_id}/pin")
        client.post(f"/api/v1/rooms/{room.pk}/end")
        clip = ProductClip.unscoped.get(room=room)
        assert 89 <= clip.start_s <= 92 and clip.end_s >= clip.start_s

    def test_unpin_pushes_null(self, host_alice, published, django_capture_on_commit_callbacks):
        room = RoomFactory(streamer=host_alice.profile)
        item = RoomProductFactory(room=room, is_pinned=True)
        with django_capture_on_commit_callbacks(execute=True):
            response = host_alice.client().post(
                f"/api/v1/rooms/{room.pk}/products/{item.product_id}/pin",
                {"pinned": False},
                format="json",
            )
        assert response.status_code == 200 and response.json()["is_pinned"] is False
        assert published[-1][1] == {"type": "product.pinned", "product": None, "_audience": "all"}

    def test_product_not_in_room_is_409_and_foreign_404(self, host_alice, acme, outsider_erin):
        room = RoomFactory(streamer=host_alice.profile)
        loose = ProductFactory(org=acme)
        response = host_alice.client().post(f"/api/v1/rooms/{room.pk}/products/{loose.pk}/pin")
        assert response.status_code == 409 and response.json()["code"] == "product_not_in_room"
        item = RoomProductFactory(room=room)
        response = outsider_erin.client().post(
            f"/api/v1/rooms/{room.pk}/products/{item.product_id}/pin"
        )
        assert response.status_code == 404

    def test_ended_room_cannot_pin(self, host_alice):
        room = RoomFactory(streamer=host_alice.profile, status="ended")
        item = RoomProductFactory(room=room)
        response = host_alice.client().post(
            f"/api/v1/rooms/{room.pk}/products/{item.product_id}/pin"
        )
        assert response.status_code == 409


@pytest.mark.django_db
class TestProductClickAndPublicState:
    def test_viewer_sees_room_state_and_click_is_attributed_to_the_clip(
        self, host_alice, viewer_dan
    ):
        from crm.models import Event

        room = RoomFactory(
            streamer=host_alice.profile,
            org=host_alice.profile.org,
            status="live",
            started_at=timezone.now(),
        )
        item = RoomProductFactory(room=room)
        host_alice.client().post(f"/api/v1/rooms/{room.pk}/products/{item.product_id}/pin")
        state = viewer_dan.client().get(f"/api/v1/rooms/{room.pk}/public").json()
        assert state["pinned"]["id"] == item.product_id
        clip_id = state["pinned"]["clip"]
        response = viewer_dan.client().post(
            f"/api/v1/products/{item.product_id}/click",
            {"room": room.pk, "clip": clip_id},
            format="json",
        )
        assert response.status_code == 200
        assert ProductClip.unscoped.get(pk=clip_id).clicks == 1
        assert Event.unscoped.filter(contact=viewer_dan.contact, type="product.click").exists()

    def test_foreign_room_state_is_404(self, viewer_dan, other_org):
        room = RoomFactory(streamer__org=other_org)
        assert viewer_dan.client().get(f"/api/v1/rooms/{room.pk}/public").status_code == 404
