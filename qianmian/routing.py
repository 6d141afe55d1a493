"""Routes served in front of Django's handler (see core.asgi). Each app adds its hot paths.

http_routes: (method, path regex, asgi app); websocket_routes: (path regex, asgi app).
Named groups in the regex arrive in ``scope["path_kwargs"]``.
"""

http_routes: list = []
websocket_routes: list = []

# --- real-time room hub ---

# --- live rooms (coupon claim fast path) ---
from livecommerce.fastpath import coupon_claim_app  # noqa: E402

http_routes.append(("POST", r"/api/v1/coupons/(?P<coupon_id>[0-9]{1,18})/claim", coupon_claim_app))
