"""The one claim interface keeps the same contract on every backend (PostgreSQL + Redis):
the DRF view (sync service) and the ASGI fast path answer 201 / 409 sold_out / 409
limit_reached / 403 not released / 404 other organisation alike."""

from __future__ import annotations

import uuid

import pytest

from livecommerce.models import CouponClaim
from livecommerce.services.coupons import coupon_reconcile
from tests.factories import ContactFactory, RoomFactory
from tests.livecommerce.factories import CouponFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("backend", ["db", "pg", "redis"])
def test_claim_contract_is_the_same_on_every_backend(backend, settings, host_alice, other_org):
    from rest_framework.test import APIClient

    from core.tokens import issue_viewer_token

    settings.COUPON_CLAIM_BACKEND = backend
    settings.COUPON_REDIS_PREFIX = f"qmcontract-{uuid.uuid4().hex[:8]}"
    room = RoomFactory(streamer=host_alice.profile)

    def viewer(org):
        contact = ContactFactory(org=org)
        client = APIClient()
        token = issue_viewer_token(org_id=org.pk, contact_id=contact.pk, device="d")
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        return client

    coupon = CouponFactory(room=room, released=True, stock=1)
    first, second = viewer(room.org), viewer(room.org)
    ok = first.post(f"/api/v1/coupons/{coupon.pk}/claim")
    assert ok.status_code == 201 and ok.json()["remaining"] == 0
    again = first.post(f"/api/v1/coupons/{coupon.pk}/claim")
    assert (again.status_code, again.json()["code"]) == (409, "limit_reached")
    gone = second.post(f"/api/v1/coupons/{coupon.pk}/claim")
    assert (gone.status_code, gone.json()["code"]) == (409, "sold_out")
    hidden = CouponFactory(room=room, stock=5)
    response = second.post(f"/api/v1/coupons/{hidden.pk}/claim")
    assert (response.status_code, response.json()["code"]) == (403, "coupon_not_released")
    assert viewer(other_org).post(f"/api/v1/coupons/{coupon.pk}/claim").status_code == 404
    coupon_reconcile()
    assert CouponClaim.unscoped.filter(coupon=coupon).count() == 1
