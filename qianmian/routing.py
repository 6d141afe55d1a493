"""Routes served in front of Django's handler (see core.asgi). Each app adds its hot paths.

http_routes: (method, path regex, asgi app); websocket_routes: (path regex, asgi app).
Named groups in the regex arrive in ``scope["path_kwargs"]``.
"""

http_routes: list = []
websocket_routes: list = []

# --- real-time room hub ---
from core.asgi import on_shutdown, on_startup  # noqa: E402
from livecommerce.realtime.asgi import room_socket, staff_socket  # noqa: E402
from livecommerce.realtime.hub import start_hubs, stop_hubs  # noqa: E402

websocket_routes += [
    (r"/ws/rooms/(?P<room_id>[0-9]{1,18})/", room_socket),
    (r"/ws/staff/", staff_socket),
]
on_startup(start_hubs)
on_shutdown(stop_hubs)

# --- live rooms (coupon claim fast path) ---
from livecommerce.fastpath import coupon_claim_app  # noqa: E402

http_routes.append(("POST", r"/api/v1/coupons/(?P<coupon_id>[0-9]{1,18})/claim", coupon_claim_app))
