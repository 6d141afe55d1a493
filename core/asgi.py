"""The top-level ASGI router.

Django's handler starts a thread per request, which caps any view near 1,100 req/s on two
cores. Hot paths (the room WebSocket hub, the coupon claim) are therefore served by small
ASGI routes placed in front of Django in the same process; they call the same services
and keep the same API contract. Everything else goes to Django.

Lifespan start-up runs registered hooks (the in-process task runner, the room hubs).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

ASGIApp = Callable[..., Awaitable[None]]
_startup: list[Callable[[], Awaitable[None] | None]] = []
_shutdown: list[Callable[[], Awaitable[None] | None]] = []


def on_startup(fn):
    _startup.append(fn)
    return fn


def on_shutdown(fn):
    _shutdown.append(fn)
    return fn


async def _call(fn) -> None:
    result = fn()
    if hasattr(result, "__await__"):
        await result


class Router:
    def __init__(
        self,
        django_app: ASGIApp,
        *,
        http_routes: list[tuple[str, str, ASGIApp]] = (),
        websocket_routes: list[tuple[str, ASGIApp]] = (),
    ):
        self.django_app = django_app
        self.http_routes = [
            (method, re.compile(pattern), app) for method, pattern, app in http_routes
        ]
        self.websocket_routes = [(re.compile(pattern), app) for pattern, app in websocket_routes]

    async def __call__(self, scope, receive, send):
        kind = scope["type"]
        if kind == "http":
            for method, pattern, app in self.http_routes:
                match = pattern.fullmatch(scope["path"])
                if match and scope["method"] == method:
                    scope = {**scope, "path_kwargs": match.groupdict()}
                    return await app(scope, receive, send)
            return await self.django_app(scope, receive, send)
        if kind == "websocket":
            for pattern, app in self.websocket_routes:
                match = pattern.fullmatch(scope["path"])
                if match:
                    scope = {**scope, "path_kwargs": match.groupdict()}
                    return await app(scope, receive, send)
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 4404})
            return None
        if kind == "lifespan":
            return await self._lifespan(receive, send)
        return None

    async def _lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    for fn in _startup:
                        await _call(fn)
                except Exception as exc:  # pragma: no cover - start-up failure is fatal
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for fn in reversed(_shutdown):
                    try:
                        await _call(fn)
                    except Exception:  # pragma: no cover
                        log.exception("shutdown hook failed")
                await send({"type": "lifespan.shutdown.complete"})
                return
