"""Routes served in front of Django's handler (see core.asgi). Each app adds its hot paths."""

http_routes: list = []
websocket_routes: list = []
