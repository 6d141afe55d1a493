"""No cross-organisation read or write through any endpoint; streamers touch only their rooms."""

import pytest
from django.utils import timezone

from core.models import TenantScopeError
from livecommerce.models import Product, Room
from tests.factories import ProductFactory, RoomFactory


@pytest.fixture
def acme_objects(host_alice):
    room = RoomFactory(streamer=host_alice.profile)
    product = ProductFactory(org=room.org)
    return {"room": room, "product": product}


@pytest.mark.django_db
class TestTenancy:
    def test_outsider_gets_404_on_every_object_of_another_org(self, outsider_erin, acme_objects):
        client = outsider_erin.client()
        room, product = acme_objects["room"], acme_objects["product"]
        reads = [f"/api/v1/rooms/{room.pk}", f"/api/v1/products/{product.pk}"]
        for path in reads:
            assert client.get(path).status_code == 404, path
        writes = [
            ("patch", f"/api/v1/rooms/{room.pk}", {"title": "hacked"}),
            ("post", f"/api/v1/rooms/{room.pk}/start", {}),
            ("post", f"/api/v1/rooms/{room.pk}/end", {}),
            ("patch", f"/api/v1/products/{product.pk}", {"name": "hacked"}),
        ]
        for method, path, body in writes:
            response = getattr(client, method)(path, body, format="json")
            assert response.status_code == 404, path
        room.refresh_from_db()
        product.refresh_from_db()
        assert room.title != "hacked" and room.status == "scheduled"
        assert product.name != "hacked"

    def test_lists_never_include_another_orgs_rows(self, outsider_erin, acme_objects):
        client = outsider_erin.client()
        assert client.get("/api/v1/rooms").json()["count"] == 0
        assert client.get("/api/v1/products").json()["count"] == 0

    def test_admin_cannot_create_a_room_for_another_orgs_streamer(self, outsider_erin, host_alice):
        response = outsider_erin.client().post(
            "/api/v1/rooms",
            {
                "title": "x",
                "scheduled_start": timezone.now().isoformat(),
                "streamer": host_alice.profile.pk,
            },
            format="json",
        )
        assert response.status_code == 400
        assert "streamer" in response.json()["fields"]
        assert not Room.unscoped.filter(title="x").exists()

    def test_a_query_without_an_org_is_impossible_by_accident(self, acme_objects):
        with pytest.raises(TenantScopeError):
            list(Room.objects.all())
        with pytest.raises(TenantScopeError):
            Product.objects.filter(name="x").exists()
        assert Room.objects.for_org(acme_objects["room"].org).count() == 1


@pytest.mark.django_db
class TestRoomOwnership:
    def test_streamer_cannot_change_another_streamers_room(self, host_alice, host_frank):
        franks_room = RoomFactory(streamer=host_frank.profile)
        client = host_alice.client()
        assert (
            client.patch(
                f"/api/v1/rooms/{franks_room.pk}", {"title": "mine"}, format="json"
            ).status_code
            == 404
        )
        assert client.post(f"/api/v1/rooms/{franks_room.pk}/start").status_code == 404
        franks_room.refresh_from_db()
        assert franks_room.title != "mine" and franks_room.status == "scheduled"

    def test_streamer_sees_only_own_rooms_admin_sees_all(self, host_alice, host_frank, admin_carol):
        RoomFactory(streamer=host_alice.profile)
        RoomFactory(streamer=host_frank.profile)
        assert host_alice.client().get("/api/v1/rooms").json()["count"] == 1
        assert admin_carol.client().get("/api/v1/rooms").json()["count"] == 2

    def test_admin_may_change_any_room_of_the_org(self, admin_carol, host_frank):
        room = RoomFactory(streamer=host_frank.profile)
        response = admin_carol.client().patch(
            f"/api/v1/rooms/{room.pk}", {"title": "改名"}, format="json"
        )
        assert response.status_code == 200
        assert response.json()["title"] == "改名"

    def test_sales_cannot_create_rooms(self, sales_bob):
        response = sales_bob.client().post(
            "/api/v1/rooms",
            {"title": "x", "scheduled_start": timezone.now().isoformat()},
            format="json",
        )
        assert response.status_code == 403

    def test_push_url_is_shown_only_to_who_manages_the_room(self, host_alice, sales_bob):
        room = RoomFactory(streamer=host_alice.profile)
        assert (
            host_alice.client()
            .get(f"/api/v1/rooms/{room.pk}")
            .json()["push_url"]
            .startswith("rtmp://")
        )
        assert sales_bob.client().get(f"/api/v1/rooms/{room.pk}").json()["push_url"] is None
