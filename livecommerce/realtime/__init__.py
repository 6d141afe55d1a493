"""The real-time room hub (see docs/realtime.md).

One hub per room per process: it subscribes to the room once (Redis pub/sub in production,
an in-process transport in the embedded default), gathers events for a tick, encodes ONE
frame per tick and writes the same bytes to every local socket's transport.

Modules: ``frames`` (wire encoding), ``transport`` (sequenced publish, bounded log,
subscriptions, counters), ``hub`` (per-room tick, shaping, slow-socket guard), ``presence``
(online / peak / present contacts), ``crm`` (batched behaviour events), ``asgi`` (the
WebSocket apps registered in ``qianmian/routing.py``).
"""
