"""The baseline: stock Channels — one consumer per viewer, ``group_send`` per event.

Served by uvicorn exactly like the hub (``bench.stock_channels:application``), on
channels-redis' ``RedisChannelLayer`` with the project's settings (pool of 1,000
connections, docs/bench/fanout.md). It authenticates with the same signed tokens and, like the hub,
sends a first frame on connect. Likes are received and dropped (generous to the baseline:
a stock app would ``group_send`` them too).
"""

from __future__ import annotations

import json
import os
from urllib.parse import parse_qs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qianmian.settings")

import django  # noqa: E402

django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402

from core.tokens import InvalidToken, parse_token  # noqa: E402


class StockRoomConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        query = parse_qs(self.scope.get("query_string", b"").decode())
        try:
            parse_token((query.get("token") or [""])[0])
        except InvalidToken:
            await self.close(code=4401)
            return
        self.group = f"room-{self.scope['path'].strip('/').split('/')[-1]}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send(text_data=json.dumps({"type": "hello"}))

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        return None  # likes dropped

    async def room_event(self, message):
        await self.send(text_data=json.dumps(message["event"], ensure_ascii=False))


application = StockRoomConsumer.as_asgi()
