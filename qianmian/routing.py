"""Routes served in front of Django's handler (see core.asgi). Each app adds its hot paths.

http_routes: (method, path regex, asgi app); websocket_routes: (path regex, asgi app).
Named groups in the regex arrive in ``scope["path_kwargs"]``.
"""

http_routes: list = []
websocket_routes: list = []

# --- real-time room hub ---

# --- live rooms (coupon claim fast path) ---
