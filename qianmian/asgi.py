import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qianmian.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_app = get_asgi_application()

from core.asgi import Router, on_shutdown, on_startup  # noqa: E402
from core.tasks import start_embedded_runner, stop_embedded_runner  # noqa: E402
from qianmian.routing import http_routes, websocket_routes  # noqa: E402

on_startup(start_embedded_runner)
on_shutdown(stop_embedded_runner)

application = Router(django_app, http_routes=http_routes, websocket_routes=websocket_routes)
