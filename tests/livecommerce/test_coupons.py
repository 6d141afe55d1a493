from datetime import timedelta

import pytest
from django.utils import timezone

from core.tokens import issue_viewer_token
from livecommerce.models import Coupon, CouponClaim
from tests.factories import ContactFactory, RoomFactory
from tests.livecommerce.factories import CouponFactory


def _viewer(org, name="观众"):
    contact = ContactFactory(org=org, nickname=name)
    token = issue_viewer_token(org_id=org.pk, contact_id=contact.pk, device=f"d{contact.pk}")
    return contact, {"HTTP_AUTHORIZATION": f"Token {token}"}


@pytest.mark.django_db
class TestCouponCreateAndRelease:
    def test_host_creates_a_threshold_coupon_then_releases_it_into_the_room(
        self, host_alice, published, django_capture_on_commit_callbacks
    ):
        room = RoomFactory(streamer=host_alice.profile)
        client = host_alice.client()
        body = {
            "name": "满199减30",
            "kind": "threshold",
            "amount": "30",
            "threshold": "199",
            "stock": 100,
            "per_viewer_limit": 1,
            "valid_until": (timezone.now() + timedelta(days=3)).isoformat(),
        }
        created = client.post(f"/api/v1/rooms/{room.pk}/coupons", body, format="json")
        assert created.status_code == 201, created.json()
        assert created.json()["released_at"] is None
        coupon_id = created.json()["id"]
        with django_capture_on_commit_callbacks(execute=True):
            released = client.post(f"/api/v1/coupons/{coupon_id}/release")
        assert released.status_code == 200
        assert released.json()["released_at"] is not None
        assert published[-1][1]["type"] == "coupon.released"
        assert published[-1][1]["coupon"]["name"] == "满199减30"
        listed = client.get(f"/api/v1/rooms/{room.pk}/coupons").json()
        assert [c["remaining"] for c in listed] == [100]

    def test_bad_coupon_input_names_each_field(self, host_alice):
        room = RoomFactory(streamer=host_alice.profile)
        response = host_alice.client().post(
            f"/api/v1/rooms/{room.pk}/coupons",
            {"name": "", "kind": "gift", "amount": "-1", "stock": 0, "valid_until": "soon"},
            format="json",
        )
        assert response.status_code == 400
        assert {"name", "kind", "amount", "stock", "valid_until"} <= set(response.json()["fields"])

    def test_threshold_must_exceed_amount_and_validity_must_be_future(self, host_alice):
        room = RoomFactory(streamer=host_alice.profile)
        response = host_alice.client().post(
            f"/api/v1/rooms/{room.pk}/coupons",
            {
                "name": "坏券",
                "kind": "threshold",
                "amount": "50",
                "threshold": "20",
                "stock": 5,
                "valid_until": (timezone.now() - timedelta(hours=1)).isoformat(),
            },
            format="json",
        )
        assert response.status_code == 400
        assert set(response.json()["fields"]) == {"threshold", "valid_until"}

    def test_another_streamer_cannot_touch_my_coupons(self, host_alice, host_frank):
        coupon = CouponFactory(room=RoomFactory(streamer=host_alice.profile))
        assert host_frank.client().post(f"/api/v1/coupons/{coupon.pk}/release").status_code == 404
        room_response = host_frank.client().post(
            f"/api/v1/rooms/{coupon.room_id}/coupons", {}, format="json"
        )
        assert room_response.status_code == 404

    def test_other_organisation_gets_404(self, host_alice, outsider_erin):
        coupon = CouponFactory(room=RoomFactory(streamer=host_alice.profile))
        client = outsider_erin.client()
        assert client.post(f"/api/v1/coupons/{coupon.pk}/release").status_code == 404
        assert client.get(f"/api/v1/rooms/{coupon.room_id}/coupons").status_code == 404

    def test_sales_and_viewers_cannot_create_coupons(self, host_alice, sales_bob, viewer_dan):
        room = RoomFactory(streamer=host_alice.profile)
        assert sales_bob.client().post(f"/api/v1/rooms/{room.pk}/coupons", {}).status_code == 403
        assert viewer_dan.client().post(f"/api/v1/rooms/{room.pk}/coupons", {}).status_code == 403


