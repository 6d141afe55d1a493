"""The baseline the coupon bench compares against: the naive read-check-write claim in the
ORM (get → check → save → create), served through Django's request path in a thread per
request. It oversells under concurrency; that is the point of measuring it. Bench only."""

from __future__ import annotations

import json
import os
import secrets

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qianmian.settings")

from asgiref.sync import sync_to_async  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402

django_app = get_asgi_application()

from django.utils import timezone  # noqa: E402

from core.asgi import Router  # noqa: E402
from core.tokens import parse_token  # noqa: E402
from livecommerce.models import Coupon, CouponClaim  # noqa: E402


def naive_claim(coupon_id: int, org_id: int, contact_id: int) -> tuple[int, dict]:
    coupon = Coupon.unscoped.get(pk=coupon_id, org_id=org_id)
    if coupon.claimed >= coupon.stock:
        return 409, {"code": "sold_out"}
    if CouponClaim.unscoped.filter(coupon=coupon, contact_id=contact_id).count() >= 1:
        return 409, {"code": "limit_reached"}
    coupon.claimed += 1
    Coupon.unscoped.filter(pk=coupon.pk).update(claimed=min(coupon.claimed, coupon.stock))
    # No slot guard in the naive design: a slot far outside 1..stock stands in for "none".
    claim = CouponClaim.unscoped.create(
        org_id=org_id,
        coupon=coupon,
        contact_id=contact_id,
        nth=1 + secrets.randbelow(30000),
        slot=10**7 + secrets.randbelow(10**9),
        claimed_at=timezone.now(),
    )
    return 201, {"code": claim.code}


async def naive_app(scope, receive, send):
    while (await receive()).get("more_body"):
        pass
    token = dict(scope["headers"]).get(b"authorization", b"").split()[-1].decode()
    claims = parse_token(token)
    status, body = await sync_to_async(naive_claim, thread_sensitive=False)(
        int(scope["path_kwargs"]["coupon_id"]), claims.org_id, claims.contact_id
    )
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(payload)),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


application = Router(
    django_app, http_routes=[("POST", r"/naive/coupons/(?P<coupon_id>[0-9]+)/claim", naive_app)]
)
