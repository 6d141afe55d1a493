from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from livecommerce.models import Coupon, RoomProduct
from tests.factories import ProductFactory, RoomFactory, TenantFactory


class RoomProductFactory(TenantFactory):
    class Meta:
        model = RoomProduct

    room = factory.SubFactory(RoomFactory)
    org = factory.SelfAttribute("room.org")
    product = factory.SubFactory(ProductFactory, org=factory.SelfAttribute("..org"))


class CouponFactory(TenantFactory):
    class Meta:
        model = Coupon

    room = factory.SubFactory(RoomFactory)
    org = factory.SelfAttribute("room.org")
    name = "满100减20"
    kind = "threshold"
    amount = Decimal("20")
    threshold = Decimal("100")
    stock = 10
    per_viewer_limit = 1
    valid_until = factory.LazyFunction(lambda: timezone.now() + timedelta(days=7))
    released_at = None

    class Params:
        released = factory.Trait(released_at=factory.LazyFunction(timezone.now))