@pytest.mark.django_db
class TestCouponClaim:
    def test_viewer_claims_and_gets_a_receipt_with_a_code(self, host_alice, viewer_dan):
        coupon = CouponFactory(room=RoomFactory(streamer=host_alice.profile), released=True)
        response = viewer_dan.client().post(f"/api/v1/coupons/{coupon.pk}/claim")
        assert response.status_code == 201
        body = response.json()
        assert body["remaining"] == 9
        assert body["code"].startswith(f"{coupon.pk}-1-") and len(body["code"].split("-")[2]) == 4
        mine = viewer_dan.client().get("/api/v1/me/coupons").json()
        assert [c["code"] for c in mine] == [body["code"]]
        assert mine[0]["name"] == "满100减20"

    def test_second_claim_is_limit_reached(self, host_alice, viewer_dan):
        coupon = CouponFactory(room=RoomFactory(streamer=host_alice.profile), released=True)
        client = viewer_dan.client()
        assert client.post(f"/api/v1/coupons/{coupon.pk}/claim").status_code == 201
        again = client.post(f"/api/v1/coupons/{coupon.pk}/claim")
        assert again.status_code == 409
        assert again.json()["code"] == "limit_reached"

    def test_per_viewer_limit_of_two_allows_exactly_two(self, host_alice, viewer_dan):
        coupon = CouponFactory(
            room=RoomFactory(streamer=host_alice.profile), released=True, per_viewer_limit=2
        )
        client = viewer_dan.client()
        codes = [client.post(f"/api/v1/coupons/{coupon.pk}/claim").status_code for _ in range(3)]
        assert codes == [201, 201, 409]

    def test_sold_out_after_stock(self, acme, host_alice):
        coupon = CouponFactory(
            room=RoomFactory(streamer=host_alice.profile), released=True, stock=2
        )
        statuses = []
        for i in range(3):
            _, auth = _viewer(acme, f"v{i}")
            response = host_alice.client()
            response.credentials(**auth)
            statuses.append(response.post(f"/api/v1/coupons/{coupon.pk}/claim"))
        assert [r.status_code for r in statuses] == [201, 201, 409]
        assert statuses[-1].json()["code"] == "sold_out"
        coupon.refresh_from_db()
        assert coupon.claimed == 2
        assert CouponClaim.unscoped.filter(coupon=coupon).count() == 2

    def test_unreleased_coupon_is_403(self, host_alice, viewer_dan):
        coupon = CouponFactory(room=RoomFactory(streamer=host_alice.profile))
        response = viewer_dan.client().post(f"/api/v1/coupons/{coupon.pk}/claim")
        assert response.status_code == 403
        assert response.json()["code"] == "coupon_not_released"

    def test_expired_coupon_is_403(self, host_alice, viewer_dan):
        coupon = CouponFactory(
            room=RoomFactory(streamer=host_alice.profile),
            released=True,
            valid_until=timezone.now() - timedelta(minutes=1),
        )
        response = viewer_dan.client().post(f"/api/v1/coupons/{coupon.pk}/claim")
        assert response.status_code == 403
        assert response.json()["code"] == "coupon_expired"

    def test_other_organisations_coupon_is_404(self, other_org, viewer_dan):
        coupon = CouponFactory(room=RoomFactory(streamer__org=other_org), released=True)
        assert viewer_dan.client().post(f"/api/v1/coupons/{coupon.pk}/claim").status_code == 404
        assert viewer_dan.client().post("/api/v1/coupons/999999/claim").status_code == 404

    def test_staff_and_anonymous_cannot_claim(self, host_alice, anon):
        coupon = CouponFactory(room=RoomFactory(streamer=host_alice.profile), released=True)
        assert host_alice.client().post(f"/api/v1/coupons/{coupon.pk}/claim").status_code == 403
        assert anon.post(f"/api/v1/coupons/{coupon.pk}/claim").status_code == 401

    def test_claim_is_recorded_in_the_crm_event_log(self, host_alice, viewer_dan):
        from crm.models import Event

        coupon = CouponFactory(room=RoomFactory(streamer=host_alice.profile), released=True)
        viewer_dan.client().post(f"/api/v1/coupons/{coupon.pk}/claim")
        event = Event.unscoped.get(contact=viewer_dan.contact, type="coupon.claim")
        assert event.room_id == coupon.room_id and event.props["coupon"] == coupon.pk


@pytest.mark.django_db
class TestRedeem:
    def _claimed(self, host_alice, viewer_dan):
        coupon = CouponFactory(room=RoomFactory(streamer=host_alice.profile), released=True)
        return viewer_dan.client().post(f"/api/v1/coupons/{coupon.pk}/claim").json()["code"]

    def test_sales_redeems_by_code_once(self, host_alice, sales_bob, viewer_dan):
        code = self._claimed(host_alice, viewer_dan)
        first = sales_bob.client().post("/api/v1/coupons/redeem", {"code": code}, format="json")
        assert first.status_code == 200 and first.json()["redeemed_at"]
        again = sales_bob.client().post("/api/v1/coupons/redeem", {"code": code}, format="json")
        assert again.status_code == 409 and again.json()["code"] == "already_redeemed"

    def test_order_callback_redeems_idempotently_and_records_the_order(
        self, host_alice, admin_carol, viewer_dan
    ):
        from crm.models import Event

        code = self._claimed(host_alice, viewer_dan)
        body = {"code": code, "order": "T20261123001", "amount": "269.00"}
        for _ in range(2):
            response = admin_carol.client().post("/api/v1/coupons/redeem", body, format="json")
            assert response.status_code == 200
        assert Event.unscoped.filter(contact=viewer_dan.contact, type="order").count() == 1
        assert Event.unscoped.filter(contact=viewer_dan.contact, type="coupon.redeem").count() == 1

    def test_unknown_or_foreign_code_is_404_and_bad_code_400(
        self, host_alice, outsider_erin, viewer_dan
    ):
        code = self._claimed(host_alice, viewer_dan)
        foreign = outsider_erin.client().post(
            "/api/v1/coupons/redeem", {"code": code}, format="json"
        )
        assert foreign.status_code == 404
        bad = outsider_erin.client().post("/api/v1/coupons/redeem", {"code": "x"}, format="json")
        assert bad.status_code == 400 and "code" in bad.json()["fields"]


def test_coupon_model_refuses_an_oversell_at_the_database(db, host_alice):
    from django.db import IntegrityError, transaction

    coupon = CouponFactory(room=RoomFactory(streamer=host_alice.profile), stock=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Coupon.unscoped.filter(pk=coupon.pk).update(claimed=2)
